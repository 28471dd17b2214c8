"""Attacks on the broker, made as someone holding one kiosk account would make them (issue #13).

Each runs on a real Mosquitto with the project's config, against real services, and failed before its fix:
a retained staff command acted live and stayed stored; staff or monitor logging in with a service's client
id knocked the service off the bus, fired its last will and wiped its queued events; and a face crop queued
for a paused or absent emotion service was written into ``mosquitto.db``.

A "denied" check here never rests on silence: it waits for an answer that must come after the forbidden one
(a refusal on ``error``, a marker the same reader receives, the victim's own reply to a later event).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.broker import free_port
from kiosk.camera.service import CameraService
from kiosk.config import DashboardConfig, Settings
from kiosk.dashboard.service import DashboardService
from kiosk.emotion.service import EmotionService
from kiosk.events import Command, HeroLook, Scene, StatusPayload, StoryEvent, Topics, parse_event
from kiosk.illustrate.service import IllustrateService
from kiosk.supervisor import write_settings
from tests.conftest import Recorder, start_bus, wait_for
from tests.modelkit import tiny_model_dir
from tests.servicekit import running
from tests.test_pipeline import sample_face_event

pytestmark = pytest.mark.integration


@pytest.fixture
def kiosk(settings: Settings, tmp_path: Path) -> Settings:
    """The test kiosk with a tiny emotion model and a free staff-page port."""
    emotion = settings.emotion.model_copy(update={"model_dir": tiny_model_dir(tmp_path / "model"), "unsure_below": 0.0})
    return settings.model_copy(update={"emotion": emotion, "dashboard": DashboardConfig(port=free_port())})


def states(seen: Recorder, topics: Topics, service: str) -> list[str]:
    return [StatusPayload.model_validate_json(p).state for p in seen.payloads(topics.status(service))]


def story_for(session_id: str) -> StoryEvent:
    scene = Scene(text="Milo smiled.", illustration_prompt="a child smiling", setting="park", mood="happy")
    return StoryEvent(
        session_id=session_id, causation_id="e1", emotion="happy", title="A Sunny Day", scenes=[scene],
        hero=HeroLook(description="a child"), generator="template", fallback=True, latency_ms=1.0,
    )  # fmt: skip


# -- finding 4: commands the broker stores ------------------------------------------------------------
def test_a_retained_command_is_refused_live_and_deleted_from_the_store(kiosk, connect, raw):
    topics = Topics(kiosk.kiosk_id)
    pause = topics.command("pause")
    seen = Recorder()
    watcher = connect("monitor")
    watcher.subscribe(topics.status("+"), seen)
    watcher.subscribe(topics.error, seen)
    start_bus(watcher)
    store = raw("story")  # a reader of commands that sees retain flags as sent
    assert store.connect() == "Success"
    store.subscribe(pause, retain_as_published=True)
    with running(DashboardService(kiosk)), running(CameraService(kiosk)) as camera:
        assert wait_for(
            lambda: "online" in states(seen, topics, "camera") and "online" in states(seen, topics, "dashboard"), 30
        )
        attacker = raw("staff")
        assert attacker.connect() == "Success"
        assert attacker.publish(pause, Command(value="ON").model_dump_json().encode(), retain=True) == "Success"

        # the camera answered it, with a refusal, and is not paused
        assert wait_for(lambda: any(b"retained commands are refused" in p for p in seen.payloads(topics.error)))
        assert not camera.paused
        # the broker's copy is gone: overwritten by an empty retained message
        assert store.wait_message(lambda m: m[0] == pause and m[2] and m[1] == b"")
        # a newcomer gets only the live command sent after it subscribed: nothing stored came first
        newcomer = raw("web")
        assert newcomer.connect() == "Success"
        newcomer.subscribe(pause)
        live = Command(value="ON").model_dump_json().encode()
        assert attacker.publish(pause, live) == "Success"
        assert newcomer.wait_message(lambda m: m[1] == live)
        assert newcomer.received(pause) == [(pause, live, False)]
        assert wait_for(lambda: camera.paused)  # the same command sent live still works


def test_a_command_stored_before_the_kiosk_starts_is_refused_and_deleted(kiosk, connect, raw):
    topics = Topics(kiosk.kiosk_id)
    pause = topics.command("pause")
    attacker = raw("staff")
    assert attacker.connect() == "Success"
    stored = attacker.publish(pause, Command(value="ON").model_dump_json().encode(), retain=True)
    assert stored in ("Success", "No matching subscribers")  # accepted: nobody listens yet, the broker keeps it
    errors = Recorder()
    start_bus(connect("monitor")).subscribe(topics.error, errors)
    store = raw("story")
    assert store.connect() == "Success"
    store.subscribe(pause, retain_as_published=True)
    assert store.wait_message(lambda m: m[2] and m[1])  # stored: the newcomer got it at once
    with running(CameraService(kiosk)) as camera:  # starts first: it meets the stored command
        assert wait_for(lambda: any(b"retained commands are refused" in p for p in errors.payloads()), 30)
        assert not camera.paused
        with running(DashboardService(kiosk)):  # the account that may delete it does so at start
            assert store.wait_message(lambda m: m[2] and m[1] == b"", timeout=30)
        newcomer = raw("web")
        assert newcomer.connect() == "Success"
        newcomer.subscribe(pause)
        live = Command(value="OFF").model_dump_json().encode()
        assert attacker.publish(pause, live) == "Success"
        assert newcomer.wait_message(lambda m: m[1] == live)
        assert newcomer.received(pause) == [(pause, live, False)]
        assert not camera.paused and len(errors.payloads()) == 1  # the deletion itself is no command


# -- finding 5: client-id takeover ---------------------------------------------------------------------
def count_disconnects(service) -> list[object]:
    """Wrap the service's own paho callback: every time the broker drops it, one entry."""
    drops: list[object] = []
    original = service.bus.client.on_disconnect

    def on_disconnect(client, userdata, flags, reason_code, properties):
        drops.append(reason_code)
        original(client, userdata, flags, reason_code, properties)

    service.bus.client.on_disconnect = on_disconnect
    return drops


