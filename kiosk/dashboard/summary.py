"""What staff see: the kiosk summary and an image-free event feed, built from the bus.

The dashboard service feeds every message it may read into ``KioskView.observe``; out come the retained
``summary`` (service states, model versions and runtimes, uptime, last emotion, stories today, latencies)
and, for the staff page, one small dict per event. Neither ever holds an image, a crop, or the child's
attributes (age group, gender, clothing, glasses): staff see emotions, stories, stats and status only.

Every payload is checked before it counts: its size against the topic's limit, its schema (timestamps
included: a real time, not from the future) and the service a status topic names (the topic decides it,
from the fixed set of services). ``observe`` raises ``ValueError`` with the reason for anything it refuses,
so the service can send a dead letter; what the view keeps is bounded whatever arrives.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from collections import OrderedDict, deque
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiosk.emotion.labels import Emotion
from kiosk.events import (
    SERVICES,
    DeployResult,
    EmotionEvent,
    ErrorEvent,
    KioskSummary,
    ModelState,
    PresenceEvent,
    ServiceMetrics,
    StatusPayload,
    StoryEvent,
    check_size,
    reason_of,
)

logger = logging.getLogger(__name__)

LATENCY_WINDOW = 50

# topic under kiosk/<id>/ -> payload kind (its size limit and schema)
TOPIC_KINDS = {
    "presence": "presence",
    "emotion": "emotion",
    "story": "story",
    "metrics": "metrics",
    "error": "error",
    "models/deploy": "deploy",
}


class SavedCounts(BaseModel):
    """The day's counts as kept on disk across restarts."""

    model_config = ConfigDict(extra="ignore")

    day: str = Field(max_length=10)
    emotions: dict[Emotion, int] = Field(default_factory=dict)
    stories: int = Field(0, ge=0)
    fallback: int = Field(0, ge=0)


