"""The kiosk page (Flask): the storybook screen, its live event stream, pictures, health."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask, Response, abort, jsonify, render_template

from kiosk.sse import event_stream
from kiosk.web.state import ScreenState

logger = logging.getLogger(__name__)


def create_app(state: ScreenState, health: Callable[[], dict], grace_s: float = 20.0) -> Flask:
    app = Flask(__name__)

    @app.after_request
    def no_outside_requests(response: Response) -> Response:
        # The child's page loads nothing from anywhere but this kiosk.
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; script-src 'self'; "
            "base-uri 'none'; object-src 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.get("/")
    def page() -> str:
        return render_template("kiosk.html", grace_ms=int(grace_s * 1000))

    @app.get("/events")
    def events() -> Response:
        client = state.connect()
        return event_stream(client, lambda: state.disconnect(client))

    @app.get("/media/<name>")
    def media(name: str) -> Response:
        item = state.media.get(name)
        if item is None:
            abort(404)
        media_type, body = item
        return Response(body, mimetype=media_type, headers={"Cache-Control": "max-age=3600"})

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        report = health()
        return jsonify(report), 200 if report.get("connected") else 503

    return app
