"""Face detectors behind one ``detect(frame)`` interface, and the face crop the emotion service needs.

Three backends, chosen by ``camera.detector``:

- ``yuface``: libfacedetection's YuNet CNN (weights compiled into the PyPI wheel). ``make bench-detection``
  showed why it is the default: the children who most need a story hide half the face behind a hand, tilt
  it, lean in until the frame cuts it, or stand far back, and dlib's HOG and OpenCV's cascade miss most of
  those faces while YuNet keeps them at camera rate (50 scenes per condition, 2 busy cores: recall with a
  hand over the mouth 0.90 vs HOG 0.26, cut by the frame edge 0.90 vs 0.30, close, tilted and covered
  0.86 vs 0.08, small 0.92 vs 0.42; no false alarm in 150 face-free frames). A frame with a face costs one
  640×480 pass (~31 ms on a quiet core); an empty room about 1.6 passes (the half-size and rolled ones).
- ``dlib-hog``: dlib's HOG detector; the fallback when yuface cannot load.
- ``haar``: OpenCV's cascade; the last resort when dlib is missing too.
"""

from __future__ import annotations

import base64
import ctypes
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kiosk.events import FACE_CROP_SIDE

logger = logging.getLogger(__name__)

CROP_SIDE = FACE_CROP_SIDE  # twice the emotion network's input: enough to classify, too small to keep a likeness
CROP_MARGIN = 0.12
SECOND_LOOK_PX = 160  # a doubtful face is looked at again about 80 px tall, where YuNet is surest


