"""Face detection with the Haar cascade that OpenCV ships, and the face crop the emotion service needs."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.events import FACE_CROP_SIDE

logger = logging.getLogger(__name__)

CROP_SIDE = FACE_CROP_SIDE  # twice the emotion network's input: enough to classify, too small to keep a likeness
CROP_MARGIN = 0.12


@dataclass(frozen=True)
class Detection:
    x: int
    y: int
    w: int
    h: int
    quality: float  # area × sharpness, larger is better


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


DETECTORS = {"haar": HaarFaceDetector, "dlib-hog": DlibHogDetector}


def make_detector(name: str, min_face_px: int) -> HaarFaceDetector | DlibHogDetector:
    """The configured detector; OpenCV's cascade when dlib is not installed."""
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose from {sorted(DETECTORS)}")
    try:
        return DETECTORS[name](min_face_px)
    except ImportError as exc:
        logger.warning("face detector %s unavailable (%s): using OpenCV's Haar cascade", name, exc)
        return HaarFaceDetector(min_face_px)


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
