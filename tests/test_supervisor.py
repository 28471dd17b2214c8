"""`kiosk run` never leaves a broker or a service behind (on SIGTERM, even mid-start, or its own death), and
never stays down after its broker crashed."""

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kiosk import broker
from kiosk.bus import Bus
from kiosk.config import BrokerConfig, Settings, WebConfig
from kiosk.events import PresenceEvent, Topics
from kiosk.service import broker_address
from kiosk.supervisor import HEAP_ENV, Supervisor
from tests.conftest import Recorder, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_kiosk(tmp_path):
    env = os.environ | {
        "KIOSK_RUN_DIR": str(tmp_path / "run"),
        "KIOSK_BROKER__PORT": str(broker.free_port()),
        "KIOSK_BROKER__SECRETS_DIR": str(tmp_path / "secrets"),
        "KIOSK_WEB__PORT": str(broker.free_port()),
        "KIOSK_DASHBOARD__PORT": str(broker.free_port()),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--source", "sample"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("after_children", [2, 6], ids=["mid-start", "running"])
def test_sigterm_stops_everything(tmp_path, after_children):
    kiosk = start_kiosk(tmp_path)
    assert wait_for(lambda: len(children_of(kiosk.pid)) >= after_children, timeout=30)
    children = children_of(kiosk.pid)
    kiosk.send_signal(signal.SIGTERM)
    assert kiosk.wait(timeout=30) == 0
    assert wait_for(lambda: not any(alive(pid) for pid in children), timeout=15)


def test_children_die_with_a_killed_supervisor(tmp_path):
    kiosk = start_kiosk(tmp_path)
    assert wait_for(lambda: len(children_of(kiosk.pid)) >= 7, timeout=30)  # broker + six services
    children = children_of(kiosk.pid)
    services = [pid for pid in children if b"kiosk\x00serve" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert services
    for pid in services:  # every service runs with the bounded glibc heap (see HEAP_ENV)
        environ = dict(
            line.split(b"=", 1) for line in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in line
        )
        assert {k: environ.get(k.encode(), b"").decode() for k in HEAP_ENV} == HEAP_ENV
    kiosk.kill()
    kiosk.wait()
    assert wait_for(lambda: not any(alive(pid) for pid in children), timeout=15)


def test_kiosk_run_restarts_its_broker_and_no_event_is_lost(tmp_path):
    """A broker crash (SIGKILL) in a development kiosk: the supervisor starts it again from its persistence."""
    settings = Settings(
        kiosk_id="crash",
        run_dir=tmp_path / "run",
        broker=BrokerConfig(port=broker.free_port(), secrets_dir=tmp_path / "secrets"),
        web=WebConfig(port=broker.free_port()),
    )
    supervisor = Supervisor(settings, ["web"])  # its own broker, as `kiosk run` has
    supervisor.start(startup_timeout=60)
    watching = threading.Thread(target=supervisor.watch, daemon=True)
    watching.start()
    topics = Topics(settings.kiosk_id)
    received = Recorder()
    subscriber = Bus(broker_address(settings, "monitor"), "test-monitor", persistent=True)
    publisher = Bus(broker_address(settings, "camera"), "test-camera", persistent=False)
    try:
        subscriber.subscribe(topics.presence, received)
        subscriber.subscribe(topics.status("web"), received)
        subscriber.start()
        publisher.start()
        assert subscriber.wait_subscribed(10) and publisher.wait_connected(10)
        publisher.publish(topics.presence, PresenceEvent(session_id="before", state="arrived").to_json())
        assert wait_for(lambda: received.payloads(topics.presence))
        database = supervisor.mosquitto.files.data_dir / "mosquitto.db"
        saved_before = database.stat().st_mtime_ns if database.exists() else 0
        os.kill(supervisor.mosquitto.process.pid, signal.SIGUSR1)  # the sessions are on disk, as autosave would do
        assert wait_for(lambda: database.exists() and database.stat().st_mtime_ns != saved_before)

        crashed = supervisor.mosquitto.process.pid
        web_statuses = len(received.payloads(topics.status("web")))
        os.kill(crashed, signal.SIGKILL)
        assert wait_for(lambda: not publisher.connected.is_set())
        meanwhile = [PresenceEvent(session_id=f"during-{i}", state="left") for i in range(10)]
        for event in meanwhile:
            publisher.publish(topics.presence, event.to_json())  # kept in the outbox

        assert wait_for(
            lambda: supervisor.mosquitto.process.pid != crashed and broker.port_open(settings.broker.port), 20
        )
        assert wait_for(lambda: len(received.payloads(topics.presence)) >= 11, timeout=40)
        ids = [json.loads(p)["event_id"] for p in received.payloads(topics.presence)]
        assert ids[1:] == [e.event_id for e in meanwhile]  # every one, in order, once
        # the web service found the new broker by itself and said so
        assert wait_for(lambda: len(received.payloads(topics.status("web"))) > web_statuses, 30)
        assert b'"online"' in received.payloads(topics.status("web"))[-1]
        assert supervisor.broker_restarts == 1
    finally:
        publisher.stop()
        subscriber.stop()
        supervisor.stop()
        watching.join(5)
