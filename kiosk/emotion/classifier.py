"""The emotion classifier the kiosk serves: a verified model directory behind the best runtime here."""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from kiosk.emotion.data import FACE_SIZE
from kiosk.emotion.labels import EMOTIONS
from kiosk.emotion.metrics import softmax
from kiosk.emotion.runtimes import open_runtime
from kiosk.events import FACE_CROP_SIDE
from kiosk.modelstore.manifest import ModelError, load_manifest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    emotion: str
    confidence: float
    calibrated_probs: dict[str, float]
    latency_ms: float


def face_pixels(grey_faces: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 grey faces → (N, 1, 48, 48) float32 in [0, 1]."""
    resized = [
        face
        if face.shape == (FACE_SIZE, FACE_SIZE)
        else cv2.resize(face, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
        for face in grey_faces
    ]
    return (np.stack(resized).astype(np.float32) / 255.0)[:, None]


SHIFTS = ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2))


def tta_views(pixels: np.ndarray) -> list[np.ndarray]:
    """Test-time views: the face, shifted by 2 px four ways, and all of those mirrored (10 views)."""
    padded = np.pad(pixels, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    views = [padded[:, :, 2 + dy : 50 + dy, 2 + dx : 50 + dx] for dx, dy in SHIFTS]
    return views + [view[..., ::-1] for view in views]


def declared_image(data: bytes) -> tuple[str | None, int, int]:
    """Format, width and height an image's header declares, read without decoding a pixel (PIL opens lazily)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format, image.width, image.height
    except Image.DecompressionBombError:
        raise ValueError(
            f"image declares more than {2 * Image.MAX_IMAGE_PIXELS} pixels: a decompression bomb"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, ImportError):  # ultralytics patches open()
        raise ValueError("not a readable image") from None


def decode_grey(jpeg: bytes, max_side: int = FACE_CROP_SIDE) -> np.ndarray:
    """The face crop's grey pixels, decoded only once its header shows a JPEG no larger than a crop.

    A few hundred bytes of JPEG can declare 32000×32000 pixels; decoding that would take gigabytes, so the
    declared size is checked first (crops are ``FACE_CROP_SIDE`` square by contract).
    """
    kind, width, height = declared_image(jpeg)
    if kind != "JPEG":
        raise ValueError(f"face crop is {kind or 'an unknown format'}, not a JPEG")
    if width > max_side or height > max_side:
        raise ValueError(f"face crop declares {width}×{height} pixels; a crop is at most {max_side}×{max_side}")
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None or max(image.shape) > max_side:
        raise ValueError("face crop is not a decodable image")
    return image


class EmotionClassifier:
    """Loads ``manifest.json`` + ONNX from a model directory and classifies grey face crops."""

    def __init__(
        self,
        model_dir: Path,
        runtimes: list[str],
        threads: int = 1,
        engine_cache_dir: Path | None = None,
        tta: bool = False,
    ) -> None:
        self.manifest = load_manifest(model_dir)
        onnx_files = [f.path for f in self.manifest.files if f.path.endswith(".onnx")]
        if not onnx_files:
            raise ModelError(f"{self.manifest.name}: manifest lists no .onnx file")
        if self.manifest.labels and list(self.manifest.labels) != list(EMOTIONS):
            raise ModelError(f"{self.manifest.name}: labels {self.manifest.labels} are not FER2013's order")
        self.runtime = open_runtime(Path(model_dir) / onnx_files[0], runtimes, threads, engine_cache_dir)
        self.temperature = self.manifest.calibration_temperature
        self.tta = tta

    @property
    def model_name(self) -> str:
        return f"{self.manifest.name}@{self.manifest.version}"

    def logits(self, grey_faces: np.ndarray) -> np.ndarray:
        """Logits per face; with ``tta``, the mean over 10 views computed in one runtime call."""
        pixels = face_pixels(grey_faces)
        if not self.tta:
            return self.runtime.logits(pixels)
        views = tta_views(pixels)
        logits = self.runtime.logits(np.ascontiguousarray(np.concatenate(views)))
        return logits.reshape(len(views), len(pixels), -1).mean(axis=0)

    def classify(self, grey_face: np.ndarray) -> Prediction:
        started = time.perf_counter()
        probs = softmax(self.logits(grey_face[None]), self.temperature)[0]
        latency_ms = (time.perf_counter() - started) * 1000
        best = int(probs.argmax())
        return Prediction(
            emotion=EMOTIONS[best],
            confidence=float(probs[best]),
            calibrated_probs={name: round(float(p), 4) for name, p in zip(EMOTIONS, probs, strict=True)},
            latency_ms=latency_ms,
        )
