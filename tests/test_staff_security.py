"""The staff page under attack, as a script on the kiosk's network would try it: the real dashboard service on
a real Mosquitto broker, spoken to over raw HTTP with cookies kept, dropped and replayed by hand.

Every refusal is judged against a positive control in the same test: after the forbidden request, a
legitimate one sends a marker command, and only once the marker is on the bus do we look for the forbidden
command (commands on one topic arrive in order, so it would have come first). The command watcher waits for
its SUBACK before anything is sent.
"""

from __future__ import annotations

import http.client
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from kiosk.broker import free_port
from kiosk.config import DashboardConfig, Settings
from kiosk.dashboard.accounts import StaffAccounts, users_file
from kiosk.dashboard.service import DashboardService
from kiosk.events import Command, PresenceEvent, Topics
from tests.conftest import Recorder, wait_for
from tests.servicekit import running

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another long password"
PROJECT = Path(__file__).resolve().parent.parent


# -- an attacker's HTTP client ---------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str
    cookies: dict[str, str | None] = field(default_factory=dict)  # name -> value; None: the server deleted it

    @property
    def location(self) -> str:
        return dict((k.lower(), v) for k, v in self.headers).get("location", "")


def parse_set_cookies(headers: list[tuple[str, str]]) -> dict[str, str | None]:
    cookies: dict[str, str | None] = {}
    for name, value in headers:
        if name.lower() != "set-cookie":
            continue
        jar = SimpleCookie()
        jar.load(value)
        for key, morsel in jar.items():
            cookies[key] = None if morsel["max-age"] == "0" else morsel.value
    return cookies


class Raw:
    """One HTTP request per call; cookies are whatever the caller passes, nothing is kept."""

    def __init__(self, base: str) -> None:
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port

    def request(
        self,
        method: str,
        path: str,
        cookies: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        json_body: str | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        jar = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items() if v)
        if jar:
            sent["Cookie"] = jar
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json_body
            sent["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
            return Reply(response.status, response.getheaders(), text, parse_set_cookies(response.getheaders()))
        finally:
            connection.close()


def login_form(raw: Raw) -> tuple[dict[str, str | None], str]:
    """The cookies and the hidden token a browser gets with the sign-in form."""
    page = raw.request("GET", "/login")
    assert page.status == 200
    token = re.search(r'name="csrf" value="([^"]*)"', page.body).group(1)
    return page.cookies, token


def sign_in(raw: Raw, name: str = "carer", password: str = PASSWORD) -> dict[str, str | None]:
    """Sign in as a browser does; returns the cookies of the login response (the staff session)."""
    cookies, token = login_form(raw)
    reply = raw.request("POST", "/login", cookies=cookies, form={"name": name, "password": password, "csrf": token})
    assert reply.status == 302 and reply.location.endswith("/"), (reply.status, reply.body[:300])
    session = {k: v for k, v in reply.cookies.items() if v}
    assert session, "the login response set no session cookie"
    return session


def page_token(raw: Raw, session: dict[str, str | None]) -> str:
    """Open the staff page as a browser would (keeping any cookie it sets in ``session``); its CSRF token."""
    page = raw.request("GET", "/", cookies=session)
    assert page.status == 200, page.status
    session.update(page.cookies)
    return re.search(r'name="csrf-token" content="([^"]*)"', page.body).group(1)


def pause(raw: Raw, session, token: str | None, paused: bool, **extra_headers: str) -> Reply:
    headers = dict(extra_headers)
    if token is not None:
        headers["X-CSRF-Token"] = token
    return raw.request(
        "POST", "/api/pause", cookies=session, headers=headers, json_body=f'{{"paused": {str(paused).lower()}}}'
    )


# -- the kiosk side ---------------------------------------------------------------------------------------
class CommandWatch:
    """Staff commands as a kiosk service receives them (camera account), subscribed (SUBACK) before use."""

    def __init__(self, connect, topics: Topics) -> None:
        self.topics = topics
        self.seen = Recorder()
        subscribed = threading.Event()
        bus = connect("camera")
        bus.subscribe(f"{topics.base}/cmd/+/set", self.seen)
        bus.client.on_subscribe = lambda client, userdata, mid, codes, properties: (
            subscribed.set() if codes and not any(code.is_failure for code in codes) else None
        )
        bus.start()
        assert bus.wait_connected(10), "the command watcher could not connect"
        assert subscribed.wait(10), "the broker did not acknowledge the command subscription"

    def commands(self, action: str) -> list[Command]:
        return [Command.model_validate_json(p) for p in self.seen.payloads(self.topics.command(action))]

    def sent_before_marker(self, action: str, marker_since: float) -> list[Command]:
        """Wait for the marker (a command sent at or after ``marker_since``); what came on the topic before it."""
        assert wait_for(lambda: any(c.ts >= marker_since for c in self.commands(action)), timeout=10), (
            "the positive control never reached the bus"
        )
        return [c for c in self.commands(action) if c.ts < marker_since]


@dataclass
class StaffPage:
    settings: Settings
    raw: Raw
    watch: CommandWatch

    def marker_pause_off(self, name: str = "other", password: str = OTHER_PASSWORD) -> float:
        """A legitimate 'resume' from a fresh session: the positive control; returns when it was sent."""
        session = sign_in(self.raw, name, password)
        since = time.time()
        assert pause(self.raw, session, page_token(self.raw, session), paused=False).status == 200
        return since

    def forbidden_pauses(self, since: float) -> list[Command]:
        """Pause ON commands on the bus before the marker: each one got through where it must not."""
        return [c for c in self.watch.sent_before_marker("pause", since) if c.value == "ON"]


@pytest.fixture
def staff_page(settings: Settings, connect) -> Iterator[StaffPage]:
    kiosk = settings.model_copy(update={"dashboard": DashboardConfig(port=free_port(), home_assistant=False)})
    accounts = StaffAccounts(users_file(kiosk))
    accounts.set_password("carer", PASSWORD)
    accounts.set_password("other", OTHER_PASSWORD)
    watch = CommandWatch(connect, Topics(kiosk.kiosk_id))
    with running(DashboardService(kiosk)):
        raw = Raw(f"http://127.0.0.1:{kiosk.dashboard.port}")
        assert wait_for(lambda: _answers(raw), timeout=10), "the staff page never answered"
        yield StaffPage(kiosk, raw, watch)


def _answers(raw: Raw) -> bool:
    try:
        return raw.request("GET", "/login").status == 200
    except OSError:
        return False


def kiosk_cli(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """``kiosk staff ...`` as an administrator runs it, in its own process."""
    env = os.environ | {
        "KIOSK_RUN_DIR": str(settings.run_dir),
        "KIOSK_BROKER__SECRETS_DIR": str(settings.broker.secrets_dir),
        "KIOSK_BROKER__PORT": str(settings.broker.port),
    }
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *args], input=stdin, env=env, capture_output=True, text=True, timeout=60,
        cwd=PROJECT,
    )  # fmt: skip


