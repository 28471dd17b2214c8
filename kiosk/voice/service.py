"""The narrate service: each scene of a story read aloud as soon as its text is final.

Why its own service, on the bus: the voice is a 63 MB model and a second program (espeak-ng); in its own
process it speaks while the story service's LLM writes the next scene (the two cores work side by side),
a voice that fails or hangs takes neither the story nor the page with it, its account reads story text and
nothing else, and its status says plainly why a kiosk is silent. The audio travels on ``narration`` like
pictures on ``illustration``; the web service checks it, keeps it in its bounded media store and tells
the page.

The opening is the template's, final at once: it is read from the first ``story/partial``. Every other
scene is final in the ``story`` event (the storyteller may still swap the comfort scene before it). A scene
is read in parts, each published when ready, so the child hears the first words within a few hundred
milliseconds. Text the voice cannot say (emoji, other scripts) is left out; a scene with nothing to say,
or a voice that fails, gives a narration event with the reason (the page falls back at once) and a dead
letter on ``error``.
"""

from __future__ import annotations

import base64
import logging
import statistics
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator

from kiosk.events import Command, Event, NarrationEvent, StoryEvent, StoryPartialEvent
from kiosk.service import Service
from kiosk.voice.load import load_narrator
from kiosk.voice.narrator import Narrator
from kiosk.voice.phonemes import PhonemizerError
from kiosk.voice.piper import VoiceError

logger = logging.getLogger(__name__)

REMEMBERED_SCENES = 64
STOP_WAIT_S = 5.0  # at most one part's inference to finish before the process exits


class NarrateService(Service):
    name = "narrate"
    listens = ("story_partial", "story")
    commands = ("reload-models",)

    def setup(self) -> None:
        self.narrated: OrderedDict[tuple[str, int], str] = OrderedDict()
        self.speaking = threading.Lock()  # held while ONNX Runtime runs: exiting mid-inference aborts the process
        self.first_part_ms: deque[float] = deque(maxlen=50)
        self.realtime: deque[float] = deque(maxlen=50)
        self.narrator, self.voice, self.problem = self._build()

    def _build(self) -> tuple[Narrator | None, str, str | None]:
        try:
            narrator, label = load_narrator(self.settings.voice)
        except (VoiceError, PhonemizerError) as exc:
            logger.warning("narrate: no voice: %s", exc)
            return None, "none", f"no voice: {exc}"
        return narrator, label, None

    def on_command(self, action: str, command: Command) -> None:
        if action == "reload-models":
            self.narrator, self.voice, self.problem = self._build()

    def stop(self) -> None:
        """Let the part being synthesised finish (the scene stops there), then stop."""
        self.stop_event.set()
        speaking = getattr(self, "speaking", None)
        if speaking is not None and speaking.acquire(timeout=STOP_WAIT_S):
            speaking.release()
        super().stop()

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        return {"voice": getattr(self, "voice", None), "problem": getattr(self, "problem", None)}

    def stage_metrics(self) -> dict[str, float]:
        figures = {}
        if first := list(getattr(self, "first_part_ms", ())):
            figures["first_audio_ms_p50"] = round(statistics.median(first), 1)
        if realtime := list(getattr(self, "realtime", ())):
            figures["realtime_factor_p50"] = round(statistics.median(realtime), 3)
        return figures

    def handle(self, event: Event) -> Iterator[Event]:
        if isinstance(event, StoryPartialEvent):
            scenes = event.text.split("\n")[1:2]  # the opening, final as soon as it appears
        else:
            assert isinstance(event, StoryEvent)
            scenes = [s.text for s in event.scenes]
        for index, text in enumerate(scenes):
            key = (event.session_id, index)
            if not text.strip() or self.narrated.get(key) == text:
                continue
            self.narrated[key] = text
            while len(self.narrated) > REMEMBERED_SCENES:
                self.narrated.popitem(last=False)
            yield from self.narrate(event, index, text[:600])

    def narrate(self, event: Event, index: int, text: str) -> Iterator[NarrationEvent]:
        """The scene's parts as each is ready, or one event saying why it is not read."""
        started = time.perf_counter()
        common = {"session_id": event.session_id, "causation_id": event.event_id, "scene_index": index, "text": text}
        if self.narrator is None:
            yield NarrationEvent(**common, parts=0, voice=self.voice, skipped=self.problem, latency_ms=0.0)
            return
        spoken = 0
        parts = self.narrator.narrate(text)
        try:
            while not self.stop_event.is_set():
                with self.speaking:
                    part = next(parts, None)
                if part is None:
                    break
                spoken += 1
                latency_ms = (time.perf_counter() - started) * 1000
                if part.index == 0:
                    self.first_part_ms.append(latency_ms)
                self.realtime.append(part.synth_ms / 1000 / max(part.seconds, 1e-3))
                yield NarrationEvent(
                    **common,
                    part=part.index,
                    parts=part.count,
                    media_type="audio/wav",
                    audio_b64=base64.b64encode(part.wav).decode(),
                    duration_s=part.seconds,
                    words=[w.__dict__ for w in part.words],
                    timings=part.timings,
                    voice=self.voice,
                    latency_ms=round(latency_ms, 1),
                )
                started = time.perf_counter()
            if not spoken and not self.stop_event.is_set():
                raise VoiceError("nothing in the scene can be spoken (no Latin letters or digits)")
        except (VoiceError, PhonemizerError, ValueError) as exc:
            reason = f"scene {index} not read aloud: {exc}"
            self.publish_error(getattr(self.topics, event.kind), reason, text.encode())
            yield NarrationEvent(**common, parts=0, voice=self.voice, skipped=str(exc)[:300], latency_ms=0.0)
