"""The staff page (Flask): login, live image-free event feed, counts, service health, models, pause, reload.

Separate from the child's page (its own process, port and templates; the child's page links nothing here).
Passwords are salted scrypt hashes; the session cookie is HttpOnly and SameSite=Strict (Secure over HTTPS);
logins are rate limited per address and per account; every state-changing request needs the CSRF token.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, session, url_for

from kiosk.dashboard.accounts import StaffAccounts
from kiosk.dashboard.throttle import LoginThrottle
from kiosk.sse import event_stream

logger = logging.getLogger(__name__)


class StaffFeed:
    """Fans the staff event feed out to every open staff page (bus thread in, page threads out)."""

    def __init__(self, backlog: int = 50) -> None:
        self.backlog = backlog
        self._recent: list[dict] = []
        self._clients: set[queue.Queue[str]] = set()
        self._lock = threading.Lock()

    @property
    def recent(self) -> list[dict]:
        with self._lock:
            return list(self._recent)

    def connect(self) -> tuple[queue.Queue[str], list[dict]]:
        """A queue for one page and the recent entries it starts with."""
        client: queue.Queue[str] = queue.Queue(maxsize=200)
        with self._lock:
            self._clients.add(client)
            return client, list(self._recent)

    def disconnect(self, client: queue.Queue[str]) -> None:
        with self._lock:
            self._clients.discard(client)

    def publish(self, entry: dict) -> None:
        message = f"data: {json.dumps(entry)}\n\n"
        with self._lock:
            self._recent = [*self._recent[-(self.backlog - 1) :], entry]
            for client in list(self._clients):
                try:
                    client.put_nowait(message)
                except queue.Full:
                    self._clients.discard(client)  # a stalled page reconnects and gets the backlog


def create_staff_app(
    accounts: StaffAccounts,
    throttle: LoginThrottle,
    feed: StaffFeed,
    summary: Callable[[], dict],
    health: Callable[[], dict],
    send_command: Callable[[str, str], None],
    secret_key: bytes,
    secure_cookie: bool = False,
    session_hours: float = 12.0,
) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME="kiosk_staff",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookie,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=session_hours),
    )

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def login_required(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if "staff" not in session:
                if request.path.startswith("/api/"):
                    abort(401)
                return redirect(url_for("login"))
            return view(*args, **kwargs)

        return wrapper

    def csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(24)
        return session["csrf"]

    def check_csrf() -> None:
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf", "")
        if not secrets.compare_digest(sent, session.get("csrf", "")):
            abort(403)

    @app.get("/login")
    def login() -> str:
        return render_template("login.html", csrf=csrf_token(), error=None)

    @app.post("/login")
    def do_login():
        check_csrf()
        name = request.form.get("name", "")[:64]
        keys = (f"address:{request.remote_addr}", f"account:{name}")
        wait = throttle.retry_after(*keys)
        if wait > 0:
            logger.warning("login throttled for %s (%s)", name, request.remote_addr)
            page = render_template("login.html", csrf=csrf_token(), error="Too many attempts. Please wait.")
            return Response(page, status=429, headers={"Retry-After": str(int(wait) + 1)})
        if not accounts.verify(name, request.form.get("password", "")):
            throttle.failed(*keys)
            logger.warning("failed staff login for %r from %s", name, request.remote_addr)
            return render_template("login.html", csrf=csrf_token(), error="Wrong name or password."), 401
        throttle.succeeded(*keys)
        session.clear()  # a fresh session on login (no fixation)
        session.permanent = True
        session["staff"] = name
        logger.info("staff %s logged in from %s", name, request.remote_addr)
        return redirect(url_for("dashboard"))

    @app.post("/logout")
    @login_required
    def logout():
        check_csrf()
        session.clear()
        return redirect(url_for("login"))

    @app.get("/")
    @login_required
    def dashboard() -> str:
        return render_template("staff.html", csrf=csrf_token(), staff=session["staff"])

    @app.get("/api/summary")
    @login_required
    def api_summary() -> Response:
        return jsonify(summary() | {"health": health()})

    @app.get("/api/events")
    @login_required
    def api_events() -> Response:
        client, recent = feed.connect()
        backlog = [f"data: {json.dumps(entry)}\n\n" for entry in recent]
        return event_stream(client, lambda: feed.disconnect(client), first=backlog)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """Prometheus text format, for a scraper on this machine or a logged-in staff member."""
        if "staff" not in session and request.remote_addr not in ("127.0.0.1", "::1"):
            abort(401)
        return Response(prometheus_text(summary(), health()), mimetype="text/plain; version=0.0.4")

    @app.post("/api/pause")
    @login_required
    def api_pause() -> Response:
        check_csrf()
        paused = bool((request.get_json(silent=True) or {}).get("paused"))
        send_command("pause", "ON" if paused else "OFF")
        logger.info("staff %s %s the kiosk", session["staff"], "paused" if paused else "resumed")
        return jsonify({"sent": "pause", "value": "ON" if paused else "OFF"})

    @app.post("/api/reload")
    @login_required
    def api_reload() -> Response:
        check_csrf()
        send_command("reload-models", "PRESS")
        logger.info("staff %s asked the services to reload their models", session["staff"])
        return jsonify({"sent": "reload-models"})

    return app


def prometheus_text(summary: dict, health: dict) -> str:
    """The summary and each service's latest metrics as Prometheus gauges (no child data, no images)."""
    kiosk = summary.get("kiosk_id", "")
    lines: list[str] = []

    def gauge(name: str, value, help_text: str, **labels) -> None:
        if value is None:
            return
        if not any(line.startswith(f"# HELP {name} ") for line in lines):
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} gauge"])
        label_text = ",".join(f'{k}="{v}"' for k, v in {"kiosk": kiosk, **labels}.items())
        lines.append(f"{name}{{{label_text}}} {float(value)}")

    gauge("kiosk_stories_today", summary.get("stories_today"), "stories told since midnight")
    gauge("kiosk_template_stories_today", summary.get("fallback_stories_today"), "template stories since midnight")
    gauge("kiosk_child_present", int(bool(summary.get("child_present"))), "1 while a child is at the kiosk")
    gauge("kiosk_paused", int(bool(summary.get("paused"))), "1 while staff paused the kiosk")
    gauge("kiosk_camera_fps", summary.get("fps"), "camera frames per second with detection")
    for emotion, count in summary.get("emotions_today", {}).items():
        gauge("kiosk_emotions_today", count, "emotions recognised since midnight", emotion=emotion)
    for stage, value in summary.get("latency_ms", {}).items():
        gauge("kiosk_latency_ms", value, "median latency of recent visits", stage=stage)
    for service, figures in health.items():
        gauge(
            "kiosk_service_up", int(figures.get("state") == "online"), "1 while the service is online", service=service
        )
        for field in ("rss_mib", "cpu_percent", "gpu_mib", "queue_depth", "outbox", "errors"):
            gauge(f"kiosk_service_{field}", figures.get(field), f"the service's {field}", service=service)
    return "\n".join(lines) + "\n"
