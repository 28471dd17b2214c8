"""A new model proves itself before the kiosk keeps it: each task's health check on a model directory.

- emotion: classify a known face (the smiling astronaut photo scikit-image ships) → must say ``happy``
  with calibrated probabilities that sum to 1.
- story: load the LLM and write a short piece of a story.
- illustrate: load the diffusion pipeline with its safety checker.

``kiosk models check`` runs one in its own process, so a model that crashes the runtime cannot take the
installer down with it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from kiosk.config import Settings
from kiosk.modelstore.manifest import ModelError, load_manifest

logger = logging.getLogger(__name__)

KNOWN_FACE_EMOTION = "happy"


class HealthCheckFailed(RuntimeError):
    """The model loaded (or not) but does not do its job."""


def known_face():
    """The grey face crop of the sample photo, cut as the camera service cuts it."""
    import cv2

    from kiosk.camera.detector import face_crop, make_detector
    from kiosk.camera.sources import sample_photo

    grey = cv2.cvtColor(sample_photo(), cv2.COLOR_BGR2GRAY)
    faces = make_detector("dlib-hog", 48).detect(grey)
    if not faces:
        raise HealthCheckFailed("no face found in the sample photo (detector broken?)")
    return face_crop(grey, faces[0])


def check_emotion(model_dir: Path, settings: Settings) -> str:
    from kiosk.emotion.classifier import EmotionClassifier

    classifier = EmotionClassifier(model_dir, settings.emotion.runtimes, 1)
    prediction = classifier.classify(known_face())
    total = sum(prediction.calibrated_probs.values())
    if not all(math.isfinite(p) for p in prediction.calibrated_probs.values()) or abs(total - 1) > 0.01:
        raise HealthCheckFailed(f"probabilities are not a distribution (sum {total})")
    if prediction.emotion != KNOWN_FACE_EMOTION:
        raise HealthCheckFailed(
            f"the known smiling face was classified {prediction.emotion} ({prediction.confidence:.2f}),"
            f" not {KNOWN_FACE_EMOTION}"
        )
    return (
        f"{classifier.model_name} on {classifier.runtime.name}: known smiling face → {prediction.emotion}"
        f" ({prediction.confidence:.2f}) in {prediction.latency_ms:.1f} ms"
    )


def check_story(model_dir: Path, settings: Settings) -> str:
    from kiosk.story.factory import open_language_model

    manifest = load_manifest(model_dir)
    backend = "transformers" if manifest.backend == "transformers" else "llama-cpp"
    cfg = settings.story.model_copy(update={"model_path": model_dir, "backend": backend})
    model, _helpers, problem = open_language_model(cfg)
    if model is None:
        raise HealthCheckFailed(f"the story model does not load: {problem}")
    messages = [{"role": "user", "content": "Tell a short, kind story about a happy child in a garden."}]
    text = "".join(model.stream(messages, "Once upon a time", 16, 0.0, 1)).strip()
    if not text:
        raise HealthCheckFailed("the story model wrote nothing")
    return f"{model.name} wrote: Once upon a time {text[:60]!r}"


def check_illustrate(model_dir: Path, settings: Settings) -> str:
    from kiosk.illustrate.diffusion import DiffusionIllustrator, DiffusionSettings, DiffusionUnavailable

    allow = settings.illustrate.allow_without_safety_checker
    try:
        illustrator = DiffusionIllustrator(model_dir, DiffusionSettings(allow_without_safety_checker=allow))
    except DiffusionUnavailable as exc:
        raise HealthCheckFailed(str(exc)) from None
    return f"{illustrator.name} loaded with its safety checker"


CHECKS = {"emotion": check_emotion, "story": check_story, "illustrate": check_illustrate}


def check_model(task: str, model_dir: Path, settings: Settings) -> str:
    """Run ``task``'s check; returns what it saw, raises ``HealthCheckFailed``/``ModelError`` otherwise."""
    if task not in CHECKS:
        raise ModelError(f"no health check for task {task!r}")
    return CHECKS[task](Path(model_dir), settings)
