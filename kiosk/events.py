"""The one place that owns the kiosk's MQTT topics and event schemas.

Every payload on the bus is JSON validated by one of these pydantic models. Each event carries a schema
version, its own id (handlers are idempotent by it), the id of the child's visit (``session_id``), a
timestamp and the id of the event it answers (``causation_id``).

Every payload is bounded, because whatever a reader keeps or forwards (the staff summary, the screen, the
dead letters) must stay small however a payload was made: a byte limit per topic is checked before parsing,
every string has a maximum length, lists and dicts a maximum size, numbers must be finite and timestamps
lie in a sane range. Service names come from a fixed set, and the words that reach a picture (setting,
objects, colours) are plain lower-case words, never markup.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from kiosk.emotion.labels import Emotion

SCHEMA_VERSION = 1
ROOT = "kiosk"

ServiceName = Literal["camera", "emotion", "story", "illustrate", "narrate", "web", "dashboard"]
SERVICES: tuple[str, ...] = get_args(ServiceName)
PIPELINE_SERVICES: tuple[str, ...] = SERVICES[:6]
COMMANDS: tuple[str, ...] = ("pause", "reload-models")
ModelTask = Literal["emotion", "story", "illustrate"]

# Colour names the camera reports and the storybook paints: an enumeration, so no free text reaches a picture.
Colour = Literal[
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "grey", "gray"
]

# 2100-01-01: later than any real clock, early enough for every date conversion (1e20 is not a time).
LATEST_TS = 4_102_444_800.0
FUTURE_SLACK_S = 300.0  # every service stamps events with this machine's clock: a later time is made up


def _not_in_the_future(ts: float) -> float:
    if ts > time.time() + FUTURE_SLACK_S:
        raise ValueError("timestamp lies in the future")
    return ts


Timestamp = Annotated[
    float, Field(ge=0, lt=LATEST_TS, description="seconds since the epoch"), AfterValidator(_not_in_the_future)
]

# Largest payload, in bytes, that a reader parses on each topic; anything longer is refused unread.
MAX_PAYLOAD_BYTES: dict[str, int] = {
    "presence": 2_048,
    "face": 220_000,  # the crop (at most 200,000 base64 characters) and its envelope
    "emotion": 8_192,
    "story_partial": 32_768,
    "story": 65_536,
    "illustration": 4_100_000,
    "narration": 3_200_000,  # one part of a scene: a sentence or two of 16-bit WAV, base64
    "status": 16_384,
    "metrics": 8_192,
    "error": 16_384,
    "command": 1_024,
    "deploy": 8_192,
}

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


def _cut(limit: int) -> AfterValidator:
    """Truncate a free text a service writes itself (an exception, a log line) instead of refusing it."""
    return AfterValidator(lambda text: text[:limit])


Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Label = Annotated[str, StringConstraints(max_length=128)]
Word = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z -]{0,23}$")]
FreeText = Annotated[str, _cut(300)]


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
    "narration": "narration",
}


def new_id() -> str:
    return uuid.uuid4().hex


class Event(BaseModel):
    """Fields every pipeline event carries."""

    model_config = STRICT | ConfigDict(populate_by_name=True, frozen=True)

    schema_version: int = Field(SCHEMA_VERSION, alias="schema", title="Schema version", ge=0, le=1000)
    event_id: str = Field(default_factory=new_id, min_length=8, max_length=64)
    session_id: str = Field(min_length=1, max_length=64, description="one child's visit")
    ts: Timestamp = Field(default_factory=time.time)
    causation_id: Id | None = Field(None, description="event_id of the event this one answers")

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class Attributes(BaseModel):
    """What the kiosk may use to personalise a story; each only when confident."""

    model_config = STRICT | ConfigDict(frozen=True)

    age_group: Literal["young child", "teenager", "young adult"] | None = None
    gender: Literal["female", "male"] | None = Field(None, description="estimated; stories never use it")
    clothing_colour: Colour | None = None
    glasses: bool | None = None


PIXELS = 100_000  # more than any camera frame's side


class BoundingBox(BaseModel):
    model_config = STRICT | ConfigDict(frozen=True)

    x: int = Field(ge=-PIXELS, le=PIXELS)
    y: int = Field(ge=-PIXELS, le=PIXELS)
    w: int = Field(gt=0, le=PIXELS)
    h: int = Field(gt=0, le=PIXELS)


class PresenceEvent(Event):
    kind: Literal["presence"] = "presence"
    state: Literal["arrived", "left"]


FACE_CROP_SIDE = 96  # the crop is FACE_CROP_SIDE × FACE_CROP_SIDE grey pixels, JPEG: readers refuse anything larger


class FaceEvent(Event):
    """The only event that carries an image: never retained, readable by the emotion service alone."""

    kind: Literal["face"] = "face"
    crop_jpeg_b64: str = Field(min_length=16, max_length=200_000, description="grey face crop, JPEG")
    box: BoundingBox
    frame_width: int = Field(gt=0, le=PIXELS)
    frame_height: int = Field(gt=0, le=PIXELS)
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
    probabilities: dict[Emotion, Annotated[float, Field(ge=0, le=1)]] = Field(max_length=7)
    runtime: str = Field(max_length=64, description="inference runtime, e.g. onnxruntime-cpu")
    model: Label = Field(description="model name and version")
    latency_ms: float = Field(ge=0, le=3_600_000)
    attributes: Attributes = Attributes()


class Scene(BaseModel):
    model_config = STRICT | ConfigDict(frozen=True)

    text: str = Field(min_length=1, max_length=600)
    illustration_prompt: str = Field(min_length=1, max_length=400)
    setting: Word = Field(description="where the scene happens, for the illustrator: one plain word or two")
    objects: list[Word] = Field(default_factory=list, max_length=6)
    mood: Emotion = Field(description="the feeling the picture shows")


class HeroLook(BaseModel):
    """How the story's invented hero looks, so every picture of a story shows the same child."""

    model_config = STRICT | ConfigDict(frozen=True)

    description: str = Field(max_length=200)
    clothing_colour: Colour | None = None
    glasses: bool = False


