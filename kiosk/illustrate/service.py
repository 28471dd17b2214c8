"""The illustrate service: a story in, pictures out — the offline storybook picture for every scene at
once, then, where a safe diffusion pipeline is installed, a diffusion picture that replaces it."""

from __future__ import annotations

import base64
import logging
import time
import zlib
from collections.abc import Iterator

from kiosk.events import Command, Event, IllustrationEvent, StoryEvent
from kiosk.illustrate import storybook
from kiosk.illustrate.diffusion import DiffusionIllustrator, DiffusionSettings, DiffusionUnavailable
from kiosk.modelstore.registry import active_model_dir, model_label
from kiosk.service import Service

logger = logging.getLogger(__name__)


class IllustrateService(Service):
    name = "illustrate"
    listens = ("story",)
    commands = ("reload-models",)
    handler_budget_s = 900.0  # diffusion on a CPU can take minutes per story; the watchdog must not kill it

    def setup(self) -> None:
        self.flagged = 0
        self.diffusion = self._load()

    def on_command(self, action: str, command: Command) -> None:
        if action == "reload-models":
            self.diffusion = self._load()

    def _load(self) -> DiffusionIllustrator | None:
        cfg = self.settings.illustrate
        if not cfg.diffusion:
            return None
        try:
            return DiffusionIllustrator(
                active_model_dir(self.settings, "illustrate"),
                DiffusionSettings(
                    steps=cfg.steps,
                    guidance=cfg.guidance,
                    width=cfg.width,
                    height=cfg.height,
                    scheduler=cfg.scheduler,
                    attention_slicing=cfg.attention_slicing,
                    lcm_lora_dir=cfg.lcm_lora_dir,
                    allow_without_safety_checker=cfg.allow_without_safety_checker,
                ),
            )
        except DiffusionUnavailable as exc:
            logger.info("diffusion illustrator off (%s): storybook pictures only", exc)
            return None

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        diffusion = getattr(self, "diffusion", None)
        return {
            "illustrator": diffusion.name if diffusion else storybook.ILLUSTRATOR,
            "model": model_label(active_model_dir(self.settings, "illustrate")) if diffusion else storybook.ILLUSTRATOR,
            "flagged_pictures": getattr(self, "flagged", 0),
        }

    def _event(
        self, story: StoryEvent, index: int, media_type: str, body: bytes, illustrator: str, latency_ms: float
    ) -> IllustrationEvent:
        return IllustrationEvent(
            session_id=story.session_id,
            causation_id=story.event_id,
            story_id=story.event_id,
            scene_index=index,
            scene_count=len(story.scenes),
            media_type=media_type,
            image_b64=base64.b64encode(body).decode(),
            illustrator=illustrator,
            latency_ms=round(latency_ms, 2),
        )

    def handle(self, event: Event) -> Iterator[Event]:
        assert isinstance(event, StoryEvent)
        story_seed = zlib.crc32(event.event_id.encode())  # one seed per story: one consistent character
        for index, scene in enumerate(event.scenes):
            started = time.perf_counter()
            svg = storybook.render_svg(
                scene.setting,
                scene.objects,
                scene.mood,
                event.hero.clothing_colour,
                event.hero.glasses,
                seed=story_seed + index,
            )
            yield self._event(
                event,
                index,
                "image/svg+xml",
                svg.encode(),
                storybook.ILLUSTRATOR,
                (time.perf_counter() - started) * 1000,
            )
        if self.diffusion is None:
            return
        for index, scene in enumerate(event.scenes):
            picture = self.diffusion.draw(event.hero.description, scene.illustration_prompt, story_seed)
            if picture.flagged:
                self.flagged += 1  # the storybook picture already on screen stays
                continue
            yield self._event(event, index, "image/png", picture.png, self.diffusion.name, picture.latency_ms)
