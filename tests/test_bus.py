"""The MQTT wrapper against a real Mosquitto running the project's config."""

import json
import os
import signal
import subprocess
import sys

import pytest

from kiosk.events import PresenceEvent, StatusPayload, Topics
from kiosk.supervisor import write_settings
from tests.conftest import Recorder, start_bus, wait_for

pytestmark = pytest.mark.integration
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def test_nothing_published_while_the_broker_is_away_is_lost(settings, connect, mosquitto):
    topics = Topics(settings.kiosk_id)
    received = Recorder()
    subscriber = connect("web", persistent=True, client_id=f"test-web-{settings.kiosk_id}")
    subscriber.subscribe(topics.presence, received)
    start_bus(subscriber)
    publisher = start_bus(connect("camera"))
    before = PresenceEvent(session_id="s", state="arrived")
    publisher.publish(topics.presence, before.to_json())
    assert wait_for(lambda: len(received.payloads()) == 1)

    mosquitto.stop()  # a broker restart (systemctl restart sends SIGTERM)
    assert wait_for(lambda: not publisher.connected.is_set())
    meanwhile = [PresenceEvent(session_id=f"s{i}", state="left") for i in range(25)]
    for event in meanwhile:
        assert publisher.publish(topics.presence, event.to_json()) is None  # kept in the outbox
    assert publisher.outbox_size == 25
    mosquitto.start()

    assert wait_for(lambda: len(received.payloads()) >= 26, timeout=30), len(received.payloads())
    ids = [json.loads(p)["event_id"] for p in received.payloads()]
    assert ids[1:] == [e.event_id for e in meanwhile]  # all of them, in order
    assert publisher.outbox_size == 0


def test_a_subscriber_away_gets_its_events_on_return(settings, connect):
    """Persistent sessions: the broker queues QoS 1 events for a service that is briefly gone."""
    topics = Topics(settings.kiosk_id)
    client_id = f"test-story-{settings.kiosk_id}"
    first = connect("web", persistent=True, client_id=client_id)
    first.subscribe(topics.presence, Recorder())
    start_bus(first)
    first.stop()
    publisher = start_bus(connect("camera"))
    sent = [PresenceEvent(session_id="s", state="arrived") for _ in range(5)]
    infos = [publisher.publish(topics.presence, e.to_json()) for e in sent]
    for info in infos:
        info.wait_for_publish(5)
    received = Recorder()
    again = connect("web", persistent=True, client_id=client_id)
    again.subscribe(topics.presence, received)
    start_bus(again, settle=0)
    assert wait_for(lambda: len(received.payloads()) == 5)


def test_status_is_retained_online_stopped_and_offline_by_last_will(settings, connect, tmp_path):
    topics = Topics(settings.kiosk_id)
    statuses = Recorder()
    watcher = connect("monitor")
    watcher.subscribe(topics.status("+"), statuses)
    start_bus(watcher)

    def last_state():
        payloads = statuses.payloads(topics.status("illustrate"))
        return StatusPayload.model_validate_json(payloads[-1]).state if payloads else None

    env = os.environ | {"KIOSK_CONFIG": str(write_settings(settings, tmp_path))}
    service = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "serve", "illustrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: last_state() == "online", timeout=20)
        service.send_signal(signal.SIGKILL)  # a crash: the broker publishes the last will
        assert wait_for(lambda: last_state() == "offline", timeout=20)
    finally:
        service.kill()
        service.wait()
    service = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "serve", "illustrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: last_state() == "online", timeout=20)
        service.send_signal(signal.SIGTERM)  # a clean stop
        assert service.wait(timeout=20) == 0
        assert wait_for(lambda: last_state() == "stopped")
    finally:
        service.kill()

    late = Recorder()  # a dashboard that connects later still sees the last status
    newcomer = connect("staff")
    newcomer.subscribe(topics.status("illustrate"), late)
    start_bus(newcomer)
    assert wait_for(lambda: late.payloads() and b'"stopped"' in late.payloads()[-1])


def test_commands_and_faces_are_never_retained(settings, connect):
    topics = Topics(settings.kiosk_id)
    bus = start_bus(connect("staff"))
    with pytest.raises(ValueError, match="never retained"):
        bus.publish(topics.command("pause"), b"{}", retain=True)
    with pytest.raises(ValueError, match="never retained"):
        bus.publish(topics.face, b"{}", retain=True)
    bus.publish(topics.command("pause"), b"", retain=True).wait_for_publish(5)  # deleting a stored one is fine


def test_supervisor_restarts_a_crashed_service(settings):
    import threading

    from kiosk.supervisor import Supervisor

    supervisor = Supervisor(settings, ["illustrate"], own_broker=False)
    supervisor.start(startup_timeout=30)
    watcher = threading.Thread(target=supervisor.watch, daemon=True)
    watcher.start()
    try:
        first_pid = supervisor.pids()["illustrate"]
        os.kill(first_pid, signal.SIGKILL)
        assert wait_for(lambda: supervisor.pids().get("illustrate", first_pid) != first_pid, timeout=15)
        assert supervisor.watcher.wait_online(["illustrate"], timeout=20) == []
    finally:
        supervisor.stop()
        watcher.join(5)


def test_a_held_message_is_sent_again_until_confirmed_and_given_up_after_its_time(settings, connect):
    """What the face relies on: the broker keeps no copy of it for a reader that is away."""
    topics = Topics(settings.kiosk_id)
    camera = start_bus(connect("camera"))
    camera.publish_held("face-1", topics.face, b'{"n": 1}', hold_s=30)
    camera.publish_held("nobody", topics.presence, b'{"n": 2}', hold_s=1.0)  # never confirmed
    assert wait_for(lambda: camera.unconfirmed_dropped == 1, timeout=10)
    received = Recorder()
    emotion = connect("emotion")
    emotion.subscribe(topics.face, received, qos=0)
    start_bus(emotion)
    assert wait_for(lambda: received.payloads(), timeout=10)  # sent again after the reader came
    camera.confirm("face-1")
    assert camera.held == 0 and set(received.payloads()) == {b'{"n": 1}'}
