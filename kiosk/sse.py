"""Server-Sent Events responses for the kiosk's two pages: a client queue, keepalives, clean disconnect."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator

from flask import Response

KEEPALIVE_S = 15.0


def event_stream(
    client: queue.Queue[str], on_close: Callable[[], None], first: Iterable[str] = (), keepalive_s: float = KEEPALIVE_S
) -> Response:
    """Stream ``first`` then whatever arrives in ``client``; ``on_close`` runs when the page goes away."""

    def stream() -> Iterator[str]:
        try:
            yield "retry: 2000\n\n"
            yield from first
            while True:
                try:
                    yield client.get(timeout=keepalive_s)
                except queue.Empty:
                    yield ": keepalive\n\n"
        finally:
            on_close()

    return Response(
        stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
