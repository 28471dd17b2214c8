"""The web service: keeps the screen state from the bus and serves the kiosk page on loopback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from werkzeug.serving import make_server

from kiosk.events import Event
from kiosk.service import Service
from kiosk.web.app import create_app
from kiosk.web.state import ScreenState

logger = logging.getLogger(__name__)


class WebService(Service):
    name = "web"
    listens = ("presence", "story_partial", "story", "illustration")

    def setup(self) -> None:
        self.state = ScreenState()
        cfg = self.settings.web
        app = create_app(self.state, self.health, cfg.grace_s)
        self.server = make_server(cfg.host, cfg.port, app, threaded=True)
        self.server.daemon_threads = True
        logger.info("kiosk page on http://%s:%d", cfg.host, self.server.server_port)

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        state = getattr(self, "state", None)
        return {"pages_open": state.client_count if state else 0}

    def handle(self, event: Event) -> Iterator[Event]:
        self.state.apply(event)
        return iter(())

    def loop(self) -> None:
        thread = threading.Thread(target=self.server.serve_forever, name="web-http", daemon=True)
        thread.start()
        self.stop_event.wait()
        self.server.shutdown()
