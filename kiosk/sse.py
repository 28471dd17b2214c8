"""Server-Sent Events responses for the kiosk's two pages: a client queue, keepalives, clean disconnect."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from flask import Response, current_app

KEEPALIVE_S = 15.0
STOP_POLL_S = 0.5  # how soon an open stream notices that its server stops


def event_stream(
    client: queue.Queue[str], on_close: Callable[[], None], first: Iterable[str] = (), keepalive_s: float = KEEPALIVE_S
) -> Response:
    """Stream ``first`` then whatever arrives in ``client``; ``on_close`` runs when the page goes away.

    The stream ends when its server stops (``kiosk.pageserver``), so no open page holds a service's shutdown.
    """
    from kiosk.pageserver import STREAMS_STOP

    stopping: threading.Event = current_app.config.get(STREAMS_STOP) or threading.Event()

    def stream() -> Iterator[str]:
        try:
            yield "retry: 2000\n\n"
            yield from first
            quiet_since = time.monotonic()
            while not stopping.is_set():
                try:
                    yield client.get(timeout=min(STOP_POLL_S, keepalive_s))
                    quiet_since = time.monotonic()
                except queue.Empty:
                    if time.monotonic() - quiet_since >= keepalive_s:
                        yield ": keepalive\n\n"
                        quiet_since = time.monotonic()
        finally:
            on_close()

    return Response(
        stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
