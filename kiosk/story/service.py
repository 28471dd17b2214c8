"""The story service: an emotion in, a titled story of short scenes out, streamed scene by scene."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from kiosk.events import EmotionEvent, Event, HeroLook, Scene, StoryEvent, StoryPartialEvent
from kiosk.service import Service
from kiosk.story import bank, template

logger = logging.getLogger(__name__)

# The last scene of a hard feeling's story shows the comfort it ends with.
ENDING_MOOD = {"angry": "happy", "disgust": "happy", "fear": "happy", "sad": "happy"}


class StoryService(Service):
    name = "story"
    listens = ("emotion",)

    def setup(self) -> None:
        bank.check_bank()

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        return {"generator": template.GENERATOR}

    def handle(self, event: Event) -> Iterator[Event]:
        assert isinstance(event, EmotionEvent)
        started = time.perf_counter()
        story = template.tell(
            event.emotion, event.attributes, seed=self.settings.story.seed, scenes=self.settings.story.scenes
        )
        text = story.title
        for seq, scene in enumerate(story.scenes):
            text = f"{text}\n{scene.text}"
            yield StoryPartialEvent(session_id=event.session_id, causation_id=event.event_id, seq=seq, text=text)
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
        yield StoryEvent(
            session_id=event.session_id,
            causation_id=event.event_id,
            emotion=event.emotion,
            title=story.title,
            scenes=scenes,
            hero=HeroLook(
                description=story.hero.looks, clothing_colour=story.hero.clothing_colour, glasses=story.hero.glasses
            ),
            generator=template.GENERATOR,
            fallback=False,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )
