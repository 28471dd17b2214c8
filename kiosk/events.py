"""The one place that owns the kiosk's MQTT topics and event schemas.

Every payload on the bus is JSON validated by one of these pydantic models. Each event carries a schema
version, its own id (handlers are idempotent by it), the id of the child's visit (``session_id``), a
timestamp and the id of the event it answers (``causation_id``).
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kiosk.emotion.labels import Emotion

SCHEMA_VERSION = 1
ROOT = "kiosk"

SERVICES: tuple[str, ...] = ("camera", "emotion", "story", "illustrate", "web", "dashboard")
PIPELINE_SERVICES: tuple[str, ...] = SERVICES[:5]
COMMANDS: tuple[str, ...] = ("pause", "reload-models")


class Topics:
    """Topic names under ``kiosk/<kiosk_id>/``."""

    def __init__(self, kiosk_id: str) -> None:
        if not kiosk_id or any(c in kiosk_id for c in "/+#"):
            raise ValueError(f"kiosk id {kiosk_id!r} must be non-empty and free of '/', '+' and '#'")
        self.kiosk_id = kiosk_id
        self.base = f"{ROOT}/{kiosk_id}"

    def __getattr__(self, name: str) -> str:
        if name in PIPELINE_TOPICS:
            return f"{self.base}/{PIPELINE_TOPICS[name]}"
        raise AttributeError(name)

    def status(self, service: str) -> str:
        return f"{self.base}/status/{service}"

    def command(self, action: str) -> str:
        return f"{self.base}/cmd/{action}/set"

    @property
    def error(self) -> str:
        return f"{self.base}/error"

    @property
    def metrics(self) -> str:
        return f"{self.base}/metrics"

    @property
    def summary(self) -> str:
        """Retained kiosk summary for staff dashboards (written by the dashboard service)."""
        return f"{self.base}/summary"

    @property
    def deploy(self) -> str:
        """Retained result of the last model installation."""
        return f"{self.base}/models/deploy"

    def update(self, task: str) -> str:
        """Retained installed model version of one task (a Home Assistant update entity)."""
        return f"{self.base}/models/{task}"

    def relative(self, topic: str) -> str:
        """The part after ``kiosk/<kiosk_id>/``, or the whole topic if it lies elsewhere."""
        prefix = self.base + "/"
        return topic[len(prefix) :] if topic.startswith(prefix) else topic


# attribute name -> topic suffix, in pipeline order
PIPELINE_TOPICS: dict[str, str] = {
    "presence": "presence",
    "face": "face",
    "emotion": "emotion",
    "story_partial": "story/partial",
    "story": "story",
    "illustration": "illustration",
}


def new_id() -> str:
    return uuid.uuid4().hex


class Event(BaseModel):
    """Fields every pipeline event carries."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    schema_version: int = Field(SCHEMA_VERSION, alias="schema", title="Schema version")
    event_id: str = Field(default_factory=new_id, min_length=8, max_length=64)
    session_id: str = Field(min_length=1, max_length=64, description="one child's visit")
    ts: float = Field(default_factory=time.time, description="seconds since the epoch")
    causation_id: str | None = Field(None, description="event_id of the event this one answers")

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class Attributes(BaseModel):
    """What the kiosk may use to personalise a story; each only when confident."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    age_group: Literal["young child", "teenager", "young adult"] | None = None
    gender: Literal["female", "male"] | None = Field(None, description="estimated; stories never use it")
    clothing_colour: str | None = Field(None, max_length=32)
    glasses: bool | None = None


class BoundingBox(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    x: int
    y: int
    w: int = Field(gt=0)
    h: int = Field(gt=0)


class PresenceEvent(Event):
    kind: Literal["presence"] = "presence"
    state: Literal["arrived", "left"]


class FaceEvent(Event):
    """The only event that carries an image: never retained, readable by the emotion service alone."""

    kind: Literal["face"] = "face"
    crop_jpeg_b64: str = Field(min_length=16, max_length=200_000, description="grey face crop, JPEG")
    box: BoundingBox
    frame_width: int = Field(gt=0)
    frame_height: int = Field(gt=0)
    quality: float = Field(ge=0, description="size × sharpness score of the chosen crop")
    attributes: Attributes = Attributes()

    def redacted(self) -> dict:
        """The event as a staff-safe dict: the crop replaced by its size."""
        data = self.model_dump(by_alias=True)
        data["crop_jpeg_b64"] = f"<redacted: {len(self.crop_jpeg_b64)} base64 chars>"
        return data


class EmotionEvent(Event):
    kind: Literal["emotion"] = "emotion"
    emotion: Emotion = Field(description="the emotion the story is made for")
    detected: Emotion = Field(description="the classifier's top class before the confidence rule")
    confidence: float = Field(ge=0, le=1)
    probabilities: dict[str, float]
    runtime: str = Field(description="inference runtime, e.g. onnxruntime-cpu")
    model: str = Field(description="model name and version")
    latency_ms: float = Field(ge=0)
    attributes: Attributes = Attributes()


class Scene(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=1, max_length=600)
    illustration_prompt: str = Field(min_length=1, max_length=400)
    setting: str = Field(description="where the scene happens, for the illustrator")
    objects: list[str] = Field(default_factory=list, max_length=6)
    mood: Emotion = Field(description="the feeling the picture shows")


class HeroLook(BaseModel):
    """How the story's invented hero looks, so every picture of a story shows the same child."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(max_length=200)
    clothing_colour: str | None = Field(None, max_length=32)
    glasses: bool = False


