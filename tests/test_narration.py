"""Narration on a real broker and in headless Chromium: a story arrives on the bus, the narrate service reads
each scene aloud, the web service keeps the audio, and the page plays each part in order, turns on
``ended``, lights the words as they are spoken, stays silent when muted, and falls back when no voice comes."""

from __future__ import annotations

import json
import time

import pytest

from kiosk.events import (
    ErrorEvent,
    HeroLook,
    NarrationEvent,
    PresenceEvent,
    Scene,
    StoryEvent,
    StoryPartialEvent,
    Topics,
    parse_event,
)
from kiosk.voice.service import NarrateService
from kiosk.web.service import WebService
from tests.conftest import Recorder, start_bus, wait_for
from tests.servicekit import running
from tests.test_browser import browser as browser
from tests.voicekit import voice_config

pytestmark = [pytest.mark.integration]

SCENES = [
    "Juno felt sad, and the rain kept falling on the window.",
    "A kind bear sat close and said hello.",
    "The sun came out.",
]


def story_event(session: str, scenes=SCENES) -> StoryEvent:
    return StoryEvent(
        session_id=session,
        emotion="sad",
        title="The Rainy Window",
        scenes=[Scene(text=t, illustration_prompt="p", setting="meadow", objects=["sun"], mood="sad") for t in scenes],
        hero=HeroLook(description="a young child"),
        generator="template",
        fallback=False,
        latency_ms=1,
    )


def narrations(recorder: Recorder, topic: str) -> list[NarrationEvent]:
    return [parse_event("narration", p) for p in recorder.payloads(topic)]


@pytest.fixture
def voiced(settings):
    return settings.model_copy(update={"voice": voice_config()})


def test_each_scene_is_read_once_the_opening_at_once(voiced, connect):
    topics = Topics(voiced.kiosk_id)
    heard = Recorder()
    monitor = connect("monitor")
    monitor.subscribe(topics.narration, heard)
    monitor.subscribe(topics.error, heard)
    start_bus(monitor)
    with running(NarrateService(voiced)) as service:
        assert service.bus.wait_subscribed(10)
        teller = start_bus(connect("story"))
        teller.publish(topics.story_partial, StoryPartialEvent(session_id="v", seq=0, text=f"T\n{SCENES[0]}").to_json())
        assert wait_for(lambda: len(narrations(heard, topics.narration)) == 2, timeout=15)  # the opening: 2 parts
        teller.publish(topics.story, story_event("v").to_json())
        assert wait_for(lambda: len(narrations(heard, topics.narration)) == 4, timeout=15)
        time.sleep(0.5)
    events = narrations(heard, topics.narration)
    assert [(e.scene_index, e.part, e.parts) for e in events] == [(0, 0, 2), (0, 1, 2), (1, 0, 1), (2, 0, 1)]
    assert all(
        e.audio_b64 and e.timings == "synthesiser" and e.words and e.voice.startswith("en_US-joe") for e in events
    )
    assert events[0].latency_ms < 2000 and not heard.payloads(topics.error)


def test_unspeakable_scenes_are_skipped_with_a_reason_and_a_missing_voice_says_why(settings, voiced, connect, tmp_path):
    topics = Topics(voiced.kiosk_id)
    heard, statuses = Recorder(), Recorder()
    monitor = connect("monitor")
    monitor.subscribe(topics.narration, heard)
    monitor.subscribe(topics.error, heard)
    monitor.subscribe(topics.status("narrate"), statuses)
    start_bus(monitor)
    scenes = ["😀🌈🐻", "Then Zoë and 李明 hugged 💛 a very long time.", "The end."]
    with running(NarrateService(voiced)):
        teller = start_bus(connect("story"))
        teller.publish(topics.story, story_event("w", scenes).to_json())
        assert wait_for(lambda: len(narrations(heard, topics.narration)) == 3, timeout=15)
        assert wait_for(lambda: heard.payloads(topics.error), timeout=5)
    events = narrations(heard, topics.narration)
    assert events[0].parts == 0 and "nothing in the scene can be spoken" in events[0].skipped
    assert events[1].parts == 1 and events[1].audio_b64 and events[2].parts == 1
    error = ErrorEvent.model_validate_json(heard.payloads(topics.error)[0])
    assert error.service == "narrate" and "scene 0 not read aloud" in error.reason

    missing = settings.model_copy(update={"voice": voice_config().model_copy(update={"model_path": tmp_path})})
    with running(NarrateService(missing, client_id="narrate-2")):
        teller.publish(topics.story, story_event("x").to_json())
        assert wait_for(lambda: len(narrations(heard, topics.narration)) == 6, timeout=15)
        assert wait_for(lambda: any(b"no voice" in p for p in statuses.payloads()), timeout=10)
    skipped = narrations(heard, topics.narration)[3:]
    assert all(e.parts == 0 and e.skipped.startswith("no voice: no voice at") for e in skipped)
    online = [json.loads(p) for p in statuses.payloads() if p and json.loads(p)["state"] == "online"]
    assert "no voice at" in str(online[-1]["detail"]["problem"])  # the retained status says why it is silent


