"""The web service: keeps the screen state from the bus and serves the kiosk page on loopback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from kiosk.events import Event
from kiosk.pageserver import PageServer
from kiosk.service import Service
from kiosk.web.app import create_app
from kiosk.web.media import MediaStore
from kiosk.web.state import ScreenState

logger = logging.getLogger(__name__)


class WebService(Service):
    name = "web"
    listens = ("presence", "story_partial", "story", "illustration", "narration")

    def setup(self) -> None:
        cfg = self.settings.web
        media_dir = cfg.media_dir or self.settings.run_dir / "media"
        self.state = ScreenState(MediaStore(media_dir, cfg.media_max_files, int(cfg.media_max_mb * 1024 * 1024)))
        app = create_app(self.state, self.health, cfg.grace_s)
        self.server = PageServer(app, cfg.host, cfg.port, "kiosk-page")
        logger.info("kiosk page on http://%s:%d", cfg.host, self.server.port)

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        state = getattr(self, "state", None)
        return {"pages_open": state.client_count if state else 0}

    def handle(self, event: Event) -> Iterator[Event]:
        self.state.apply(event)
        return iter(())

    def loop(self) -> None:
        self.server.start()
        self.stop_event.wait()
        self.server.stop()
