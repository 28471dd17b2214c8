"""The story service: an emotion in, a titled story of short scenes out, streamed as it is written."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from kiosk.events import EmotionEvent, Event, HeroLook, Scene, StoryEvent, StoryPartialEvent
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

    def setup(self) -> None:
        bank.check_bank()
        self.teller, self.problem = build_storyteller(self.settings.story)

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        teller = getattr(self, "teller", None)
        return {"generator": teller.name if teller else None, "problem": getattr(self, "problem", None)}

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
                yield story_event(event, step)
