"""Run a real kiosk service in this process for a test: start, loop in a thread, stop."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from kiosk.service import Service


@contextlib.contextmanager
def running(service: Service) -> Iterator[Service]:
    service.start()
    thread = threading.Thread(target=service.loop, daemon=True, name=f"test-{service.name}")
    thread.start()
    try:
        yield service
    finally:
        service.stop_event.set()
        thread.join(10)
        service.stop()