def test_the_web_keeps_a_visits_narration_and_ignores_a_late_one_from_the_last_visit(tmp_path):
    import base64

    import numpy as np

    from kiosk.voice.audio import to_wav
    from kiosk.web.media import MediaStore
    from kiosk.web.state import ScreenState

    state = ScreenState(MediaStore(tmp_path))
    wav = base64.b64encode(to_wav(np.zeros(2205, dtype=np.float32), 22050)).decode()

    def part(session: str, **fields) -> NarrationEvent:
        audio = {"media_type": "audio/wav", "audio_b64": wav, "duration_s": 0.1} if fields.get("parts", 1) else {}
        return NarrationEvent(
            session_id=session, scene_index=0, text=SCENES[0], voice="v", latency_ms=1, **audio, **fields
        )

    state.apply(PresenceEvent(session_id="a", state="arrived"))
    state.apply(part("a", parts=2))
    state.apply(part("a", parts=0, skipped="voice failed"))  # the second part failed: kept beside the first
    state.apply(PresenceEvent(session_id="b", state="arrived"))
    state.apply(part("a", parts=2, part=1))  # late, from the last visit
    assert state.snapshot()["session_id"] == "b" and state.snapshot()["narration"] == []
    state.apply(part("b", parts=1))
    shown = state.snapshot()["narration"]
    assert len(shown) == 1 and shown[0]["url"].endswith(".wav") and state.media.get(shown[0]["url"][7:])
    assert len(state.media) == 2  # the late part was never stored


# -- the page ------------------------------------------------------------------------------------------
RECORD_AUDIO = """
window.__audio = {times: {}, ended: [], turns: []};
document.addEventListener('timeupdate', (e) => {
  const src = e.target.currentSrc;
  window.__audio.times[src] = Math.max(window.__audio.times[src] || 0, e.target.currentTime);
}, true);
document.addEventListener('ended', (e) => window.__audio.ended.push({src: e.target.currentSrc, at: performance.now(),
  page: window.kioskView && window.kioskView.page}), true);
"""


def page_state(driver) -> dict:
    return driver.execute_script("""
        const v = window.kioskView, a = document.getElementById('narration');
        return {page: v.page, played: v.played, ended: v.ended, lit: v.lit, fallbacks: v.fallbacks,
                status: v.voiceStatus, muted: a.muted, paused: a.paused, time: a.currentTime,
                times: window.__audio.times, audioEnded: window.__audio.ended, spoken: v.spoken,
                text: document.getElementById('scene-text').textContent,
                highlighted: CSS.highlights.has('spoken') ? [...CSS.highlights.get('spoken')][0].toString() : null};""")


def debug(driver) -> str:
    return json.dumps(
        driver.execute_script("""
        const v = window.kioskView;
        return {reading: v.reading && {scene: v.reading.scene, text: v.reading.text, state: v.reading.state},
                narration: v.narration, session: v.session, page: v.page, story: !!v.story, status: v.voiceStatus,
                text: document.getElementById('scene-text').textContent};""")
    )[:3000]


@pytest.fixture
def kiosk_page(voiced, browser):
    def open_page(settings, narrate: bool = True):
        services = [WebService(settings)] + ([NarrateService(settings)] if narrate else [])
        contexts = [running(s) for s in services]
        for context in contexts:
            context.__enter__()
        for service in services:
            assert service.bus.wait_subscribed(10)
        browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_AUDIO})
        browser.get(f"http://127.0.0.1:{settings.web.port}/")
        opened.extend(contexts)
        return browser

    opened: list = []
    yield open_page
    for context in reversed(opened):
        context.__exit__(None, None, None)


