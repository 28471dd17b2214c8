"""The child's screen in headless Chromium, driven by MQTT events as a real visit would be:
arrive → words streaming → full story → pictures → a better picture replaces one → leave."""

import base64
import json
import threading
import time
from pathlib import Path

import pytest

from kiosk.events import (
    HeroLook,
    IllustrationEvent,
    PresenceEvent,
    Scene,
    StoryEvent,
    StoryPartialEvent,
    Topics,
)
from kiosk.illustrate import storybook
from kiosk.web.service import WebService
from tests.conftest import ARTIFACTS, start_bus, wait_for
from tests.test_browser import browser as browser

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

RECORD_SPEECH = """
window.__spoken = [];
if (window.speechSynthesis) {
  const original = window.speechSynthesis.speak.bind(window.speechSynthesis);
  window.speechSynthesis.speak = (u) => {
    window.__spoken.push({text: u.text, rate: u.rate, pitch: u.pitch});
    setTimeout(() => u.onend && u.onend(new Event('end')), 300);  // headless has no audio device
    try { original(u); } catch (e) {}
  };
}
"""

SCENES = [
    ("Juno felt sad and quiet, watching raindrops slide slowly down the window.", "room", ["rain", "window"]),
    ("A gentle bear sat close and said, \"It's okay to feel sad. I'm here.\"", "meadow", ["bear", "heart"]),
    ("Slowly the clouds moved on, and a soft light came through.", "meadow", ["sun", "rainbow"]),
]


@pytest.fixture
def web(settings):
    service = WebService(settings)
    service.start()
    assert service.bus.wait_subscribed(10)  # SUBACKs in: nothing published after this can pass it by
    thread = threading.Thread(target=service.loop, daemon=True)
    thread.start()
    yield settings, f"http://127.0.0.1:{settings.web.port}/"
    service.stop()
    thread.join(5)


def screen(driver) -> dict:
    return driver.execute_script("""
        const visible = (id) => !document.getElementById(id).classList.contains('hidden');
        const img = document.getElementById('scene-picture');
        return {attract: visible('attract'), hello: visible('hello'), story: visible('story'),
                title: document.getElementById('story-title').textContent,
                text: document.getElementById('scene-text').textContent,
                page: window.kioskView.page, src: img.getAttribute('src'),
                picture: visible('scene-picture') && img.complete && img.naturalWidth > 0
                         && getComputedStyle(img).opacity === '1',
                spoken: (window.__spoken || []).map(s => s.text),
                voice: (window.__spoken || [])[0] || null};""")


def svg_picture(story_id, index, mood="sad"):
    setting, objects = SCENES[index][1], SCENES[index][2]
    svg = storybook.render_svg(setting, objects, mood, "green", True, seed=index)
    return IllustrationEvent(
        session_id="visit",
        causation_id=story_id,
        story_id=story_id,
        scene_index=index,
        scene_count=3,
        media_type="image/svg+xml",
        image_b64=base64.b64encode(svg.encode()).decode(),
        illustrator=storybook.ILLUSTRATOR,
        latency_ms=1,
    )


