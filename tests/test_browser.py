"""`kiosk run` on the sample photo, the page in headless Chromium: the story and its picture appear,
and a new visit replaces them live, without a reload."""

import os
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from bench.chromium import CHROMEDRIVER, headless_chromium
from kiosk import broker
from kiosk.bus import Bus
from kiosk.config import load_settings
from kiosk.events import PresenceEvent, Topics
from kiosk.service import broker_address
from tests.conftest import ARTIFACTS, wait_for
from tests.test_pipeline import sample_face_event

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def kiosk(tmp_path):
    env = os.environ | {
        "KIOSK_KIOSK_ID": f"b{uuid.uuid4().hex[:6]}",
        "KIOSK_RUN_DIR": str(tmp_path / "run"),
        "KIOSK_BROKER__PORT": str(broker.free_port()),
        "KIOSK_BROKER__SECRETS_DIR": str(tmp_path / "secrets"),
        "KIOSK_WEB__PORT": str(broker.free_port()),
        "KIOSK_DASHBOARD__PORT": str(broker.free_port()),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--source", "sample"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    settings = load_settings(environ=env)
    url = f"http://127.0.0.1:{settings.web.port}/"
    try:
        assert wait_for(lambda: _ready(url + "healthz"), timeout=60), "the page never became healthy"
        yield settings, url
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output[-3000:]


def _ready(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def browser(tmp_path):
    if not os.path.exists(CHROMEDRIVER):
        pytest.skip("chromium-driver is not installed (make setup-dev installs it)")
    driver = headless_chromium(tmp_path / "chromium", network_log=True)
    yield driver
    driver.quit()


def visible_story(driver):
    return driver.execute_script("""
        const img = document.getElementById('scene-picture');
        return {title: document.getElementById('story-title').textContent,
                text: document.getElementById('scene-text').textContent,
                storyShown: !document.getElementById('story').classList.contains('hidden'),
                picture: !img.classList.contains('hidden') && img.complete && img.naturalWidth > 0
                         && img.classList.contains('shown') && getComputedStyle(img).opacity === '1',
                storyId: window.kioskView.story && window.kioskView.story.story_id};""")


def test_story_and_picture_appear_and_update_live(kiosk, browser):
    settings, url = kiosk
    ARTIFACTS.mkdir(exist_ok=True)
    browser.get(url)
    assert wait_for(lambda: visible_story(browser)["picture"], timeout=30), visible_story(browser)
    first = visible_story(browser)
    assert first["storyShown"] and first["title"] and len(first["text"]) > 20
    browser.save_screenshot(str(ARTIFACTS / "kiosk-story.png"))

    # a second visit arrives on the bus: the open page follows it without a reload
    browser.execute_script("window.notReloaded = true;")
    topics = Topics(settings.kiosk_id)
    camera = Bus(broker_address(settings, "camera"), f"test-camera-{uuid.uuid4().hex[:6]}", persistent=False)
    camera.start()
    assert camera.wait_connected(10)
    try:
        camera.publish(topics.presence, PresenceEvent(session_id="second-visit", state="arrived").to_json())
        camera.publish(topics.face, sample_face_event("second-visit").to_json())
        assert wait_for(
            lambda: (
                visible_story(browser)["storyId"] not in (None, first["storyId"]) and visible_story(browser)["picture"]
            ),
            timeout=30,
        )
    finally:
        camera.stop()
    assert browser.execute_script("return window.notReloaded === true;")
    browser.save_screenshot(str(ARTIFACTS / "kiosk-second-story.png"))
    time.sleep(0.1)


def test_page_loads_nothing_from_outside(kiosk, browser):
    _, url = kiosk
    browser.get(url)
    assert wait_for(lambda: visible_story(browser)["picture"], timeout=30)
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);"
    )
    assert resources and all(r.startswith("http://127.0.0.1:") for r in resources), resources