@pytest.mark.browser
@pytest.mark.slow
def test_the_page_plays_each_part_in_order_turns_on_ended_and_lights_the_words(voiced, kiosk_page, connect):
    topics = Topics(voiced.kiosk_id)
    driver = kiosk_page(voiced)
    camera, teller = start_bus(connect("camera")), start_bus(connect("story"))
    camera.publish(topics.presence, PresenceEvent(session_id="v", state="arrived").to_json())
    teller.publish(topics.story_partial, StoryPartialEvent(session_id="v", seq=0, text=f"T\n{SCENES[0]}").to_json())
    assert wait_for(lambda: page_state(driver)["played"], timeout=10), debug(driver)  # before the story is done
    teller.publish(topics.story, story_event("v").to_json())
    assert wait_for(lambda: page_state(driver)["highlighted"], timeout=10), page_state(driver)
    lit_on_first_page = {page_state(driver)["highlighted"]}
    while page_state(driver)["page"] == 0:
        if (word := page_state(driver)["highlighted"]) is not None:
            lit_on_first_page.add(word)
        time.sleep(0.05)
    state = page_state(driver)
    # every part of page 1 was played and ended before the page turned
    assert [(p["scene"], p["part"]) for p in state["played"]][:2] == [(0, 0), (0, 1)]
    assert [(e["scene"], e["part"]) for e in state["ended"]][:2] == [(0, 0), (0, 1)]
    assert len(lit_on_first_page) >= 4, lit_on_first_page  # the highlight moved word by word
    assert all(word in SCENES[0] for word in lit_on_first_page)
    assert wait_for(lambda: page_state(driver)["page"] == 2, timeout=20), page_state(driver)
    assert wait_for(lambda: len(page_state(driver)["ended"]) == 4, timeout=15), page_state(driver)
    state = page_state(driver)
    assert [(p["scene"], p["part"]) for p in state["played"]] == [(0, 0), (0, 1), (1, 0), (2, 0)]
    assert len(state["audioEnded"]) == 4 and all(t > 0.3 for t in state["times"].values()), state["times"]
    lit_words = [w["word"] for w in state["lit"]]
    assert lit_words[:3] == ["Juno", "felt", "sad"] and "sun" in lit_words
    assert not state["fallbacks"] and state["status"] == "narration" and not state["spoken"]
    requests = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert requests and all(r.startswith("http://127.0.0.1:") for r in requests), requests


@pytest.mark.browser
@pytest.mark.slow
def test_mute_silences_the_narration_and_the_story_goes_on(voiced, kiosk_page, connect):
    topics = Topics(voiced.kiosk_id)
    driver = kiosk_page(voiced)
    driver.find_element("id", "mute").click()
    teller = start_bus(connect("story"))
    teller.publish(topics.story, story_event("m").to_json())
    assert wait_for(lambda: page_state(driver)["played"] and page_state(driver)["time"] > 0.2, timeout=10)
    state = page_state(driver)
    assert state["muted"] and not state["paused"]  # playing, silently: the pages still turn with the voice
    assert wait_for(lambda: page_state(driver)["page"] == 1, timeout=20)
    assert page_state(driver)["muted"]
    driver.find_element("id", "mute").click()
    assert not page_state(driver)["muted"]


@pytest.mark.browser
@pytest.mark.slow
def test_without_a_voice_the_page_falls_back_and_says_why(settings, kiosk_page, connect, tmp_path):
    silent = settings.model_copy(update={"voice": voice_config().model_copy(update={"model_path": tmp_path})})
    topics = Topics(silent.kiosk_id)
    driver = kiosk_page(silent)
    teller = start_bus(connect("story"))
    started = time.monotonic()
    teller.publish(topics.story, story_event("n").to_json())
    assert wait_for(lambda: page_state(driver)["fallbacks"], timeout=10), page_state(driver)
    assert time.monotonic() - started < 2.0, "a skipped narration falls back at once, not after the wait"
    state = page_state(driver)
    assert "no voice" in state["fallbacks"][0]["reason"] and "no voice" in state["status"]
    assert state["spoken"] == [SCENES[0]] and not state["played"]  # the browser's voice was asked next
    assert wait_for(lambda: page_state(driver)["page"] == 1, timeout=15)  # and the reading timer turns the page


@pytest.mark.browser
@pytest.mark.slow
def test_with_no_narrate_service_at_all_the_page_reads_by_timer(settings, kiosk_page, connect):
    topics = Topics(settings.kiosk_id)
    driver = kiosk_page(settings, narrate=False)
    teller = start_bus(connect("story"))
    teller.publish(topics.story, story_event("t").to_json())
    assert wait_for(lambda: page_state(driver)["fallbacks"], timeout=10)
    assert page_state(driver)["fallbacks"][0]["reason"] == "no narration arrived"
    assert wait_for(lambda: page_state(driver)["page"] == 1, timeout=15)
