"""The illustrate service: a story in, one picture per scene out (offline storybook illustrator)."""

from __future__ import annotations

import base64
import logging
import time
import zlib
from collections.abc import Iterator

from kiosk.events import Event, IllustrationEvent, StoryEvent
from kiosk.illustrate import storybook
from kiosk.service import Service

logger = logging.getLogger(__name__)


class IllustrateService(Service):
    name = "illustrate"
    listens = ("story",)

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        return {"illustrator": storybook.ILLUSTRATOR}

    def handle(self, event: Event) -> Iterator[Event]:
        assert isinstance(event, StoryEvent)
        for index, scene in enumerate(event.scenes):
            started = time.perf_counter()
            svg = storybook.render_svg(
                scene.setting,
                scene.objects,
                scene.mood,
                event.hero.clothing_colour,
                event.hero.glasses,
                seed=zlib.crc32(f"{event.event_id}:{index}".encode()),
            )
            yield IllustrationEvent(
                session_id=event.session_id,
                causation_id=event.event_id,
                story_id=event.event_id,
                scene_index=index,
                scene_count=len(event.scenes),
                media_type="image/svg+xml",
                image_b64=base64.b64encode(svg.encode()).decode(),
                illustrator=storybook.ILLUSTRATOR,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )
