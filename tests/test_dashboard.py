"""Staff monitoring over MQTT: summary, metrics, Home Assistant discovery, pause and reload commands."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from kiosk.bus import Bus
from kiosk.camera.service import CameraService
from kiosk.config import DashboardConfig, Settings
from kiosk.dashboard.service import DashboardService
from kiosk.emotion.service import EmotionService
from kiosk.events import (
    SERVICES,
    Attributes,
    Command,
    EmotionEvent,
    ErrorEvent,
    HeroLook,
    IllustrationEvent,
    KioskSummary,
    PresenceEvent,
    Scene,
    ServiceMetrics,
    StatusPayload,
    StoryEvent,
    Topics,
)
from tests.conftest import Recorder, start_bus, wait_for
from tests.servicekit import running
from tests.test_pipeline import sample_face_event

pytestmark = pytest.mark.integration

SECRET_COLOUR = "purple"  # an attribute value staff must never see


@pytest.fixture
def kiosk(settings: Settings) -> Settings:
    from kiosk.broker import free_port

    return settings.model_copy(update={"metrics_interval_s": 0.5, "dashboard": DashboardConfig(port=free_port())})


def latest_summary(recorder: Recorder, topics: Topics) -> KioskSummary | None:
    payloads = recorder.payloads(topics.summary)
    return KioskSummary.model_validate_json(payloads[-1]) if payloads else None


def watch_as_staff(connect, kiosk_id: str) -> Recorder:
    """Everything under the kiosk that the staff account receives."""
    seen = Recorder()
    staff = connect("staff")
    staff.subscribe(f"kiosk/{kiosk_id}/#", seen)
    start_bus(staff)
    return seen


def publish_visit(connect, topics: Topics) -> dict[str, bytes]:
    """One visit's events, each from the account that really sends it; returns the image payloads."""
    camera, emotion, story, illustrate = (
        start_bus(connect(u), settle=0) for u in ("camera", "emotion", "story", "illustrate")
    )
    face = sample_face_event("visit-staff")
    camera.publish(topics.presence, PresenceEvent(session_id="visit-staff", state="arrived").to_json())
    camera.publish(topics.face, face.to_json())
    status = StatusPayload(
        state="online", service="emotion", detail={"model": "kiosk-compact-cnn@1.0.0", "runtime": "onnxruntime-cpu"}
    )
    emotion.publish(topics.status("emotion"), status.model_dump_json().encode(), retain=True)
    attributes = Attributes(age_group="young child", clothing_colour=SECRET_COLOUR, glasses=True)  # as forwarded
    feeling = EmotionEvent(
        session_id="visit-staff", emotion="sad", detected="sad", confidence=0.8,
        probabilities={"sad": 0.8, "neutral": 0.2}, runtime="onnxruntime-cpu", model="kiosk-compact-cnn@1.0.0",
        latency_ms=1.2, attributes=attributes,
    )  # fmt: skip
    emotion.publish(topics.emotion, feeling.to_json())
    scene = Scene(text="Milo felt sad.", illustration_prompt="a child", setting="park", objects=[], mood="sad")
    told = StoryEvent(
        session_id="visit-staff", causation_id=feeling.event_id, emotion="sad", title="The Lost Balloon",
        scenes=[scene], hero=HeroLook(description=f"a child in {SECRET_COLOUR}", clothing_colour=SECRET_COLOUR),
        generator="template", fallback=True, latency_ms=300,
    )  # fmt: skip
    story.publish(topics.story, told.to_json())
    picture = IllustrationEvent(
        session_id="visit-staff", story_id=told.event_id, scene_index=0, scene_count=1, media_type="image/png",
        image_b64="iVBORw0KGgo" + "A" * 64, illustrator="storybook (offline)", latency_ms=1,
    )  # fmt: skip
    illustrate.publish(topics.illustration, picture.to_json())
    return {"crop": face.crop_jpeg_b64.encode()[:64], "picture": picture.image_b64.encode()[:64]}