@pytest.mark.parametrize("attacker_account,victim", [("staff", "emotion"), ("monitor", "illustrate")])
def test_no_account_can_take_over_a_running_service(kiosk, connect, raw, attacker_account, victim):
    topics = Topics(kiosk.kiosk_id)
    service = EmotionService(kiosk) if victim == "emotion" else IllustrateService(kiosk)
    drops = count_disconnects(service)
    seen = Recorder()  # the dashboard account reads status and emotions, and writes metrics (the marker)
    observer = connect("dashboard")
    observer.subscribe(topics.status(victim), seen)
    observer.subscribe(topics.emotion, seen)
    observer.subscribe(topics.metrics, seen)
    start_bus(observer)
    pictures = Recorder()
    start_bus(connect("web")).subscribe(topics.illustration, pictures)
    with running(service):
        assert wait_for(lambda: states(seen, topics, victim) == ["online"], 30)
        before = len(seen.payloads(topics.status(victim)))
        for client_id in (service.bus.client_id, victim):  # the id the service sends, and its account name
            intruder = raw(attacker_account, client_id=client_id)
            assert intruder.connect() == "Success"  # the account may connect, as itself
        marker = b'{"marker": "after the intrusion"}'
        observer.publish(topics.metrics, marker).wait_for_publish(5)
        assert wait_for(lambda: marker in seen.payloads(topics.metrics))
        # the broker would have sent the victim's last will before answering the intruder: nothing came
        assert len(seen.payloads(topics.status(victim))) == before, states(seen, topics, victim)
        # and the victim still answers, on the connection it had
        if victim == "emotion":
            face = sample_face_event("after-intrusion")
            start_bus(connect("camera")).publish(topics.face, face.to_json()).wait_for_publish(5)
            assert wait_for(lambda: any(b"after-intrusion" in p for p in seen.payloads(topics.emotion)), 20)
        else:
            told = story_for("after-intrusion")
            start_bus(connect("story")).publish(topics.story, told.to_json()).wait_for_publish(5)
            assert wait_for(lambda: pictures.payloads(), 20)
        assert drops == [], f"the {victim} service was dropped: {drops}"