MAX_SCENES = 6


class StoryPartialEvent(Event):
    kind: Literal["story_partial"] = "story_partial"
    seq: int = Field(ge=0, le=10_000)
    text: str = Field(max_length=6_000, description="the story so far")


class StoryEvent(Event):
    kind: Literal["story"] = "story"
    emotion: Emotion
    title: str = Field(min_length=1, max_length=120)
    scenes: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)
    hero: HeroLook
    generator: str = Field(max_length=64, description="which storyteller wrote it, e.g. template")
    fallback: bool = Field(description="true when the template story stood in for the LLM")
    latency_ms: float = Field(ge=0, le=3_600_000)


class IllustrationEvent(Event):
    kind: Literal["illustration"] = "illustration"
    story_id: Id
    scene_index: int = Field(ge=0, lt=MAX_SCENES)
    scene_count: int = Field(gt=0, le=MAX_SCENES)
    media_type: Literal["image/svg+xml", "image/png", "image/jpeg"]
    image_b64: str = Field(min_length=16, max_length=4_000_000)
    illustrator: str = Field(max_length=64, description="which illustrator drew it, e.g. storybook (offline)")
    latency_ms: float = Field(ge=0, le=3_600_000)

    @model_validator(mode="after")
    def _index_within_count(self) -> IllustrationEvent:
        if self.scene_index >= self.scene_count:
            raise ValueError(f"scene_index {self.scene_index} is not below scene_count {self.scene_count}")
        return self


MAX_PARTS = 24  # a 600-character scene read a sentence (or a first clause) at a time
NARRATION_SECONDS = 120.0


class WordTiming(BaseModel):
    """When one word of the scene is spoken: its characters in the scene's text, its seconds in the audio."""

    model_config = STRICT | ConfigDict(frozen=True)

    start: int = Field(ge=0, lt=600, description="first character of the word in the scene's text")
    end: int = Field(gt=0, le=600, description="one past its last character")
    t0: float = Field(ge=0, le=NARRATION_SECONDS, description="seconds into this part's audio")
    t1: float = Field(ge=0, le=NARRATION_SECONDS)

    @model_validator(mode="after")
    def _ordered(self) -> WordTiming:
        if self.end <= self.start or self.t1 < self.t0:
            raise ValueError("a word must end after it starts")
        return self


