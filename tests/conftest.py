"""Shared fixtures: a real Mosquitto broker from the project's config, settings that point at it."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

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


class RawClient:
    """A plain paho client, as an attacker or a third-party dashboard uses one (not the kiosk's ``Bus``).

    Every answer the broker gives is recorded and waited for: CONNACK, SUBACK and PUBACK reason codes, and
    each message with its retain flag, in arrival order. No automatic reconnection: a client that is dropped
    stays dropped, so a test sees it.
    """

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        client_id: str | None = None,
        clean_start: bool = True,
        session_expiry_s: int = 0,
        ca_file: Path | None = None,
    ) -> None:
        self.port, self.clean_start, self.session_expiry_s = port, clean_start, session_expiry_s
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"raw-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        if user:
            self.client.username_pw_set(user, password)
        if ca_file:
            self.client.tls_set(ca_certs=str(ca_file))
        self.answered = threading.Condition()
        self.connack: str | None = None
        self.disconnects: list[str] = []
        self.subacks: dict[int, list[str]] = {}
        self.pubacks: dict[int, str] = {}
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def _note(self, update: Callable[[], None]) -> None:
        with self.answered:
            update()
            self.answered.notify_all()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._note(lambda: setattr(self, "connack", str(reason_code)))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._note(lambda: self.disconnects.append(str(reason_code)))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._note(lambda: self.subacks.__setitem__(mid, [str(code) for code in reason_codes]))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._note(lambda: self.pubacks.__setitem__(mid, str(reason_code)))

    def _on_message(self, client, userdata, message) -> None:
        self._note(lambda: self.messages.append((message.topic, bytes(message.payload), bool(message.retain))))

    def _wait(self, answered: Callable[[], object], timeout: float):
        with self.answered:
            self.answered.wait_for(answered, timeout)
            return answered()

    def connect(self, timeout: float = 10.0) -> str:
        """The broker's answer: a CONNACK reason ("Success", "Not authorized"...) or how the connection failed."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        try:
            self.client.connect(
                "127.0.0.1", self.port, keepalive=15, clean_start=self.clean_start, properties=properties
            )
        except (OSError, ssl.SSLError) as exc:
            return f"connection failed: {type(exc).__name__}"
        self.client.loop_start()
        answer = self._wait(lambda: self.connack or (self.disconnects and f"dropped: {self.disconnects[0]}"), timeout)
        return answer or "no answer"

    def subscribe(
        self, topic: str, qos: int = 1, retain_as_published: bool = False, timeout: float = 10.0
    ) -> list[str]:
        """Subscribe and wait for the SUBACK; its reason codes."""
        options = SubscribeOptions(qos=qos, retainAsPublished=retain_as_published)
        _, mid = self.client.subscribe(topic, options=options)
        return self._wait(lambda: self.subacks.get(mid), timeout) or ["no SUBACK"]

    def publish(self, topic: str, payload: bytes, retain: bool = False, timeout: float = 10.0) -> str:
        """Publish at QoS 1 and wait for the PUBACK; its reason ("Success", "Not authorized", ...)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return self._wait(lambda: self.pubacks.get(info.mid), timeout) or "no PUBACK"

    def received(self, topic: str | None = None) -> list[tuple[str, bytes, bool]]:
        with self.answered:
            return [m for m in self.messages if topic is None or m[0] == topic]

    def wait_message(self, found: Callable[[tuple[str, bytes, bool]], bool], timeout: float = 10.0) -> bool:
        return bool(self._wait(lambda: any(found(m) for m in self.messages), timeout))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def raw(settings: Settings) -> Iterator[Callable[..., RawClient]]:
    """A plain paho client logged in as ``user`` (password from the test's secrets unless given)."""
    clients: list[RawClient] = []

    def make(user: str | None, password: str | None = None, **options) -> RawClient:
        if user and password is None:
            password = settings.broker_password(user)
        client = RawClient(settings.broker.port, user, password, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def start_bus(bus: Bus, settle: float = 0.0) -> Bus:
    """Connect and wait until the broker acknowledged every subscription made before (SUBACK)."""
    bus.start()
    assert bus.wait_subscribed(10), f"{bus.client_id} could not connect or subscribe: {list(bus.refusals)}"
    if settle:
        time.sleep(settle)
    return bus
