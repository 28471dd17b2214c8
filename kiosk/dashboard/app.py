"""The staff page (Flask): login, live image-free event feed, counts, service health, models, pause, reload.

Separate from the child's page (its own process, port and templates; the child's page links nothing here).
Passwords are salted scrypt hashes; logins are rate limited per address and per account. Sessions are
server-side (``sessions.py``): the cookie (HttpOnly, SameSite=Strict, Secure over HTTPS) is a random id, and
every request checks that its session is live and that its account still exists with the password it logged
in with, so logout, ``kiosk staff remove-user`` and ``kiosk staff passwd`` end it at once; an open event stream
ends too. Every POST, the login form included (``csrf.py``), needs its CSRF token and a same-origin browser.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import wraps

from flask import Flask, Response, abort, g, jsonify, redirect, render_template, request, url_for

from kiosk.dashboard.accounts import StaffAccounts
from kiosk.dashboard.csrf import LoginFormTokens, same_origin, same_token
from kiosk.dashboard.prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from kiosk.dashboard.prometheus import prometheus_text
from kiosk.dashboard.sessions import StaffSession, StaffSessions
from kiosk.dashboard.throttle import LoginThrottle
from kiosk.sse import event_stream

logger = logging.getLogger(__name__)

SESSION_COOKIE = "kiosk_staff"
LOGIN_COOKIE = "kiosk_login"
STREAM_CHECK_S = 5.0  # an open event stream notices a revoked session within this (its keepalive interval)
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    )
)


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
    sessions: StaffSessions | None = None,
    session_idle_minutes: float = 30.0,
) -> Flask:
    """The staff page. Without ``sessions`` they are kept in memory (``session_hours``/``session_idle_minutes``)."""
    if sessions is None:
        sessions = StaffSessions(":memory:", idle_s=session_idle_minutes * 60, max_age_s=session_hours * 3600)
    login_forms = LoginFormTokens(secret_key)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret_key, MAX_CONTENT_LENGTH=64 * 1024)

    def live_session(session_id: str) -> StaffSession | None:
        """The session when it is live and its account is unchanged; a stale one is ended on the spot."""
        session = sessions.find(session_id)
        if session is not None and accounts.generation(session.staff) != session.generation:
            sessions.end(session_id)
            logger.info("ended a session of %s: account removed or password changed", session.staff)
            return None
        return session

    def set_cookie(response: Response, name: str, value: str, max_age: float, path: str = "/") -> None:
        response.set_cookie(
            name, value, max_age=int(max_age), path=path, httponly=True, samesite="Strict", secure=secure_cookie
        )

    @app.before_request
    def load_session() -> None:
        g.session_id = request.cookies.get(SESSION_COOKIE, "")
        g.session = live_session(g.session_id) if g.session_id else None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # not no-referrer: with it Chromium sends "Origin: null" on the page's own form posts
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        written = any(c.startswith(f"{SESSION_COOKIE}=") for c in response.headers.getlist("Set-Cookie"))
        if g.get("session_id") and g.get("session") is None and not written:  # tell the browser to drop it
            response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict", secure=secure_cookie)
        return response

    def login_required(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if g.session is None:
                if request.path.startswith("/api/"):
                    abort(401)
                return redirect(url_for("login"))
            return view(*args, **kwargs)

        return wrapper

    def csrf_protected(view):
        """A state change needs the session's token (header or form field) from a same-origin page."""

        @wraps(view)
        def wrapper(*args, **kwargs):
            sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf", "")
            if not same_origin(request) or not same_token(sent, g.session.csrf):
                logger.warning("refused %s %s without a valid CSRF token", request.method, request.path)
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    def login_page(error: str | None, status: int = 200) -> Response:
        nonce, token = login_forms.issue(request.cookies.get(LOGIN_COOKIE))
        response = Response(render_template("login.html", csrf=token, error=error), status=status)
        set_cookie(response, LOGIN_COOKIE, nonce, login_forms.max_age_s, path=url_for("login"))
        return response

    @app.get("/login")
    def login() -> Response:
        return login_page(None)

    @app.post("/login")
    def do_login():
        if not same_origin(request) or not login_forms.valid(
            request.cookies.get(LOGIN_COOKIE), request.form.get("csrf")
        ):
            logger.warning("refused a login without the login form's token from %s", request.remote_addr)
            return login_page("This sign-in form has expired. Please try again.", status=403)
        name = request.form.get("name", "")[:64]
        keys = (f"address:{request.remote_addr}", f"account:{name}")
        wait = throttle.retry_after(*keys)
        if wait > 0:
            logger.warning("login throttled for %s (%s)", name, request.remote_addr)
            response = login_page("Too many attempts. Please wait.", status=429)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        generation = accounts.check(name, request.form.get("password", ""))
        if generation is None:
            throttle.failed(*keys)
            logger.warning("failed staff login for %r from %s", name, request.remote_addr)
            return login_page("Wrong name or password.", status=401)
        throttle.succeeded(*keys)
        if g.session_id:
            sessions.end(g.session_id)  # a fresh session id on every login (no fixation)
        session_id, _ = sessions.start(name, generation)
        logger.info("staff %s logged in from %s", name, request.remote_addr)
        response = redirect(url_for("dashboard"))
        set_cookie(response, SESSION_COOKIE, session_id, sessions.max_age_s)
        response.delete_cookie(
            LOGIN_COOKIE, path=url_for("login"), httponly=True, samesite="Strict", secure=secure_cookie
        )
        return response

    @app.post("/logout")
    @login_required
    @csrf_protected
    def logout():
        sessions.end(g.session_id)
        logger.info("staff %s logged out", g.session.staff)
        response = redirect(url_for("login"))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict", secure=secure_cookie)
        return response

    @app.get("/")
    @login_required
    def dashboard() -> str:
        return render_template("staff.html", csrf=g.session.csrf, staff=g.session.staff)

    @app.get("/api/summary")
    @login_required
    def api_summary() -> Response:
        return jsonify(summary() | {"health": health()})

    @app.get("/api/events")
    @login_required
    def api_events() -> Response:
        client, recent = feed.connect()
        backlog = [f"data: {json.dumps(entry)}\n\n" for entry in recent]
        session_id = g.session_id  # the stream runs after the request context is gone
        response = event_stream(client, lambda: feed.disconnect(client), first=backlog, keepalive_s=STREAM_CHECK_S)
        response.response = while_live(response.response, lambda: live_session(session_id) is not None)
        return response

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """Prometheus text format, for a scraper on this machine or a logged-in staff member."""
        if g.session is None and request.remote_addr not in ("127.0.0.1", "::1"):
            abort(401)
        return Response(prometheus_text(summary(), health()), content_type=PROMETHEUS_CONTENT_TYPE)

    @app.post("/api/pause")
    @login_required
    @csrf_protected
    def api_pause() -> Response:
        paused = bool((request.get_json(silent=True) or {}).get("paused"))
        send_command("pause", "ON" if paused else "OFF")
        logger.info("staff %s %s the kiosk", g.session.staff, "paused" if paused else "resumed")
        return jsonify({"sent": "pause", "value": "ON" if paused else "OFF"})

    @app.post("/api/reload")
    @login_required
    @csrf_protected
    def api_reload() -> Response:
        send_command("reload-models", "PRESS")
        logger.info("staff %s asked the services to reload their models", g.session.staff)
        return jsonify({"sent": "reload-models"})

    return app


def while_live(chunks: Iterable[str], live: Callable[[], bool]) -> Iterator[str]:
    """Pass an event stream through while its session is live: each chunk (event or keepalive) is checked
    before it is sent, so a revoked session gets nothing more and its stream ends."""
    try:
        for chunk in chunks:
            if not live():
                return
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