class NarrationEvent(Event):
    """One part of a scene read aloud (a clause or a sentence), or why the scene is not.

    A scene is read in ``parts`` parts, published as each is ready so the first is heard at once; the page
    plays them in order. ``parts == 0`` with a ``skipped`` reason: the scene has no narration, and the page
    reads it another way (the browser's voice, or the reading timer).
    """

    kind: Literal["narration"] = "narration"
    scene_index: int = Field(ge=0, lt=MAX_SCENES)
    part: int = Field(0, ge=0, lt=MAX_PARTS)
    parts: int = Field(ge=0, le=MAX_PARTS, description="how many parts the scene is read in; 0: skipped")
    text: str = Field(min_length=1, max_length=600, description="the scene's text, as the page shows it")
    media_type: Literal["audio/wav"] | None = None
    audio_b64: str | None = Field(None, min_length=16, max_length=3_150_000)
    duration_s: float = Field(0.0, ge=0, le=NARRATION_SECONDS)
    words: list[WordTiming] = Field(default_factory=list, max_length=300)
    timings: Literal["synthesiser", "estimated"] | None = Field(None, description="where the word times come from")
    voice: Label = Field(description="voice name and version, e.g. en_US-joe-medium 1.0.0")
    skipped: FreeText | None = Field(None, description="why the scene has no narration")
    latency_ms: float = Field(ge=0, le=3_600_000, description="from the scene's text to this part's audio")

    @model_validator(mode="after")
    def _audio_or_reason(self) -> NarrationEvent:
        if self.parts == 0:
            if self.skipped is None or self.audio_b64 is not None:
                raise ValueError("a skipped scene (parts 0) has a reason and no audio")
        elif self.audio_b64 is None or self.media_type is None or self.part >= self.parts:
            raise ValueError("a narration part has audio, a media type and a part below parts")
        if any(w.end > len(self.text) for w in self.words):
            raise ValueError("a word lies outside the scene's text")
        return self


class StatusPayload(BaseModel):
    """Retained service status; ``offline`` is set by the broker from the last will.

    The service named here must be the one the topic names (readers check it): a payload cannot add a service.
    """

    model_config = STRICT

    state: Literal["online", "offline", "stopped"]
    service: ServiceName
    ts: Timestamp = Field(default_factory=time.time)
    detail: dict[Annotated[str, StringConstraints(max_length=40)], FreeText | float | int | bool | None] = Field(
        default_factory=dict, max_length=32
    )


class ErrorEvent(BaseModel):
    """A dead letter: what arrived where, and why it was refused."""

    model_config = STRICT

    event_id: Id = Field(default_factory=new_id)
    ts: Timestamp = Field(default_factory=time.time)
    service: ServiceName
    topic: Annotated[str, _cut(256)]
    reason: Annotated[str, _cut(500)] = Field(description="why it was refused, in at most 500 characters")
    payload_excerpt: str = Field(max_length=200, description="start of the refused payload (never images)")


class Command(BaseModel):
    """``cmd/<action>/set``: ``pause`` with value ON/OFF, ``reload-models`` with PRESS. Never retained."""

    model_config = STRICT

    event_id: Id = Field(default_factory=new_id)
    ts: Timestamp = Field(default_factory=time.time)
    value: str | None = Field(None, max_length=32)


class ServiceMetrics(BaseModel):
    """Periodic numbers from one service on ``metrics``: no image and nothing about a child."""

    model_config = STRICT

    service: ServiceName
    ts: Timestamp = Field(default_factory=time.time)
    uptime_s: float = Field(ge=0)
    rss_mib: float = Field(ge=0, description="resident memory of the process")
    cpu_percent: float = Field(ge=0, description="CPU time over the last interval, % of one core")
    gpu_mib: float | None = Field(None, description="GPU memory allocated by torch, when a GPU is used")
    queue_depth: int = Field(ge=0, description="events received and not yet handled")
    outbox: int = Field(ge=0, description="events waiting for the broker")
    handled: int = Field(ge=0)
    errors: int = Field(ge=0)
    stage: dict[Annotated[str, StringConstraints(max_length=40)], float] = Field(
        default_factory=dict, max_length=16, description="service figures: fps, latency_ms_p50, ..."
    )


