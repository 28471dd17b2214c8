"""The emotion service: a face crop in, calibrated emotion probabilities out (crop never stored)."""

from __future__ import annotations

import base64
import binascii
import logging
import statistics
from collections import deque
from collections.abc import Iterator

from kiosk.emotion.classifier import EmotionClassifier, decode_grey
from kiosk.events import Command, EmotionEvent, Event, FaceEvent
from kiosk.modelstore.registry import active_model_dir
from kiosk.service import Service

logger = logging.getLogger(__name__)

GENTLE_EMOTION = "neutral"


class EmotionService(Service):
    name = "emotion"
    listens = ("face",)
    commands = ("reload-models",)

    def setup(self) -> None:
        self.latencies: deque[float] = deque(maxlen=50)
        self.classifier = self._load()

    def _load(self) -> EmotionClassifier:
        cfg = self.settings.emotion
        classifier = EmotionClassifier(
            active_model_dir(self.settings, "emotion"),
            cfg.runtimes,
            cfg.threads,
            self.settings.run_dir / "engines",
            tta=cfg.tta,
        )
        logger.info("emotion model %s on %s", classifier.model_name, classifier.runtime.name)
        return classifier

    def on_command(self, action: str, command: Command) -> None:
        if action == "reload-models":
            self.classifier = self._load()  # a model that fails to load leaves the current one serving

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        classifier = getattr(self, "classifier", None)
        if not classifier:
            return {}
        return {"model": classifier.model_name, "runtime": classifier.runtime.name, "tta": classifier.tta}

    def stage_metrics(self) -> dict[str, float]:
        latencies = list(getattr(self, "latencies", ()))
        return {"latency_ms_p50": round(statistics.median(latencies), 2)} if latencies else {}

    def handle(self, event: Event) -> Iterator[Event]:
        assert isinstance(event, FaceEvent)
        try:
            jpeg = base64.b64decode(event.crop_jpeg_b64, validate=True)
        except binascii.Error:
            raise ValueError("face crop is not valid base64") from None
        prediction = self.classifier.classify(decode_grey(jpeg))
        self.latencies.append(prediction.latency_ms)
        unsure = prediction.confidence < self.settings.emotion.unsure_below
        if unsure:
            logger.info(
                "unsure (%.2f < %.2f) of %s: a gentle %s story instead",
                prediction.confidence,
                self.settings.emotion.unsure_below,
                prediction.emotion,
                GENTLE_EMOTION,
            )
        yield EmotionEvent(
            session_id=event.session_id,
            causation_id=event.event_id,
            emotion=GENTLE_EMOTION if unsure else prediction.emotion,
            detected=prediction.emotion,
            confidence=round(prediction.confidence, 4),
            probabilities=prediction.calibrated_probs,
            runtime=self.classifier.runtime.name,
            model=self.classifier.model_name,
            latency_ms=round(prediction.latency_ms, 2),
            # gender stops here: no story uses it, so it never reaches a topic staff can read
            attributes=event.attributes.model_copy(update={"gender": None}),
        )