@pytest.mark.parametrize("size", [(1080, 1920), (1920, 1080), (800, 1280)], ids=["portrait", "landscape", "tablet"])
def test_a_scripted_visit(web, browser, connect, size):
    settings, url = web
    topics = Topics(settings.kiosk_id)
    shots = ARTIFACTS / f"storybook-{size[0]}x{size[1]}"
    shots.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(*size)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_SPEECH})
    browser.get(url)
    camera, teller, painter = (start_bus(connect(user), settle=0) for user in ("camera", "story", "illustrate"))

    assert wait_for(lambda: screen(browser)["attract"])
    browser.save_screenshot(str(shots / "1-attract.png"))

    camera.publish(topics.presence, PresenceEvent(session_id="visit", state="arrived").to_json())
    assert wait_for(lambda: screen(browser)["hello"])
    browser.save_screenshot(str(shots / "2-hello.png"))

    partial = f"The Rainy Window\n{SCENES[0][0][:30]}"
    teller.publish(topics.story_partial, StoryPartialEvent(session_id="visit", seq=0, text=partial).to_json())
    assert wait_for(lambda: screen(browser)["story"] and SCENES[0][0][:30] in screen(browser)["text"])
    browser.save_screenshot(str(shots / "3-words-streaming.png"))

    story = StoryEvent(
        session_id="visit",
        emotion="sad",
        title="The Rainy Window",
        scenes=[Scene(text=t, illustration_prompt="p", setting=s, objects=o, mood="sad") for t, s, o in SCENES],
        hero=HeroLook(description="a young child", clothing_colour="green", glasses=True),
        generator="template",
        fallback=False,
        latency_ms=1,
    )
    teller.publish(topics.story, story.to_json())
    assert wait_for(lambda: screen(browser)["text"] == SCENES[0][0])
    for index in range(3):
        painter.publish(topics.illustration, svg_picture(story.event_id, index).to_json())
    assert wait_for(lambda: screen(browser)["picture"], timeout=10)
    browser.save_screenshot(str(shots / "4-story-page-1.png"))
    assert wait_for(lambda: SCENES[0][0] in screen(browser)["spoken"])
    first_voice = screen(browser)["voice"]
    assert first_voice["rate"] < 1 and first_voice["pitch"] > 1  # slower, brighter: for children

    # the page turns by itself at reading pace once the voice has finished
    assert wait_for(lambda: screen(browser)["page"] == 1, timeout=20)
    assert wait_for(lambda: screen(browser)["picture"] and SCENES[1][0] in screen(browser)["spoken"], timeout=10)
    browser.save_screenshot(str(shots / "5-story-page-2.png"))

    browser.find_element("id", "story").click()  # and by touch
    assert wait_for(lambda: screen(browser)["page"] == 2 and SCENES[2][0] in screen(browser)["spoken"])
    offline_src = screen(browser)["src"]
    better = svg_picture(story.event_id, 2, mood="happy").model_copy(update={"illustrator": "diffusion (test)"})
    painter.publish(topics.illustration, better.to_json())
    assert wait_for(lambda: screen(browser)["src"] != offline_src and screen(browser)["picture"], timeout=10)
    browser.save_screenshot(str(shots / "6-story-last-page.png"))
    assert screen(browser)["spoken"][:3] == [text for text, _, _ in SCENES]  # each scene read aloud, in order

    camera.publish(topics.presence, PresenceEvent(session_id="visit", state="left").to_json())
    time.sleep(0.5)
    assert screen(browser)["story"], "the story stays for a grace period after the child leaves"
    assert wait_for(lambda: screen(browser)["attract"], timeout=settings.web.grace_s + 5)
    browser.save_screenshot(str(shots / "7-after-leaving.png"))

    requests = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    urls = {m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"}
    network = {u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp")}  # not chrome://, data:
    assert network and all(u.startswith("http://127.0.0.1:") for u in network), network


def test_mute_silences_the_voice_and_is_remembered(web, browser):
    _, url = web
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_SPEECH})
    browser.get(url)
    mute = browser.find_element("id", "mute")
    assert mute.get_attribute("aria-pressed") == "false"
    mute.click()
    assert mute.get_attribute("aria-pressed") == "true"
    browser.refresh()
    assert browser.find_element("id", "mute").get_attribute("aria-pressed") == "true"


INJECTIONS = [
    '<img src=x onerror="window.__pwned = 1">',
    '"><script>window.__pwned = 2</script>',
    '<svg onload="window.__pwned = 3"></svg>',
]


def test_story_text_from_the_bus_is_shown_as_text_never_run_as_markup(web, browser, connect):
    """As an attacker who controls the story service: markup in the title, a scene and the streamed words."""
    settings, url = web
    topics = Topics(settings.kiosk_id)
    browser.get(url)
    teller = start_bus(connect("story"))
    camera = start_bus(connect("camera"))
    camera.publish(topics.presence, PresenceEvent(session_id="visit-x", state="arrived").to_json())
    assert wait_for(lambda: screen(browser)["hello"])
    partial = StoryPartialEvent(session_id="visit-x", seq=0, text=f"{INJECTIONS[0]}\n{INJECTIONS[1]}")
    teller.publish(topics.story_partial, partial.to_json()).wait_for_publish(5)
    assert wait_for(lambda: screen(browser)["title"] == INJECTIONS[0])  # the literal text, on the page
    assert screen(browser)["text"] == INJECTIONS[1]
    scenes = [
        Scene(text=text, illustration_prompt="p", setting="meadow", objects=["sun"], mood="happy")
        for text in INJECTIONS
    ]
    story = StoryEvent(
        session_id="visit-x", emotion="happy", title=INJECTIONS[2], scenes=scenes,
        hero=HeroLook(description="a young child"), generator="template", fallback=False, latency_ms=1,
    )  # fmt: skip
    teller.publish(topics.story, story.to_json()).wait_for_publish(5)
    assert wait_for(lambda: screen(browser)["title"] == INJECTIONS[2] and screen(browser)["text"] == INJECTIONS[0])
    for page in (1, 2):
        browser.find_element("id", "story").click()
        assert wait_for(lambda p=page: screen(browser)["text"] == INJECTIONS[p])
    injected = browser.execute_script("""
        const story = document.getElementById('story');
        return {pwned: window.__pwned === undefined ? null : window.__pwned,
                elements: [...story.querySelectorAll('h1 *, figcaption *')].map(e => e.tagName),
                scripts: document.scripts.length};""")
    assert injected == {"pwned": None, "elements": [], "scripts": 1}, injected


def test_the_page_script_never_inserts_markup():
    """The screen's script writes event text with textContent only; its template never marks text as safe."""
    from kiosk.web import app

    static = Path(app.__file__).parent
    script = (static / "static" / "kiosk.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
    assert "textContent" in script
    for template in (static / "templates").glob("*.html"):
        assert "|safe" not in template.read_text().replace(" ", "") and "Markup" not in template.read_text()
