"""Shared fixtures: a real Mosquitto broker from the project's config, settings that point at it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk import broker
from kiosk.bus import Bus
from kiosk.config import BrokerConfig, CameraConfig, Settings, WebConfig
from kiosk.service import broker_address

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FER_DIR = SHARED / "data" / "fer2013"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[broker.MosquittoProcess]:
    """A running Mosquitto with the project's broker/ config on a free loopback port."""
    files = broker.render(tmp_path / "run", broker.free_port(), tmp_path / "secrets", log_file=tmp_path / "mq.log")
    process = broker.MosquittoProcess(files)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def settings(tmp_path: Path, mosquitto: broker.MosquittoProcess) -> Settings:
    return Settings(
        kiosk_id=f"t{uuid.uuid4().hex[:8]}",
        run_dir=tmp_path / "run",
        broker=BrokerConfig(port=mosquitto.files.port, secrets_dir=tmp_path / "secrets"),
        camera=CameraConfig(source="sample", steady_frames=3, cooldown_s=0),
        web=WebConfig(port=broker.free_port(), grace_s=2),
    )


class Recorder:
    """Collects messages on a topic filter, thread-safe."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()

    def __call__(self, message) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def topics(self) -> list[str]:
        with self.lock:
            return [t for t, _ in self.messages]

    def payloads(self, topic: str | None = None) -> list[bytes]:
        """Payloads on exactly ``topic`` (all when None), in arrival order."""
        with self.lock:
            return [p for t, p in self.messages if topic is None or t == topic]


@pytest.fixture
def connect(settings: Settings) -> Iterator[Callable[..., Bus]]:
    """Connect a bus client as one of the broker accounts; disconnected at teardown."""
    buses: list[Bus] = []

    def make(user: str, persistent: bool = False, client_id: str | None = None) -> Bus:
        bus = Bus(
            broker_address(settings, user), client_id or f"test-{user}-{uuid.uuid4().hex[:6]}", persistent=persistent
        )
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.stop()


def start_bus(bus: Bus, settle: float = 0.3) -> Bus:
    bus.start()
    assert bus.wait_connected(10), f"{bus.client_id} could not connect"
    time.sleep(settle)  # let SUBACKs arrive
    return bus