def test_staff_see_the_summary_and_events_but_no_image_or_child_attribute(kiosk, connect):
    topics = Topics(kiosk.kiosk_id)
    staff_view = watch_as_staff(connect, kiosk.kiosk_id)
    with running(DashboardService(kiosk)) as dashboard:
        images = publish_visit(connect, topics)

        def summarised() -> bool:
            summary = latest_summary(staff_view, topics)
            return summary is not None and summary.stories_today == 1 and summary.last_emotion == "sad"

        assert wait_for(summarised, timeout=15)
        summary = latest_summary(staff_view, topics)
        assert summary.child_present and summary.emotions_today == {"sad": 1}
        assert summary.fallback_stories_today == 1
        assert summary.models["emotion"].version == "1.0.0" and summary.models["emotion"].runtime == "onnxruntime-cpu"
        assert "emotion_to_story_p50" in summary.latency_ms
        feed = json.dumps(dashboard.feed.recent)
        assert "The Lost Balloon" in feed

    everything = b"".join(staff_view.payloads()) + feed.encode()
    assert topics.face not in staff_view.topics() and topics.illustration not in staff_view.topics()
    for secret in (images["crop"], images["picture"], b"female"):
        assert secret not in everything, f"staff could see {secret[:20]!r}"
    # what the dashboard itself says (summary, staff page feed) holds no estimate about the child at all
    dashboard_says = b"".join(staff_view.payloads(topics.summary)) + feed.encode()
    for estimate in (SECRET_COLOUR.encode(), b"young child", b"glasses"):
        assert estimate not in dashboard_says
    # the summary is retained: a dashboard that connects later gets it at once
    late = Recorder()
    start_bus(connect("staff")).subscribe(topics.summary, late)
    assert wait_for(lambda: late.payloads())


def test_home_assistant_discovery_is_retained_and_sent_again_when_it_restarts(kiosk, connect):
    configs = Recorder()
    staff = connect("staff")
    staff.subscribe("homeassistant/#", configs)
    start_bus(staff)
    with running(DashboardService(kiosk)):
        assert wait_for(lambda: len(configs.payloads()) >= 7)
        first = [
            json.loads(p) for t, p in zip(configs.topics(), configs.payloads(), strict=True) if t.endswith("/config")
        ]
        kinds = sorted(t.split("/")[1] for t in configs.topics() if t.endswith("/config"))
        assert kinds == ["binary_sensor", "button", "sensor", "sensor", "sensor", "switch", "update"]
        assert len({c["unique_id"] for c in first}) == 7
        for config in first:
            assert config["device"]["identifiers"] == [f"emotionai_{kiosk.kiosk_id}"]
            if "command_topic" in config:
                assert config["command_topic"].endswith("/set") and config["retain"] is False
        staff.publish("homeassistant/status", b"online", retain=False)
        assert wait_for(lambda: len([t for t in configs.topics() if t.endswith("/config")]) >= 14)
        updates = Recorder()
        start_bus(connect("staff")).subscribe(Topics(kiosk.kiosk_id).update("emotion"), updates)
        start_bus(connect("emotion"), settle=0).publish(
            Topics(kiosk.kiosk_id).status("emotion"),
            StatusPayload(state="online", service="emotion", detail={"model": "m@2.0"}).model_dump_json().encode(),
            retain=True,
        )
        assert wait_for(lambda: updates.payloads())
        assert json.loads(updates.payloads()[-1])["installed_version"] == "2.0"


def test_home_assistant_switch_pauses_and_resumes_the_camera(kiosk, connect):
    topics = Topics(kiosk.kiosk_id)
    kiosk.run_dir.mkdir(parents=True, exist_ok=True)
    (kiosk.run_dir / "camera-paused").touch()  # paused before a restart: stays paused
    seen = Recorder()
    monitor = connect("monitor")
    monitor.subscribe(f"kiosk/{kiosk.kiosk_id}/#", seen)
    start_bus(monitor)
    from kiosk.dashboard.discovery import discovery_messages

    switch = next(json.loads(p) for t, p in discovery_messages(topics) if "/switch/" in t)
    staff = start_bus(connect("staff"), settle=0)

    def camera_paused() -> bool | None:
        states = [StatusPayload.model_validate_json(p) for p in seen.payloads(topics.status("camera"))]
        return states[-1].detail.get("paused") if states else None

    with running(CameraService(kiosk)) as camera:
        assert wait_for(lambda: camera_paused() is True)
        time.sleep(1.0)
        assert topics.presence not in seen.topics(), "a paused kiosk started a visit"
        staff.publish(switch["command_topic"], switch["payload_off"].encode())
        assert wait_for(lambda: camera_paused() is False)
        assert wait_for(lambda: topics.face in seen.topics() or topics.presence in seen.topics(), timeout=10)
        staff.publish(switch["command_topic"], switch["payload_on"].encode())
        assert wait_for(lambda: camera_paused() is True)
        assert camera.paused and (kiosk.run_dir / "camera-paused").exists()
        staff.publish(switch["command_topic"], b'{"value": "MAYBE"}')
        assert wait_for(lambda: any(b"pause expects ON or OFF" in p for p in seen.payloads(topics.error)))


def test_a_retained_command_is_never_obeyed(kiosk, connect):
    topics = Topics(kiosk.kiosk_id)
    raw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    raw.username_pw_set("staff", kiosk.broker_password("staff"))
    raw.connect("127.0.0.1", kiosk.broker.port)
    raw.loop_start()
    raw.publish(topics.command("pause"), Command(value="ON").model_dump_json(), qos=1, retain=True).wait_for_publish(5)
    errors = Recorder()
    start_bus(connect("monitor")).subscribe(topics.error, errors)
    try:
        with running(CameraService(kiosk)) as camera:
            assert wait_for(lambda: any(b"retained commands are refused" in p for p in errors.payloads()))
            assert not camera.paused
    finally:
        raw.publish(topics.command("pause"), b"", qos=1, retain=True).wait_for_publish(5)  # clear it
        raw.loop_stop()
        raw.disconnect()


def test_every_service_publishes_metrics_the_summary_uses(kiosk, connect):
    topics = Topics(kiosk.kiosk_id)
    seen = watch_as_staff(connect, kiosk.kiosk_id)
    with running(DashboardService(kiosk)) as dashboard, running(CameraService(kiosk)), running(EmotionService(kiosk)):

        def reporting() -> set[str]:
            return {ServiceMetrics.model_validate_json(p).service for p in seen.payloads(topics.metrics)}

        assert wait_for(lambda: reporting() >= {"camera", "emotion", "dashboard"}, timeout=15)
        assert wait_for(lambda: (s := latest_summary(seen, topics)) is not None and s.fps, timeout=15)
        health = dashboard.view.health()
        assert health["emotion"]["state"] == "online" and health["emotion"]["rss_mib"] > 10
        camera_metrics = [
            m for m in map(ServiceMetrics.model_validate_json, seen.payloads(topics.metrics)) if m.service == "camera"
        ]
        assert camera_metrics[-1].stage["fps"] > 0


def test_services_tell_systemd_they_are_ready_and_ping_the_watchdog_only_while_alive(kiosk, tmp_path, monkeypatch):
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "600000")  # ping every 0.3 s

    def received(seconds: float) -> list[str]:
        messages, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                messages.append(listener.recv(1024).decode())
        return messages

    service = EmotionService(kiosk)
    try:
        with running(service):
            first = received(1.5)
            assert any(m.startswith("READY=1") for m in first)
            assert sum(m == "WATCHDOG=1" for m in first) >= 2
            service.bus.busy_since = time.monotonic() - 600  # a handler stuck for ten minutes
            received(0.4)
            assert "WATCHDOG=1" not in received(1.5), "a stuck service still pinged the watchdog"
            service.bus.busy_since = None
            assert "WATCHDOG=1" in received(1.5)
        assert "STOPPING=1" in received(0.5)
    finally:
        listener.close()


def test_a_dashboard_bus_client_over_the_staff_account_cannot_publish_status_for_a_service(kiosk, connect):
    """Staff may send commands, never impersonate a service."""
    topics = Topics(kiosk.kiosk_id)
    seen = Recorder()
    start_bus(connect("monitor")).subscribe(topics.status("emotion"), seen)
    fake = StatusPayload(state="offline", service="emotion").model_dump_json().encode()
    staff: Bus = start_bus(connect("staff"), settle=0)
    staff.publish(topics.status("emotion"), fake).wait_for_publish(5)
    time.sleep(0.5)
    assert fake not in seen.payloads()


def test_the_gender_estimate_never_leaves_the_face_topic(kiosk, connect):
    topics = Topics(kiosk.kiosk_id)
    seen = Recorder()
    start_bus(connect("staff")).subscribe(topics.emotion, seen)
    face = sample_face_event("visit-gender").model_copy(
        update={"attributes": Attributes(age_group="young child", gender="female", glasses=True)}
    )
    with running(EmotionService(kiosk)) as emotion:
        assert emotion.bus.wait_subscribed(10)  # faces go at QoS 0: one sent before the SUBACK is gone
        start_bus(connect("camera"), settle=0).publish(topics.face, face.to_json())
        assert wait_for(lambda: seen.payloads())
    forwarded = EmotionEvent.model_validate_json(seen.payloads()[-1]).attributes
    assert forwarded.gender is None and forwarded.age_group == "young child" and forwarded.glasses is True


def dead_letters(recorder: Recorder, topics: Topics, about: str) -> list[ErrorEvent]:
    """The dashboard's error events about messages on ``about`` (a topic under the kiosk)."""
    errors = []
    for payload in recorder.payloads(topics.error):
        with contextlib.suppress(ValueError):  # the attacks themselves, when they were sent on `error`
            errors.append(ErrorEvent.model_validate_json(payload))
    return [e for e in errors if e.service == "dashboard" and e.topic == f"{topics.base}/{about}"]