def parse(model: type[BaseModel], kind: str, payload: bytes):
    """``model`` from a JSON payload, or ``ValueError`` with a short reason that never quotes the payload."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise ValueError(f"invalid {kind} payload: {reason_of(exc)}") from None


def _split_label(label: object) -> tuple[str | None, str | None]:
    if not isinstance(label, str) or not label:
        return None, None
    name, _, version = label.partition("@")
    return name, version or None


class KioskView:
    """Thread-safe state of one kiosk as staff may see it; daily counts kept across restarts."""

    def __init__(self, kiosk_id: str, state_file: Path | None = None, pipeline: tuple[str, ...] = ()) -> None:
        self.kiosk_id = kiosk_id
        self.state_file = state_file
        self.started = time.time()
        self.services: dict[str, str] = dict.fromkeys(pipeline, "unknown")
        self.details: dict[str, dict] = {}
        self.metrics: dict[str, ServiceMetrics] = {}
        self.child_present = False
        self.last_emotion: str | None = None
        self.last_emotion_ts: float | None = None
        self.day = date.today().isoformat()
        self.emotions_today: dict[str, int] = {}
        self.stories_today = 0
        self.fallback_today = 0
        self._emotion_ts: OrderedDict[str, float] = OrderedDict()
        self._story_ts: OrderedDict[str, float] = OrderedDict()  # stories that arrived before their emotion
        self._latency: dict[str, deque[float]] = {
            "emotion_inference": deque(maxlen=LATENCY_WINDOW),
            "emotion_to_story": deque(maxlen=LATENCY_WINDOW),
        }
        self._lock = threading.Lock()
        self._load()

    # -- persistence of the day's counts -------------------------------------------------------
    def _load(self) -> None:
        if not self.state_file or not self.state_file.is_file():
            return
        try:
            saved = SavedCounts.model_validate_json(self.state_file.read_bytes())
        except ValueError:
            logger.warning("%s is unreadable; counts start from zero", self.state_file)
            return
        if saved.day == self.day:
            self.emotions_today = dict(saved.emotions)
            self.stories_today, self.fallback_today = saved.stories, saved.fallback

    def _save(self) -> None:
        if self.state_file:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            counts = {"emotions": self.emotions_today, "stories": self.stories_today, "fallback": self.fallback_today}
            self.state_file.write_text(json.dumps({"day": self.day} | counts))

    def _roll_day(self, now: float) -> None:
        """Counts are per day of arrival (this machine's clock), whatever time an event claims."""
        day = datetime.fromtimestamp(now).date().isoformat()
        if day != self.day:
            self.day, self.emotions_today, self.stories_today, self.fallback_today = day, {}, 0, 0

    # -- input ---------------------------------------------------------------------------------
    def observe(self, relative_topic: str, payload: bytes) -> dict | None:
        """Take one message; return the staff feed entry for it (None when staff need not see it).

        Raises ``ValueError`` with the reason when the payload is refused; the view is then unchanged.
        """
        service = relative_topic.removeprefix("status/") if relative_topic.startswith("status/") else None
        kind = "status" if service is not None else TOPIC_KINDS.get(relative_topic)
        if kind is None:
            return None
        check_size(kind, payload)
        if service is not None:
            return self._on_status(service, payload)
        handler = {
            "presence": self._on_presence,
            "emotion": self._on_emotion,
            "story": self._on_story,
            "metrics": self._on_metrics,
            "error": self._on_error,
            "deploy": self._on_deploy,
        }[kind]
        return handler(payload)

    def _on_status(self, service: str, payload: bytes) -> dict:
        if service not in SERVICES:
            raise ValueError("status for a service this kiosk does not have")
        status = parse(StatusPayload, "status", payload)
        if status.service != service:
            raise ValueError(f"status/{service} carries a status of {status.service}: the topic decides the service")
        with self._lock:
            self.services[service] = status.state
            self.details[service] = dict(status.detail)
        return {"kind": "status", "service": service, "state": status.state, "ts": status.ts}

    def _on_metrics(self, payload: bytes) -> None:
        metrics = parse(ServiceMetrics, "metrics", payload)
        with self._lock:
            self.metrics[metrics.service] = metrics
        return None

    def _on_presence(self, payload: bytes) -> dict:
        presence = parse(PresenceEvent, "presence", payload)
        with self._lock:
            self.child_present = presence.state == "arrived"
        return {"kind": "presence", "state": presence.state, "session": presence.session_id[:8], "ts": presence.ts}

    def _on_error(self, payload: bytes) -> dict:
        error = parse(ErrorEvent, "error", payload)
        return {"kind": "error", "service": error.service, "reason": error.reason[:300], "ts": error.ts}

    def _on_deploy(self, payload: bytes) -> dict:
        result = parse(DeployResult, "deploy", payload)
        return {"kind": "deploy"} | result.model_dump()

    def _on_emotion(self, payload: bytes) -> dict:
        event = parse(EmotionEvent, "emotion", payload)
        with self._lock:
            return self._count_emotion(event)

    def _count_emotion(self, event: EmotionEvent) -> dict:
        self._roll_day(time.time())
        self.last_emotion, self.last_emotion_ts = event.emotion, event.ts
        self.emotions_today[event.emotion] = self.emotions_today.get(event.emotion, 0) + 1
        self._remember(self._emotion_ts, event.event_id, event.ts)
        if (story_ts := self._story_ts.pop(event.event_id, None)) is not None:
            self._latency["emotion_to_story"].append(max(0.0, (story_ts - event.ts) * 1000))
        self._latency["emotion_inference"].append(event.latency_ms)
        self._save()
        return {
            "kind": "emotion",
            "emotion": event.emotion,
            "detected": event.detected,
            "confidence": event.confidence,
            "runtime": event.runtime,
            "latency_ms": event.latency_ms,
            "session": event.session_id[:8],
            "ts": event.ts,
        }

    def _on_story(self, payload: bytes) -> dict:
        event = parse(StoryEvent, "story", payload)
        with self._lock:
            return self._count_story(event)

    def _count_story(self, event: StoryEvent) -> dict:
        self._roll_day(time.time())
        self.stories_today += 1
        self.fallback_today += int(event.fallback)
        if (emotion_ts := self._emotion_ts.get(event.causation_id or "")) is not None:
            self._latency["emotion_to_story"].append(max(0.0, (event.ts - emotion_ts) * 1000))
        elif event.causation_id:  # topics are ordered one by one, not across: the emotion may come next
            self._remember(self._story_ts, event.causation_id, event.ts)
        self._save()
        return {
            "kind": "story",
            "title": event.title,
            "emotion": event.emotion,
            "generator": event.generator,
            "fallback": event.fallback,
            "latency_ms": event.latency_ms,
            "scenes": [scene.text for scene in event.scenes],
            "session": event.session_id[:8],
            "ts": event.ts,
        }

    @staticmethod
    def _remember(times: OrderedDict[str, float], event_id: str, ts: float, limit: int = 256) -> None:
        times[event_id] = ts
        while len(times) > limit:
            times.popitem(last=False)

    # -- output --------------------------------------------------------------------------------
    def models(self) -> dict[str, ModelState]:
        emotion = self.details.get("emotion", {})
        story = self.details.get("story", {})
        illustrate = self.details.get("illustrate", {})
        states = {}
        for task, detail, runtime in (
            ("emotion", emotion, emotion.get("runtime")),
            ("story", story, story.get("generator")),
            ("illustrate", illustrate, illustrate.get("illustrator")),
        ):
            name, version = _split_label(detail.get("model"))
            states[task] = ModelState(name=name, version=version, runtime=runtime)
        return states

    def summary(self) -> KioskSummary:
        with self._lock:
            self._roll_day(time.time())
            camera_metrics = self.metrics.get("camera")
            latency = {
                f"{stage}_p50": round(statistics.median(values), 1) for stage, values in self._latency.items() if values
            }
            return KioskSummary(
                kiosk_id=self.kiosk_id,
                uptime_s=round(time.time() - self.started, 1),
                services=dict(self.services),
                models=self.models(),
                paused=bool(self.details.get("camera", {}).get("paused", False)),
                child_present=self.child_present,
                last_emotion=self.last_emotion,
                last_emotion_ts=self.last_emotion_ts,
                stories_today=self.stories_today,
                emotions_today=dict(self.emotions_today),
                fallback_stories_today=self.fallback_today,
                latency_ms=latency,
                fps=camera_metrics.stage.get("fps") if camera_metrics else None,
            )

    def health(self) -> dict[str, dict]:
        """Per service: state and its latest metrics (for the staff page)."""
        with self._lock:
            return {
                name: {"state": state} | (self.metrics[name].model_dump() if name in self.metrics else {})
                for name, state in sorted(self.services.items())
            }