# -- finding 1: a cookie without a token ------------------------------------------------------------------
def test_a_session_cookie_without_its_csrf_token_sends_no_command(staff_page: StaffPage):
    raw = staff_page.raw
    session = sign_in(raw)  # the cookie exactly as the login response set it
    someone_else = page_token(raw, sign_in(raw, "other", OTHER_PASSWORD))
    attempts = {
        "no token at all": pause(raw, session, None, paused=True),
        "an empty header": pause(raw, session, "", paused=True),
        "an empty form field": raw.request("POST", "/api/pause", cookies=session, form={"csrf": "", "paused": "1"}),
        "another session's token": pause(raw, session, someone_else, paused=True),
        "a non-ASCII token": pause(raw, session, "é" * 8, paused=True),
    }
    for attempt, reply in attempts.items():
        assert reply.status == 403, f"{attempt}: {reply.status}"
    refused_logout = raw.request("POST", "/logout", cookies=session, form={"csrf": ""})
    assert refused_logout.status == 403, "logout without the token"
    assert raw.request("GET", "/api/summary", cookies=session).status == 200, "a refused logout ended the session"
    own = page_token(raw, session)
    cross_site = pause(raw, session, own, paused=True, Origin="http://evil.example", **{"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status == 403, "a cross-site page could post with a stolen token"
    # positive control: the same cookie with its own token works, and nothing before it reached the bus
    since = time.time()
    assert pause(raw, session, own, paused=False).status == 200
    assert staff_page.watch.sent_before_marker("pause", since) == []


# -- finding 2: login CSRF ----------------------------------------------------------------------------------
def test_a_login_without_the_forms_token_and_cookie_is_refused(staff_page: StaffPage):
    raw = staff_page.raw
    credentials = {"name": "carer", "password": PASSWORD}
    form_cookies, form_token = login_form(raw)
    _, other_token = login_form(raw)  # a second visitor's form: a valid token, bound to another cookie
    attempts = {
        "no cookie, no token": raw.request("POST", "/login", form=credentials),
        "no cookie, empty token": raw.request("POST", "/login", form=credentials | {"csrf": ""}),
        "a token without its cookie": raw.request("POST", "/login", form=credentials | {"csrf": form_token}),
        "the cookie without a token": raw.request("POST", "/login", cookies=form_cookies, form=credentials),
        "a token bound to another cookie": raw.request(
            "POST", "/login", cookies=form_cookies, form=credentials | {"csrf": other_token}
        ),
        "a forged token": raw.request("POST", "/login", cookies=form_cookies, form=credentials | {"csrf": "x.y.z"}),
        "from another site": raw.request(
            "POST", "/login", cookies=form_cookies, form=credentials | {"csrf": form_token},
            headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        ),
    }  # fmt: skip
    for attempt, reply in attempts.items():
        assert reply.status == 403, f"{attempt}: {reply.status}"
        signed_in = {k: v for k, v in reply.cookies.items() if v}
        assert raw.request("GET", "/api/summary", cookies=signed_in).status == 401, f"{attempt} opened a session"
    # positive control: the form's own pair signs in, and that session reads the summary
    reply = raw.request("POST", "/login", cookies=form_cookies, form=credentials | {"csrf": form_token})
    assert reply.status == 302
    assert raw.request("GET", "/api/summary", cookies={k: v for k, v in reply.cookies.items() if v}).status == 200


# -- finding 3: sessions end on the server ------------------------------------------------------------------
def test_a_cookie_saved_before_logout_opens_nothing_after_it(staff_page: StaffPage):
    raw = staff_page.raw
    saved = sign_in(raw)
    token = page_token(raw, saved)
    assert raw.request("GET", "/api/summary", cookies=saved).status == 200
    logout = raw.request("POST", "/logout", cookies=saved, form={"csrf": token})  # the browser drops its cookie...
    assert logout.status == 302 and logout.cookies.get("kiosk_staff", "gone") is None
    # ...the attacker replays the copy saved before
    assert raw.request("GET", "/api/summary", cookies=saved).status == 401
    assert raw.request("GET", "/api/events", cookies=saved).status == 401
    assert raw.request("GET", "/", cookies=saved).status == 302
    replayed_reload = raw.request("POST", "/api/reload", cookies=saved, headers={"X-CSRF-Token": token})
    assert replayed_reload.status == 401
    assert pause(raw, saved, token, paused=True).status == 401
    # positive control: a fresh session reloads and resumes; the replayed commands never reached the bus
    fresh = sign_in(raw)
    since = time.time()
    assert (
        raw.request("POST", "/api/reload", cookies=fresh, headers={"X-CSRF-Token": page_token(raw, fresh)}).status
        == 200
    )
    assert staff_page.watch.sent_before_marker("reload-models", since) == []
    assert staff_page.forbidden_pauses(staff_page.marker_pause_off()) == []


def test_removing_an_account_with_the_cli_ends_its_sessions(staff_page: StaffPage):
    raw = staff_page.raw
    saved = sign_in(raw)
    token = page_token(raw, saved)
    removed = kiosk_cli(staff_page.settings, "staff", "remove-user", "carer")
    assert removed.returncode == 0, removed.stderr
    assert pause(raw, saved, token, paused=True).status == 401
    assert raw.request("GET", "/api/summary", cookies=saved).status == 401
    assert staff_page.forbidden_pauses(staff_page.marker_pause_off()) == []


def test_changing_a_password_with_the_cli_ends_that_accounts_sessions_only(staff_page: StaffPage):
    raw = staff_page.raw
    saved = sign_in(raw)
    token = page_token(raw, saved)
    bystander = sign_in(raw, "other", OTHER_PASSWORD)
    changed = kiosk_cli(staff_page.settings, "staff", "passwd", "carer", stdin="a brand new passphrase\n")
    assert changed.returncode == 0, changed.stderr
    assert pause(raw, saved, token, paused=True).status == 401
    assert raw.request("GET", "/api/summary", cookies=bystander).status == 200, "another account was logged out"
    form_cookies, form_token = login_form(raw)
    old_password = {"name": "carer", "password": PASSWORD, "csrf": form_token}
    assert raw.request("POST", "/login", cookies=form_cookies, form=old_password).status == 401
    sign_in(raw, "carer", "a brand new passphrase")
    assert staff_page.forbidden_pauses(staff_page.marker_pause_off()) == []
    unknown = kiosk_cli(staff_page.settings, "staff", "passwd", "nobody", stdin="a brand new passphrase\n")
    assert unknown.returncode != 0 and not StaffAccounts(users_file(staff_page.settings)).exists("nobody")


def test_an_open_event_stream_ends_with_its_session(staff_page: StaffPage, connect):
    raw = staff_page.raw
    topics = Topics(staff_page.settings.kiosk_id)
    saved = sign_in(raw)
    token = page_token(raw, saved)
    lines: queue.Queue[str | None] = queue.Queue()
    received: list[str] = []
    connection = http.client.HTTPConnection(raw.host, raw.port, timeout=30)
    connection.request("GET", "/api/events", headers={"Cookie": "; ".join(f"{k}={v}" for k, v in saved.items() if v)})
    stream = connection.getresponse()
    assert stream.status == 200

    def read() -> None:
        try:
            while line := stream.readline():
                lines.put(line.decode())
        except OSError:
            pass
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()

    def seen(text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                received.append("<end of stream>")
                return text == "<end of stream>"
            received.append(line)
            if text in line:
                return True
        return False

    camera = connect("camera")
    camera.start()
    assert camera.wait_connected(10)
    for _ in range(10):  # until the dashboard's own subscription is in place
        camera.publish(topics.presence, PresenceEvent(session_id="before00-visit", state="arrived").to_json())
        if seen("before00", timeout=1.0):
            break
    else:
        pytest.fail(f"positive control: the live stream never carried the first visit: {received[-3:]}")
    assert raw.request("POST", "/logout", cookies=saved, form={"csrf": token}).status == 302
    camera.publish(topics.presence, PresenceEvent(session_id="after000-visit", state="arrived").to_json())
    assert seen("<end of stream>", timeout=20), f"the stream outlived its session: {received[-3:]}"
    assert not any("after000" in line for line in received), "an event reached a logged-out stream"
    connection.close()


def test_a_login_lasts_no_longer_than_its_maximum_age(settings: Settings, connect):
    """``dashboard.session_hours`` bounds a session however busy it is (here 2 s, polled every 0.25 s)."""
    kiosk = settings.model_copy(
        update={"dashboard": DashboardConfig(port=free_port(), home_assistant=False, session_hours=2 / 3600)}
    )
    StaffAccounts(users_file(kiosk)).set_password("carer", PASSWORD)
    with running(DashboardService(kiosk)):
        raw = Raw(f"http://127.0.0.1:{kiosk.dashboard.port}")
        assert wait_for(lambda: _answers(raw), timeout=10)
        session = sign_in(raw)
        started = time.monotonic()
        assert raw.request("GET", "/api/summary", cookies=session).status == 200
        assert wait_for(lambda: raw.request("GET", "/api/summary", cookies=session).status == 401, 10, 0.25)
        assert time.monotonic() - started >= 1.5, "the session ended before its maximum age"


def test_a_login_survives_a_dashboard_restart_and_the_cli_ends_it_in_the_store(settings: Settings, connect):
    """The documented choice: sessions live in <run_dir>/staff-sessions.sqlite3 (hashes only)."""
    kiosk = settings.model_copy(update={"dashboard": DashboardConfig(port=free_port(), home_assistant=False)})
    StaffAccounts(users_file(kiosk)).set_password("carer", PASSWORD)
    raw = Raw(f"http://127.0.0.1:{kiosk.dashboard.port}")
    with running(DashboardService(kiosk)):
        assert wait_for(lambda: _answers(raw), timeout=10)
        session = sign_in(raw)
    with running(DashboardService(kiosk)):
        assert wait_for(lambda: _answers(raw), timeout=10)
        assert raw.request("GET", "/api/summary", cookies=session).status == 200
        removed = kiosk_cli(kiosk, "staff", "remove-user", "carer")
        assert removed.returncode == 0 and "1 staff page session(s) ended" in removed.stdout, removed.stdout
        assert raw.request("GET", "/api/summary", cookies=session).status == 401
