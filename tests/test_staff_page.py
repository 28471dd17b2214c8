"""The staff page: login with hashed passwords, rate limit, CSRF, server-side sessions, no images; and in
headless Chromium. The attacks over HTTP on the real service are in ``test_staff_security.py``."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time

import pytest

from bench.chromium import CHROMEDRIVER, headless_chromium
from kiosk.config import DashboardConfig, Settings
from kiosk.dashboard.accounts import StaffAccounts
from kiosk.dashboard.app import StaffFeed, create_staff_app
from kiosk.dashboard.service import DashboardService
from kiosk.dashboard.sessions import StaffSessions
from kiosk.dashboard.throttle import LoginThrottle
from kiosk.events import EmotionEvent, Topics
from kiosk.web.app import create_app
from kiosk.web.media import MediaStore
from kiosk.web.state import ScreenState
from tests.conftest import ARTIFACTS, start_bus, wait_for
from tests.servicekit import running
from tests.test_staff_security import CommandWatch

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(tmp_path) -> StaffAccounts:
    accounts = StaffAccounts(tmp_path / "staff-users.json")
    accounts.set_password("carer", PASSWORD)
    return accounts


def make_staff_app(accounts: StaffAccounts, sessions: StaffSessions | None = None):
    sent: list[tuple[str, str]] = []
    feed = StaffFeed()
    app = create_staff_app(
        accounts,
        LoginThrottle(attempts=5, window_s=300),
        feed,
        summary=lambda: {"kiosk_id": "k1", "stories_today": 3},
        health=lambda: {"emotion": {"state": "online"}},
        send_command=lambda action, value: sent.append((action, value)),
        secret_key=b"x" * 32,
        sessions=sessions,
    )
    app.testing = True
    return app, sent, feed


@pytest.fixture
def staff_app(accounts):
    return make_staff_app(accounts)


class Clock:
    """Wall-clock time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def csrf_of(client, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def log_in(client, password: str = PASSWORD, name: str = "carer", csrf: str | None = None, address="10.0.0.1"):
    token = csrf if csrf is not None else csrf_of(client)
    return client.post(
        "/login", data={"name": name, "password": password, "csrf": token}, environ_base={"REMOTE_ADDR": address}
    )


def test_passwords_are_stored_as_salted_hashes(accounts):
    text = accounts.path.read_text()
    assert PASSWORD not in text and json.loads(text)["carer"].startswith("scrypt:")
    assert (
        accounts.verify("carer", PASSWORD) and not accounts.verify("carer", "wrong") and not accounts.verify("x", "y")
    )
    with pytest.raises(ValueError):
        accounts.set_password("carer", "short")


def test_everything_needs_a_login(staff_app):
    app, sent, _ = staff_app
    client = app.test_client()
    assert client.get("/").status_code == 302 and client.get("/").location.endswith("/login")
    for path in ("/api/summary", "/api/events"):
        assert client.get(path).status_code == 401
    assert client.post("/api/pause", json={"paused": True}).status_code == 401
    assert client.post("/api/reload").status_code == 401
    assert sent == []  # send_command runs in the request: nothing can still be on its way


def test_login_sets_a_strict_http_only_cookie_and_needs_the_csrf_token(staff_app):
    app, _, _ = staff_app
    client = app.test_client()
    assert log_in(client, csrf="forged").status_code == 403
    response = log_in(client)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/").get_data(as_text=True)
    assert "<img" not in page and "Live events" in page
    assert client.get("/api/summary").get_json()["stories_today"] == 3


def test_logins_are_rate_limited_per_address_and_per_account(staff_app):
    app, _, _ = staff_app
    client = app.test_client()
    statuses = [log_in(client, password=f"guess {i}").status_code for i in range(5)]
    assert statuses == [401] * 5
    blocked = log_in(client)  # even the right password waits now
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    other_account = log_in(client, name="other", password="guess")
    assert other_account.status_code == 429  # the same address
    elsewhere = app.test_client()
    assert log_in(elsewhere, address="10.0.0.2").status_code == 429  # the same account from elsewhere
    assert log_in(app.test_client(), name="nobody", password="guess", address="10.0.0.3").status_code == 401


def test_pause_and_reload_send_commands_only_with_the_csrf_token(staff_app):
    app, sent, _ = staff_app
    client = app.test_client()
    log_in(client)
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    assert client.post("/api/pause", json={"paused": True}).status_code == 403
    assert client.post("/api/pause", json={"paused": True}, headers={"X-CSRF-Token": token}).status_code == 200
    assert client.post("/api/reload", headers={"X-CSRF-Token": token}).status_code == 200
    assert sent == [("pause", "ON"), ("reload-models", "PRESS")]


def test_a_session_ends_when_idle_and_at_its_maximum_age_however_busy(accounts):
    clock = Clock()
    app, _, _ = make_staff_app(accounts, StaffSessions(idle_s=600, max_age_s=3600, clock=clock))
    client = app.test_client()
    log_in(client)
    for _ in range(6):  # a request every 9 minutes keeps it alive (54 minutes in all)...
        clock.now += 540
        assert client.get("/api/summary").status_code == 200
    clock.now += 540  # ...until one hour after login
    assert client.get("/api/summary").status_code == 401
    log_in(client)
    clock.now += 599
    assert client.get("/api/summary").status_code == 200
    clock.now += 601  # ten minutes without a request
    assert client.get("/api/summary").status_code == 401


def test_the_session_store_holds_only_hashes_and_survives_a_dashboard_restart(accounts, tmp_path):
    path = tmp_path / "run" / "staff-sessions.sqlite3"
    app, _, _ = make_staff_app(accounts, StaffSessions(path))
    client = app.test_client()
    log_in(client)
    session_id = client.get_cookie("kiosk_staff").value
    stored = path.read_bytes()
    assert session_id.encode() not in stored and hashlib.sha256(session_id.encode()).hexdigest().encode() in stored
    assert path.stat().st_mode & 0o777 == 0o600
    restarted, _, _ = make_staff_app(accounts, StaffSessions(path))
    later = restarted.test_client()
    later.set_cookie("kiosk_staff", session_id)
    assert later.get("/api/summary").status_code == 200
    assert StaffSessions(path).end_for("carer") == 1  # what `kiosk staff remove-user` does to the store
    assert later.get("/api/summary").status_code == 401


def test_an_account_keeps_only_its_newest_sessions(accounts):
    app, _, _ = make_staff_app(accounts, StaffSessions(per_account=3))
    clients = [app.test_client() for _ in range(4)]
    for client in clients:
        log_in(client)
    assert [c.get("/api/summary").status_code for c in clients] == [401, 200, 200, 200]


def test_a_password_change_or_an_account_removal_ends_its_sessions(staff_app, accounts):
    app, sent, _ = staff_app
    accounts.set_password("other", "another long password")
    carer, other = app.test_client(), app.test_client()
    log_in(carer)
    log_in(other, name="other", password="another long password")
    accounts.set_password("carer", "a brand new passphrase")
    assert carer.get("/api/summary").status_code == 401
    assert other.get("/api/summary").status_code == 200
    token = re.search(r'name="csrf-token" content="([^"]+)"', other.get("/").get_data(as_text=True)).group(1)
    accounts.remove("other")
    assert other.post("/api/reload", headers={"X-CSRF-Token": token}).status_code == 401
    assert sent == []


def test_the_childs_page_has_no_staff_pages(tmp_path):
    app = create_app(ScreenState(MediaStore(tmp_path / "media", 10, 10**6)), lambda: {"connected": True})
    client = app.test_client()
    for path in ("/login", "/api/summary", "/api/events", "/api/pause"):
        assert client.get(path).status_code in (404, 405)
    assert "staff" not in client.get("/").get_data(as_text=True).lower()


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("chromium") is None or not shutil.which(CHROMEDRIVER), reason="chromium not installed")
def test_staff_page_in_chromium_login_live_feed_and_pause(settings: Settings, connect, tmp_path):
    from kiosk.broker import free_port

    kiosk = settings.model_copy(update={"dashboard": DashboardConfig(port=free_port())})
    StaffAccounts(kiosk.broker.secrets_dir / "staff-users.json").set_password("carer", PASSWORD)
    topics = Topics(kiosk.kiosk_id)
    commands = CommandWatch(connect, topics)  # subscribed: the broker acknowledged it
    driver = headless_chromium(tmp_path / "chromium", window=(1280, 900))
    shots = ARTIFACTS / "staff-page"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with running(DashboardService(kiosk)):
            url = f"http://127.0.0.1:{kiosk.dashboard.port}/"
            driver.get(url)
            driver.find_element("id", "name").send_keys("carer")
            driver.find_element("id", "password").send_keys(PASSWORD)
            driver.find_element("id", "sign-in").click()
            assert wait_for(lambda: driver.find_elements("id", "feed"), timeout=10)
            assert wait_for(lambda: driver.find_element("id", "connection").text == "live", timeout=10)
            feeling = EmotionEvent(
                session_id="visit-page", emotion="happy", detected="happy", confidence=0.9,
                probabilities={"happy": 0.9}, runtime="onnxruntime-cpu", model="m@1", latency_ms=1.0,
            )  # fmt: skip
            start_bus(connect("emotion"), settle=0).publish(topics.emotion, feeling.to_json())
            assert wait_for(lambda: "emotion happy" in driver.find_element("id", "feed").text, timeout=10)
            assert wait_for(lambda: driver.find_element("id", "last-emotion").text.startswith("happy"), timeout=10)
            driver.find_element("id", "pause").click()
            assert wait_for(lambda: commands.commands("pause"), timeout=10)
            assert [c.value for c in commands.commands("pause")] == ["ON"]
            assert not driver.find_elements("tag name", "img")
            driver.save_screenshot(str(shots / "dashboard.png"))
            time.sleep(0.2)
    finally:
        driver.quit()


def test_prometheus_metrics_for_a_local_scraper_or_a_logged_in_carer(staff_app):
    app, _, _ = staff_app
    assert app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 401
    text = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_data(as_text=True)
    assert 'kiosk_stories_total{kiosk="k1"} 3.0' in text
    assert 'kiosk_service_up{kiosk="k1",service="emotion"} 1.0' in text
    assert text.count("# TYPE kiosk_service_up gauge") == 1
