"""The story service: an emotion in, a titled story of short scenes out, streamed as it is written."""

from __future__ import annotations

import logging
import statistics
from collections import deque
from collections.abc import Iterator

from kiosk.events import Command, EmotionEvent, Event, HeroLook, Scene, StoryEvent, StoryPartialEvent
from kiosk.modelstore.registry import active_model_dir, model_label
from kiosk.service import Service
from kiosk.story import bank
from kiosk.story.factory import build_storyteller
from kiosk.story.teller import Partial, Telling

logger = logging.getLogger(__name__)

# The last scene of a hard feeling's story shows the comfort it ends with.
ENDING_MOOD = {"angry": "happy", "disgust": "happy", "fear": "happy", "sad": "happy"}


def story_event(event: EmotionEvent, telling: Telling) -> StoryEvent:
    story = telling.story
    last = len(story.scenes) - 1
    scenes = [
        Scene(
            text=s.text,
            illustration_prompt=s.illustration_prompt,
            setting=s.setting,
            objects=list(s.objects),
            mood=ENDING_MOOD.get(event.emotion, event.emotion) if i == last else event.emotion,
        )
        for i, s in enumerate(story.scenes)
    ]
    hero = HeroLook(
        description=story.hero.looks, clothing_colour=story.hero.clothing_colour, glasses=story.hero.glasses
    )
    return StoryEvent(
        session_id=event.session_id,
        causation_id=event.event_id,
        emotion=event.emotion,
        title=story.title,
        scenes=scenes,
        hero=hero,
        generator=telling.generator,
        fallback=telling.fallback,
        latency_ms=round(telling.latency_ms, 1),
    )


class StoryService(Service):
    name = "story"
    listens = ("emotion",)
    commands = ("reload-models",)

    def setup(self) -> None:
        bank.check_bank()
        self.latencies: deque[float] = deque(maxlen=50)
        self.teller, self.problem = self._build()

    def _build(self):
        model_path = active_model_dir(self.settings, "story")
        return build_storyteller(self.settings.story.model_copy(update={"model_path": model_path}))

    def on_command(self, action: str, command: Command) -> None:
        if action == "reload-models":
            self.teller, self.problem = self._build()

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        teller = getattr(self, "teller", None)
        return {
            "generator": teller.name if teller else None,
            "model": model_label(active_model_dir(self.settings, "story")),
            "problem": getattr(self, "problem", None),
        }

    def stage_metrics(self) -> dict[str, float]:
        latencies = list(getattr(self, "latencies", ()))
        return {"latency_ms_p50": round(statistics.median(latencies), 1)} if latencies else {}

    def handle(self, event: Event) -> Iterator[Event]:
        assert isinstance(event, EmotionEvent)
        seq = 0
        for step in self.teller.tell(
            event.emotion, event.attributes, seed=self.settings.story.seed, scenes=self.settings.story.scenes
        ):
            if isinstance(step, Partial):
                yield StoryPartialEvent(
                    session_id=event.session_id, causation_id=event.event_id, seq=seq, text=step.text
                )
                seq += 1
            else:
                self.latencies.append(step.latency_ms)
                yield story_event(event, step)