def test_a_service_account_cannot_add_services_to_the_summary_or_grow_it(kiosk, connect):
    """As a compromised emotion service: its status names other services, markup and a 1 MB name."""
    topics = Topics(kiosk.kiosk_id)
    staff_view = watch_as_staff(connect, kiosk.kiosk_id)
    with running(DashboardService(kiosk)) as dashboard:
        assert dashboard.bus.wait_subscribed(10)
        emotion = start_bus(connect("emotion"), settle=0)
        spoofs = [
            {"state": "online", "service": "<script>x</script>"},
            {"state": "online", "service": "x" * 999_600},
            {"state": "online", "service": "story", "detail": {"model": "fake@6.6.6"}},  # another real service
            {"state": "online", "service": "emotion", "detail": {f"k{i}": "v" * 300 for i in range(5000)}},
        ]
        for spoof in spoofs:
            emotion.publish(topics.status("emotion"), json.dumps(spoof).encode(), retain=True).wait_for_publish(5)
        marker = StatusPayload(state="online", service="emotion", detail={"model": "kiosk-compact-cnn@9.9.9"})
        emotion.publish(topics.status("emotion"), marker.model_dump_json().encode(), retain=True).wait_for_publish(5)

        def marker_summarised() -> bool:  # the same publisher, the same topic: the spoofs were handled before it
            summary = latest_summary(staff_view, topics)
            return summary is not None and summary.models["emotion"].version == "9.9.9"

        assert wait_for(marker_summarised, timeout=15)
        assert wait_for(lambda: len(dead_letters(staff_view, topics, "status/emotion")) == len(spoofs))
    for payload in staff_view.payloads(topics.summary):
        summary = json.loads(payload)
        assert set(summary["services"]) <= set(SERVICES), summary["services"]
        assert summary["services"]["story"] == "unknown" and summary["models"]["story"]["version"] is None
        assert len(payload) < 2048
    for letter in dead_letters(staff_view, topics, "status/emotion"):
        assert len(letter.reason) <= 500 and "<script>" not in letter.reason and "x" * 100 not in letter.reason


def test_hostile_payloads_on_the_dashboards_topics_become_dead_letters_and_counts_stay_right(kiosk, connect):
    """A list on models/deploy, deep nesting on error, impossible timestamps on emotion: each one refused with
    a reason on `error`; the dashboard keeps counting the valid emotion sent after them."""
    topics = Topics(kiosk.kiosk_id)
    staff_view = watch_as_staff(connect, kiosk.kiosk_id)

    def emotion_at(ts) -> bytes:
        feeling = EmotionEvent(
            session_id="visit-ts", emotion="sad", detected="sad", confidence=0.9, probabilities={"sad": 0.9},
            runtime="onnxruntime-cpu", model="kiosk-compact-cnn@1.1.0", latency_ms=2,
        )  # fmt: skip
        return json.dumps(json.loads(feeling.to_json()) | {"ts": ts}).encode()

    attacks = {
        "models/deploy": ("deploy", [b"[1, 2, 3]", b'{"ok": true, "action": "installed", "seconds": 1e400}']),
        "error": ("emotion", [b"[" * 5000 + b"]" * 5000, b"[" * 100_000 + b"]" * 100_000, b'{"s": {"a": ' * 900]),
        "emotion": ("emotion", [emotion_at(1e20), emotion_at(-5), b'{"ts": NaN}', emotion_at(time.time() + 86400)]),
    }
    with running(DashboardService(kiosk)) as dashboard:
        assert dashboard.bus.wait_subscribed(10)
        attackers = {account: start_bus(connect(account)) for account in ("deploy", "emotion")}  # one per account
        for suffix, (account, payloads) in attacks.items():
            for payload in payloads:
                attackers[account].publish(f"{topics.base}/{suffix}", payload).wait_for_publish(5)
        control = EmotionEvent(
            session_id="visit-ok", emotion="happy", detected="happy", confidence=0.9, probabilities={"happy": 0.9},
            runtime="onnxruntime-cpu", model="kiosk-compact-cnn@1.1.0", latency_ms=2,
        )  # fmt: skip
        attackers["emotion"].publish(topics.emotion, control.to_json()).wait_for_publish(5)

        def counted() -> bool:
            summary = latest_summary(staff_view, topics)
            return summary is not None and summary.emotions_today == {"happy": 1}

        assert wait_for(counted, timeout=15), latest_summary(staff_view, topics)
        expected = {suffix: len(payloads) for suffix, (_, payloads) in attacks.items()}
        for suffix, count in expected.items():
            assert wait_for(lambda s=suffix, n=count: len(dead_letters(staff_view, topics, s)) == n), suffix
        assert dashboard.bus.connected.is_set() and not dashboard.bus.handler_stuck(5)
    reasons = [letter.reason for suffix in attacks for letter in dead_letters(staff_view, topics, suffix)]
    assert all(0 < len(reason) <= 500 for reason in reasons), reasons
    assert any("recursion limit" in reason for reason in reasons), reasons
    assert sum("ts:" in reason or "timestamp" in reason for reason in reasons) == 4, reasons
    assert latest_summary(staff_view, topics).last_emotion == "happy"