@dataclass(frozen=True)
class Detection:
    x: int
    y: int
    w: int
    h: int
    quality: float  # area × sharpness, larger is better
    score: float | None = None  # the detector's own confidence 0..1, where it gives one
    landmarks: tuple[tuple[int, int], ...] | None = None  # eyes, nose tip, mouth corners (frame pixels)


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade on a down-scaled grey frame."""

    name = "opencv-haar-frontalface"

    def __init__(self, min_face_px: int = 48, detect_width: int = 320) -> None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV's face cascade could not be loaded from {path}")
        self.min_face_px = min_face_px
        self.detect_width = detect_width

    def detect(self, grey: np.ndarray) -> list[Detection]:
        """Faces in a grey frame, largest first."""
        scale = min(1.0, self.detect_width / grey.shape[1])
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
        min_side = max(12, int(self.min_face_px * scale))
        boxes = self.cascade.detectMultiScale(small, scaleFactor=1.15, minNeighbors=5, minSize=(min_side, min_side))
        found = []
        for bx, by, bw, bh in boxes:
            x, y, w, h = (round(v / scale) for v in (bx, by, bw, bh))
            found.append(Detection(x, y, w, h, quality=w * h * sharpness(grey[y : y + h, x : x + w])))
        return sorted(found, key=lambda d: d.w * d.h, reverse=True)


# dlib's frontal detector is five HOG filters: 0 front, 1 left profile, 2 right profile, 3 and 4 front tilted.
# The best crop of a visit prefers a face looking at the kiosk.
FRONTALNESS = {0: 1.0, 3: 0.8, 4: 0.8, 1: 0.5, 2: 0.5}


class DlibHogDetector:
    """dlib's HOG + linear SVM frontal-face detector (from dlib-bin), on a down-scaled grey frame.

    The kiosk's default (see ``make bench-camera``): at full 640 px it finds faces from 80 px up, with
    and without glasses, where OpenCV's cascade loses faces behind glasses. Its 80-pixel window means
    down-scaling to 320 px would miss faces under ~160 px.
    """

    name = "dlib-hog"

    def __init__(self, min_face_px: int = 48, detect_width: int = 640) -> None:
        import dlib

        self.detector = dlib.get_frontal_face_detector()
        self.min_face_px = min_face_px
        self.detect_width = detect_width

    def detect(self, grey: np.ndarray) -> list[Detection]:
        scale = min(1.0, self.detect_width / grey.shape[1])
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
        found = []
        rects, _, kinds = self.detector.run(small, 0, 0.0)
        for rect, kind in zip(rects, kinds, strict=True):
            x, y = max(0, int(rect.left() / scale)), max(0, int(rect.top() / scale))
            w, h = int(rect.width() / scale), int(rect.height() / scale)
            if min(w, h) >= self.min_face_px:
                patch = grey[y : y + h, x : x + w]
                quality = w * h * sharpness(patch) * FRONTALNESS.get(int(kind), 0.5)
                found.append(Detection(x, y, w, h, quality=quality))
        return sorted(found, key=lambda d: d.w * d.h, reverse=True)


class YuNetDetector:
    """libfacedetection's YuNet (PyPI ``yuface``) on a colour or grey frame, one OpenMP thread.

    Why one thread: the wheel bundles its own libgomp, and with two OpenMP threads on the kiosk's two
    cores a detection took ~440 ms instead of ~40 ms whenever another process (the story LLM, the voice)
    held a core: the OpenMP team's spinning barrier waits for a descheduled thread. One thread stays at
    ~30-40 ms on a busy machine, and the kiosk's cores are rarely idle. The count is set through the
    bundled libgomp's own ``omp_set_num_threads`` (per calling thread), so torch's and llama.cpp's pools
    are untouched.

    YuNet finds faces from about 10 px and cut by the frame edge (boxes may start outside the frame;
    they are clipped here). It reads its input buffer without strides: frames are made contiguous.
    """

    name = "yuface"

    def __init__(
        self,
        min_face_px: int = 48,
        detect_width: int = 640,
        min_score: float = 0.6,
        close_width: int | None = 320,
        close_min_score: float = 0.7,
        threads: int = 1,
        rolls: tuple[float, ...] = (25.0, -25.0),
        small_face_px: int = 64,
        small_min_score: float = 0.7,
        verify_from: float = 0.3,
    ) -> None:
        import yuface

        self._detect = FaceDetectCnn(Path(yuface.__file__).parent)
        self._omp_set_num_threads = _bundled_omp_setter(Path(yuface.__file__).parent)
        self._threads = threads
        self._pinned: set[int] = set()
        self.min_face_px = min_face_px
        self.detect_width = detect_width
        self.min_score = min_score
        self.close_width = close_width
        self.close_min_score = close_min_score
        self.rolls = rolls if close_width else ()
        self.small_face_px = small_face_px
        self.small_min_score = small_min_score
        self.verify_from = verify_from

    def _pin_threads(self) -> None:
        """OpenMP's thread count is a per-thread setting: set it once in each thread that detects."""
        ident = threading.get_ident()
        if self._omp_set_num_threads is not None and ident not in self._pinned:
            self._omp_set_num_threads(self._threads)
            self._pinned.add(ident)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in a grey or BGR frame, largest first.

        Passes, in order, until one finds a face: the full-width frame; a second look at each doubtful
        face of that pass (scored from ``verify_from`` to ``min_score``: half hidden by hair or a hand),
        centred and scaled to YuNet's favourite size; a half-size frame for a face too close for YuNet's
        largest anchors (a child leaning in: recall on close, tilted, hand-covered faces 0.64 → 0.8 on the
        benchmark); then the half-size frame rolled by each of ``rolls`` for a head tilted towards a
        shoulder. The extra passes use a stricter score because small frames see more faces in drawings.
        A frame with a face mostly costs one pass; an empty room one full and three half-size passes.
        """
        self._pin_threads()
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
        proposals = self._detect_in(bgr, grey, self._view(bgr, self.detect_width), self.verify_from)
        found = [face for face in proposals if face.score >= self.min_score]
        if not found and self.verify_from < self.min_score:
            found = self._second_look(bgr, grey, proposals)
        if not found and self.close_width:
            small = self._view(bgr, self.close_width)
            found = self._detect_in(bgr, grey, small, self.close_min_score)
            for degrees in self.rolls:
                if found:
                    break
                found = self._detect_in(bgr, grey, _rolled(small, degrees), self.close_min_score)
        return sorted(found, key=lambda d: d.w * d.h, reverse=True)

    def _second_look(self, bgr: np.ndarray, grey: np.ndarray, doubtful: list[Detection]) -> list[Detection]:
        """Each doubtful face (the three best), centred in a 160 px view twice its size, kept if YuNet finds
        it there with the stricter score. The view repeats the frame's edge pixels beyond the frame, so a
        face cut by the edge is seen whole-ish. On the benchmark's development scenes no face-free frame
        got a face this way."""
        found = []
        for face in sorted(doubtful, key=lambda d: d.score or 0.0, reverse=True)[:3]:
            cx, cy = face.x + face.w / 2, face.y + face.h / 2
            if any(f.x <= cx <= f.x + f.w and f.y <= cy <= f.y + f.h for f in found):
                continue  # a second box around a face already confirmed
            scale = SECOND_LOOK_PX / (2.0 * max(face.w, face.h))
            matrix = np.array(
                [[scale, 0.0, SECOND_LOOK_PX / 2 - scale * cx], [0.0, scale, SECOND_LOOK_PX / 2 - scale * cy]]
            )
            view = cv2.warpAffine(
                bgr, matrix, (SECOND_LOOK_PX, SECOND_LOOK_PX), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            for again in self._detect_in(bgr, grey, (view, matrix, 0.0), self.close_min_score):
                if again.x <= cx <= again.x + again.w and again.y <= cy <= again.y + again.h:
                    found.append(again)
        return found

    @staticmethod
    def _view(bgr: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The frame resized to at most ``width``, with its frame-to-view affine matrix and roll."""
        scale = min(1.0, width / bgr.shape[1])
        small = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else bgr
        return small, np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]]), 0.0

    def _detect_in(
        self, bgr: np.ndarray, grey: np.ndarray, view: tuple[np.ndarray, np.ndarray, float], min_score: float
    ) -> list[Detection]:
        """Faces YuNet finds in one view of the frame, mapped back to frame pixels and clipped to it."""
        image, matrix, degrees = view
        scores, boxes, points = self._detect(np.ascontiguousarray(image), min_score)
        back = cv2.invertAffineTransform(matrix)
        height, frame_width = grey.shape[:2]
        found = []
        for score, box, marks in zip(scores, boxes, points, strict=True):
            cx, cy, bw, bh = _face_extent(box.astype(float), back, degrees)
            # a face's size is its height: YuNet's boxes are narrower than tall, and a 50 px face came out
            # 43 px wide and was dropped by the width (recall on small faces 0.78)
            confidence = float(score) / 100.0
            if max(bw, bh) < self.min_face_px or (
                max(bw, bh) < self.small_face_px and confidence < self.small_min_score
            ):
                continue  # a small face has few pixels of evidence: a teddy's face scored 0.66 at 52 px
            x0, y0 = max(0, round(cx - bw / 2)), max(0, round(cy - bh / 2))
            x1, y1 = min(frame_width, round(cx + bw / 2)), min(height, round(cy + bh / 2))
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            marks_in_frame = marks.reshape(5, 2).astype(float) @ back[:, :2].T + back[:, 2]
            landmarks = tuple((round(mx), round(my)) for mx, my in marks_in_frame)
            quality = (x1 - x0) * (y1 - y0) * sharpness(grey[y0:y1, x0:x1]) * confidence
            found.append(Detection(x0, y0, x1 - x0, y1 - y0, quality, score=confidence, landmarks=landmarks))
        return found