def test_another_account_cannot_wipe_a_service_s_queued_events(kiosk, connect, raw):
    topics = Topics(kiosk.kiosk_id)
    seen = Recorder()
    start_bus(connect("dashboard")).subscribe(topics.status("illustrate"), seen)
    first = IllustrateService(kiosk)
    with running(first):
        assert wait_for(lambda: "online" in states(seen, topics, "illustrate"), 30)
    assert wait_for(lambda: states(seen, topics, "illustrate")[-1] == "stopped")
    told = story_for("queued-while-away")
    start_bus(connect("story")).publish(topics.story, told.to_json()).wait_for_publish(5)  # queued for it
    for client_id in (first.bus.client_id, "illustrate"):
        intruder = raw("monitor", client_id=client_id, clean_start=True)  # a clean start wipes a session
        assert intruder.connect() == "Success"
        intruder.close()
    pictures = Recorder()
    start_bus(connect("web")).subscribe(topics.illustration, pictures)
    with running(IllustrateService(kiosk)):
        assert wait_for(lambda: pictures.payloads(), 30), "the queued story was lost"
    assert parse_event("illustration", pictures.payloads()[0]).story_id == told.event_id


# -- finding 7: the face crop in the broker's store ----------------------------------------------------
def broker_files(mosquitto, log: Path) -> dict[Path, bytes]:
    """Everything the broker wrote: its directory (config, persistence) and its log."""
    folder = mosquitto.files.config.parent
    return {p: p.read_bytes() for p in [*folder.rglob("*"), log] if p.is_file()}


@pytest.mark.parametrize("consumer", ["paused", "gone"])
def test_a_face_is_never_written_to_the_broker_store(kiosk, connect, raw, mosquitto, tmp_path, consumer):
    topics = Topics(kiosk.kiosk_id)
    seen = Recorder()
    start_bus(connect("dashboard")).subscribe(topics.status("emotion"), seen)
    env = os.environ | {"KIOSK_CONFIG": str(write_settings(kiosk, tmp_path))}
    emotion = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "serve", "emotion"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: "online" in states(seen, topics, "emotion"), 60)
        # the positive control: a persistent session away, with an event queued for it
        away = connect("illustrate", persistent=True)
        away.subscribe(topics.story, Recorder())
        start_bus(away)
        away.stop()
        if consumer == "paused":
            emotion.send_signal(signal.SIGSTOP)  # slow, stuck or being debugged: connected, reads nothing
        else:
            emotion.send_signal(signal.SIGKILL)  # crashed or restarting
            assert wait_for(lambda: states(seen, topics, "emotion")[-1] == "offline")
        face = sample_face_event("never-on-disk")
        camera = raw("camera")
        assert camera.connect() == "Success"
        camera.publish(topics.face, face.to_json())
        queued = story_for("queued-control")
        teller = raw("story")
        assert teller.connect() == "Success"
        assert teller.publish(topics.story, queued.to_json()) == "Success"

        mosquitto.stop()  # SIGTERM: the broker writes everything it holds to mosquitto.db, then exits
        written = broker_files(mosquitto, tmp_path / "mq.log")
        assert any(queued.event_id.encode() in data for data in written.values()), "the control was not stored"
        crop = face.crop_jpeg_b64.encode()
        for path, data in written.items():
            for secret in (crop[:48], crop[-48:], base64.b64decode(crop)[-64:], face.event_id.encode()):
                assert secret not in data, f"the face crop is in {path.name}"
    finally:
        emotion.send_signal(signal.SIGCONT)
        emotion.kill()
        emotion.wait()


def test_a_face_sent_while_the_emotion_service_is_away_still_becomes_an_emotion(kiosk, connect):
    """No loss for the face either: the camera sends it again while the broker reports no reader."""
    topics = Topics(kiosk.kiosk_id)
    seen = Recorder()
    observer = connect("dashboard")
    observer.subscribe(topics.status("emotion"), seen)
    observer.subscribe(topics.emotion, seen)
    start_bus(observer)
    with running(EmotionService(kiosk)):
        assert wait_for(lambda: "online" in states(seen, topics, "emotion"), 30)
    camera = CameraService(kiosk)  # not started: only its bus and its publish path, as the camera sends
    camera.bus.start()
    try:
        assert camera.bus.wait_connected(10)
        face = sample_face_event("while-away")
        camera.publish(face)
        with running(EmotionService(kiosk)):
            assert wait_for(lambda: seen.payloads(topics.emotion), 30), "the face was lost"
        assert parse_event("emotion", seen.payloads(topics.emotion)[0]).causation_id == face.event_id
    finally:
        camera.bus.stop()