class ModelState(BaseModel):
    model_config = STRICT

    name: Annotated[str, _cut(64)] | None = None
    version: Annotated[str, _cut(64)] | None = None
    runtime: Annotated[str, _cut(64)] | None = None


class KioskSummary(BaseModel):
    """Retained ``summary`` for staff dashboards: state and counts, never images or child attributes."""

    model_config = STRICT | ConfigDict(populate_by_name=True)

    schema_version: int = Field(SCHEMA_VERSION, alias="schema")
    kiosk_id: str = Field(description="from this kiosk's settings")
    ts: Timestamp = Field(default_factory=time.time)
    uptime_s: float = Field(ge=0)
    services: dict[ServiceName, Literal["unknown", "online", "offline", "stopped"]] = Field(
        description="service -> online / offline / stopped"
    )
    models: dict[ModelTask, ModelState]
    paused: bool = False
    child_present: bool = False
    last_emotion: Emotion | None = None
    last_emotion_ts: Timestamp | None = None
    stories_today: int = 0
    emotions_today: dict[Emotion, int] = Field(default_factory=dict)
    fallback_stories_today: int = 0
    latency_ms: dict[Annotated[str, StringConstraints(max_length=40)], float] = Field(
        default_factory=dict, max_length=16, description="median per stage, recent visits"
    )
    fps: float | None = None


class DeployResult(BaseModel):
    """Retained ``models/deploy``: what the last installation did."""

    model_config = STRICT

    ts: Timestamp = Field(default_factory=time.time)
    ok: bool
    action: Literal["installed", "rolled back", "refused"]
    task: Annotated[str, _cut(64)] | None = None
    name: Annotated[str, _cut(64)] | None = None
    version: Annotated[str, _cut(64)] | None = None
    previous: Annotated[str, _cut(140)] | None = None
    reason: Annotated[str, _cut(2000)] = ""
    seconds: float = Field(ge=0)


EVENT_TYPES: dict[str, type[Event]] = {
    "presence": PresenceEvent,
    "face": FaceEvent,
    "emotion": EmotionEvent,
    "story_partial": StoryPartialEvent,
    "story": StoryEvent,
    "illustration": IllustrationEvent,
    "narration": NarrationEvent,
}


def reason_of(exc: ValidationError, limit: int = 400) -> str:
    """A short reason for a refused payload: where and what, never the refused values themselves."""
    problems = "; ".join(
        f"{'.'.join(str(part)[:40] for part in e['loc']) or 'payload'}: {e['msg'][:120]}"
        for e in exc.errors(include_url=False, include_input=False)[:5]
    )
    return problems[:limit]


def check_size(kind: str, payload: bytes) -> None:
    """Refuse a payload over its topic's byte limit before anything parses it."""
    if len(payload) > MAX_PAYLOAD_BYTES[kind]:
        raise ValueError(f"invalid {kind} payload: {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES[kind]}-byte limit")


def parse_command(payload: bytes) -> Command:
    """Validate a ``cmd/<action>/set`` payload; raise ``ValueError`` with a short reason."""
    check_size("command", payload)
    try:
        return Command.model_validate_json(payload)
    except ValidationError as exc:
        raise ValueError(f"invalid command: {reason_of(exc)}") from None


def parse_event(kind: str, payload: bytes) -> Event:
    """Validate a payload as the event of ``kind``; raise ``ValueError`` with a readable reason."""
    check_size(kind, payload)
    try:
        return EVENT_TYPES[kind].model_validate_json(payload)
    except ValidationError as exc:
        raise ValueError(f"invalid {kind} event: {reason_of(exc)}") from None