def _rolled(view: tuple[np.ndarray, np.ndarray, float], degrees: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The view rotated about its centre (same size, edges replicated), its matrix composed with the roll."""
    image, matrix, _ = view
    height, width = image.shape[:2]
    roll = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    rolled = cv2.warpAffine(image, roll, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    combined = roll[:, :2] @ matrix
    combined = np.hstack([combined[:, :2], (roll[:, :2] @ matrix[:, 2] + roll[:, 2])[:, None]])
    return rolled, combined, degrees


def _face_extent(box: np.ndarray, back: np.ndarray, degrees: float) -> tuple[float, float, float, float]:
    """Centre and size, in frame pixels, of the upright box around a face YuNet boxed in a (rolled) view.

    The face is taken as the ellipse inside YuNet's box: rolled back upright, its extent is narrower than
    the rolled box's corners, which would give a crop with too much background.
    """
    x, y, w, h = box
    cx, cy = back[:, :2] @ np.array([x + w / 2, y + h / 2]) + back[:, 2]
    scale = float(np.hypot(back[0, 0], back[1, 0]))
    a, b, theta = w * scale / 2, h * scale / 2, np.deg2rad(degrees)
    half_w = np.sqrt((a * np.cos(theta)) ** 2 + (b * np.sin(theta)) ** 2)
    half_h = np.sqrt((a * np.sin(theta)) ** 2 + (b * np.cos(theta)) ** 2)
    return float(cx), float(cy), float(2 * half_w), float(2 * half_h)


class FaceDetectCnn:
    """libfacedetection's ``facedetect_cnn`` called directly, with one result buffer per thread, reused.

    Why not ``yuface.detect``: its binding mallocs a 36 KiB result buffer on every call and never frees it
    (the numpy array it returns is a copy), so the camera grew ~25 MiB a minute in a soak (~1.5 GiB an hour
    at camera rate). The library call and the result layout are the same as the binding's: an int count,
    then 16 shorts per face (score 0-100, x, y, w, h, five landmark x/y pairs, padding).
    """

    SYMBOL = "_Z14facedetect_cnnPhS_iii"  # int* facedetect_cnn(unsigned char*, unsigned char*, int, int, int)
    BUFFER_BYTES = 0x20000  # what libfacedetection asks callers to provide
    ROW = 16

    def __init__(self, package_dir: Path) -> None:
        libs = sorted(package_dir.glob("libfacedetection.so*"))
        if not libs:
            raise OSError(f"no libfacedetection library in {package_dir}")
        function = getattr(ctypes.CDLL(str(libs[0])), self.SYMBOL)
        function.restype = ctypes.POINTER(ctypes.c_int)
        function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._function = function
        self._local = threading.local()

    def __call__(self, bgr: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores 0-100, boxes x/y/w/h, landmarks) of the faces scoring above ``min_score`` (0..1)."""
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError(f"facedetect_cnn needs an H×W×3 uint8 BGR image, not {bgr.shape} {bgr.dtype}")
        image = np.ascontiguousarray(bgr)
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = ctypes.create_string_buffer(self.BUFFER_BYTES)
        height, width = image.shape[:2]
        count = max(0, self._function(buffer, image.ctypes.data, width, height, width * 3)[0])
        count = min(count, (self.BUFFER_BYTES - 4) // (2 * self.ROW))
        rows = np.frombuffer(buffer, dtype=np.int16, count=count * self.ROW, offset=4).reshape(count, self.ROW)
        rows = rows[rows[:, 0] > min_score * 100].copy()
        return rows[:, 0], rows[:, 1:5], rows[:, 5:15]


def _bundled_omp_setter(package_dir: Path):
    """``omp_set_num_threads`` of the libgomp the yuface wheel bundles (auditwheel puts it in yuface.libs)."""
    libs = sorted((package_dir.parent / "yuface.libs").glob("libgomp*.so*"))
    if not libs:
        logger.info("yuface: no bundled libgomp found; its OpenMP thread count is left as it is")
        return None
    library = ctypes.CDLL(str(libs[0]))  # already loaded by yuface: this returns the same handle
    library.omp_set_num_threads.argtypes = [ctypes.c_int]
    return library.omp_set_num_threads


FaceDetector = HaarFaceDetector | DlibHogDetector | YuNetDetector
DETECTORS: dict[str, type[FaceDetector]] = {
    "yuface": YuNetDetector,
    "dlib-hog": DlibHogDetector,
    "haar": HaarFaceDetector,
}
FALLBACKS = {"yuface": "dlib-hog", "dlib-hog": "haar"}


def make_detector(name: str, min_face_px: int) -> FaceDetector:
    """The configured detector; when its package cannot load, the next one down (yuface → dlib-hog → haar)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose from {sorted(DETECTORS)}")
    try:
        return DETECTORS[name](min_face_px)
    except (ImportError, OSError) as exc:
        fallback = FALLBACKS.get(name)
        if fallback is None:
            raise
        logger.warning("face detector %s unavailable (%s): falling back to %s", name, exc, fallback)
        return make_detector(fallback, min_face_px)


def sharpness(grey_patch: np.ndarray) -> float:
    """Variance of the Laplacian, squashed to 0..1 (blurred faces score low)."""
    if grey_patch.size == 0:
        return 0.0
    variance = float(cv2.Laplacian(grey_patch, cv2.CV_64F).var())
    return variance / (variance + 100.0)


def face_crop(grey: np.ndarray, face: Detection) -> np.ndarray:
    """A square grey crop around the face with a small margin, resized to ``CROP_SIDE``."""
    side = int(max(face.w, face.h) * (1 + 2 * CROP_MARGIN))
    cx, cy = face.x + face.w // 2, face.y + face.h // 2
    x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
    patch = grey[y0 : y0 + side, x0 : x0 + side]
    return cv2.resize(patch, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)


def encode_crop(crop: np.ndarray) -> str:
    ok, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("JPEG encoding of the face crop failed")
    return base64.b64encode(jpeg.tobytes()).decode()