class StoryPartialEvent(Event):
    kind: Literal["story_partial"] = "story_partial"
    seq: int = Field(ge=0)
    text: str = Field(description="the story so far")


class StoryEvent(Event):
    kind: Literal["story"] = "story"
    emotion: Emotion
    title: str = Field(min_length=1, max_length=120)
    scenes: list[Scene] = Field(min_length=1, max_length=6)
    hero: HeroLook
    generator: str = Field(description="which storyteller wrote it, e.g. template")
    fallback: bool = Field(description="true when the template story stood in for the LLM")
    latency_ms: float = Field(ge=0)


class IllustrationEvent(Event):
    kind: Literal["illustration"] = "illustration"
    story_id: str
    scene_index: int = Field(ge=0)
    scene_count: int = Field(gt=0)
    media_type: Literal["image/svg+xml", "image/png", "image/jpeg"]
    image_b64: str = Field(min_length=16, max_length=4_000_000)
    illustrator: str = Field(description="which illustrator drew it, e.g. storybook (offline)")
    latency_ms: float = Field(ge=0)


class StatusPayload(BaseModel):
    """Retained service status; ``offline`` is set by the broker from the last will."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["online", "offline", "stopped"]
    service: str
    ts: float = Field(default_factory=time.time)
    detail: dict[str, str | float | int | bool | None] = Field(default_factory=dict)


class ErrorEvent(BaseModel):
    """A dead letter: what arrived where, and why it was refused."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(default_factory=new_id)
    ts: float = Field(default_factory=time.time)
    service: str
    topic: str
    reason: str
    payload_excerpt: str = Field(max_length=200, description="start of the refused payload (never images)")


class Command(BaseModel):
    """``cmd/<action>/set``: ``pause`` with value ON/OFF, ``reload-models`` with PRESS. Never retained."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(default_factory=new_id)
    ts: float = Field(default_factory=time.time)
    value: str | None = Field(None, max_length=32)


class ServiceMetrics(BaseModel):
    """Periodic numbers from one service on ``metrics``: no image and nothing about a child."""

    model_config = ConfigDict(extra="forbid")

    service: str
    ts: float = Field(default_factory=time.time)
    uptime_s: float = Field(ge=0)
    rss_mib: float = Field(ge=0, description="resident memory of the process")
    cpu_percent: float = Field(ge=0, description="CPU time over the last interval, % of one core")
    gpu_mib: float | None = Field(None, description="GPU memory allocated by torch, when a GPU is used")
    queue_depth: int = Field(ge=0, description="events received and not yet handled")
    outbox: int = Field(ge=0, description="events waiting for the broker")
    handled: int = Field(ge=0)
    errors: int = Field(ge=0)
    stage: dict[str, float] = Field(default_factory=dict, description="service figures: fps, latency_ms_p50, ...")


class ModelState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    version: str | None = None
    runtime: str | None = None


class KioskSummary(BaseModel):
    """Retained ``summary`` for staff dashboards: state and counts, never images or child attributes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: int = Field(SCHEMA_VERSION, alias="schema")
    kiosk_id: str
    ts: float = Field(default_factory=time.time)
    uptime_s: float = Field(ge=0)
    services: dict[str, str] = Field(description="service -> online / offline / stopped")
    models: dict[str, ModelState]
    paused: bool = False
    child_present: bool = False
    last_emotion: str | None = None
    last_emotion_ts: float | None = None
    stories_today: int = 0
    emotions_today: dict[str, int] = Field(default_factory=dict)
    fallback_stories_today: int = 0
    latency_ms: dict[str, float] = Field(default_factory=dict, description="median per stage, recent visits")
    fps: float | None = None


class DeployResult(BaseModel):
    """Retained ``models/deploy``: what the last installation did."""

    model_config = ConfigDict(extra="forbid")

    ts: float = Field(default_factory=time.time)
    ok: bool
    action: Literal["installed", "rolled back", "refused"]
    task: str | None = None
    name: str | None = None
    version: str | None = None
    previous: str | None = None
    reason: str = ""
    seconds: float = Field(ge=0)


EVENT_TYPES: dict[str, type[Event]] = {
    "presence": PresenceEvent,
    "face": FaceEvent,
    "emotion": EmotionEvent,
    "story_partial": StoryPartialEvent,
    "story": StoryEvent,
    "illustration": IllustrationEvent,
}


def parse_event(kind: str, payload: bytes) -> Event:
    """Validate a payload as the event of ``kind``; raise ``ValueError`` with a readable reason."""
    model = EVENT_TYPES[kind]
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid {kind} event: {problems}") from None
