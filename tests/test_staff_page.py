"""The staff page: login with hashed passwords, rate limit, CSRF, no images; and in headless Chromium."""

from __future__ import annotations

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
from kiosk.dashboard.throttle import LoginThrottle
from kiosk.events import EmotionEvent, Topics
from kiosk.web.app import create_app
from kiosk.web.media import MediaStore
from kiosk.web.state import ScreenState
from tests.conftest import ARTIFACTS, Recorder, start_bus, wait_for
from tests.servicekit import running

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(tmp_path) -> StaffAccounts:
    accounts = StaffAccounts(tmp_path / "staff-users.json")
    accounts.set_password("carer", PASSWORD)
    return accounts


@pytest.fixture
def staff_app(accounts):
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
    )
    app.testing = True
    return app, sent, feed


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
    app, _, _ = staff_app
    client = app.test_client()
    assert client.get("/").status_code == 302 and client.get("/").location.endswith("/login")
    for path in ("/api/summary", "/api/events"):
        assert client.get(path).status_code == 401
    assert client.post("/api/pause", json={"paused": True}).status_code == 401


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
    commands = Recorder()
    start_bus(connect("camera")).subscribe(topics.command("pause"), commands)
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
            assert wait_for(lambda: commands.payloads(), timeout=10)
            assert json.loads(commands.payloads()[-1])["value"] == "ON"
            assert not driver.find_elements("tag name", "img")
            driver.save_screenshot(str(shots / "dashboard.png"))
            time.sleep(0.2)
    finally:
        driver.quit()


def test_prometheus_metrics_for_a_local_scraper_or_a_logged_in_carer(staff_app):
    app, _, _ = staff_app
    assert app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 401
    text = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_data(as_text=True)
    assert 'kiosk_stories_today{kiosk="k1"} 3.0' in text
    assert 'kiosk_service_up{kiosk="k1",service="emotion"} 1.0' in text
    assert text.count("# TYPE kiosk_service_up gauge") == 1
