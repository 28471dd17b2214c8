"""The emotion service: a face crop in, calibrated emotion probabilities out (crop never stored)."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator

from kiosk.emotion.classifier import EmotionClassifier, decode_grey
from kiosk.events import EmotionEvent, Event, FaceEvent
from kiosk.service import Service

logger = logging.getLogger(__name__)

GENTLE_EMOTION = "neutral"


class EmotionService(Service):
    name = "emotion"
    listens = ("face",)

    def setup(self) -> None:
        cfg = self.settings.emotion
        self.classifier = EmotionClassifier(cfg.model_dir, cfg.runtimes, cfg.threads)
        logger.info("emotion model %s on %s", self.classifier.model_name, self.classifier.runtime.name)

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        classifier = getattr(self, "classifier", None)
        return {"model": classifier.model_name, "runtime": classifier.runtime.name} if classifier else {}

    def handle(self, event: Event) -> Iterator[Event]:
        assert isinstance(event, FaceEvent)
        try:
            jpeg = base64.b64decode(event.crop_jpeg_b64, validate=True)
        except binascii.Error:
            raise ValueError("face crop is not valid base64") from None
        prediction = self.classifier.classify(decode_grey(jpeg))
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
            attributes=event.attributes,
        )
