"""The base every kiosk service stands on: connect, subscribe, handle, publish, health, graceful stop.

A service declares which event kinds it listens to and implements ``handle``, which yields the events it
answers with (one by one, so a storyteller can stream). The base validates each payload, sends a bad one to
``error`` with the reason and keeps running, skips an event it has already handled (idempotent by
``event_id``), and reports ``online``/``stopped`` on its retained status topic.

It also answers the staff commands a service declares (``pause``, ``reload-models``), publishes its
``metrics`` every ``metrics_interval_s``, and under systemd says ``READY=1`` and pings the watchdog only while
its handler and main loop are making progress, so a hung service is restarted.

Commands are never obeyed from the broker's store. Command subscriptions keep the retain flag as published
(MQTT v5 "retain as published"), so a command sent with retain set is refused live as well as when it is
replayed at start-up; the account that may send commands (``dashboard``) also watches for stored commands
and deletes each one at once with an empty retained message. Mosquitto 2.0 cannot refuse a retained publish
by ACL, so this is the whole defence: nothing acts on a stored command, and nothing stays stored.

The face crop is ephemeral: its reader subscribes at QoS 0, so the broker hands a face to the socket and
keeps no copy (none reaches ``mosquitto.db``, and none is queued for a reader that is away). No loss comes of
it: the reader answers each face on ``receipt/face`` with the face's id, and until then the camera sends it
again every few seconds, for up to ``EPHEMERAL_HOLD_S``, from its own memory (through an emotion service
restart or a broker restart alike); the reader handles each ``event_id`` once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field

from kiosk import procstats, sdnotify
from kiosk.broker import CLEARS_STORED_COMMANDS
from kiosk.bus import BrokerAddress, Bus
from kiosk.config import Settings
from kiosk.events import PIPELINE_TOPICS, Command, ErrorEvent, Event, ServiceMetrics, Topics, parse_event

logger = logging.getLogger(__name__)

SEEN_LIMIT = 2048
EPHEMERAL_KINDS = frozenset({"face"})  # carry the child's picture: never queued, never stored by the broker
EPHEMERAL_HOLD_S = 30.0  # how long the camera keeps sending a face nobody confirmed (a child waits this long)


class Receipt(BaseModel):
    """``receipt/<kind>``: the reader of an ephemeral event has it. The event's id, nothing else."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=64)


def broker_address(settings: Settings, user: str) -> BrokerAddress:
    return BrokerAddress(settings.broker.host, settings.broker.port, user, settings.broker_password(user))


class Service:
    """One kiosk process. Subclasses set ``name`` and ``listens`` and implement ``handle``."""

    name: str = "service"
    listens: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    loop_beats: bool = False  # True when ``loop`` calls ``beat()``; the watchdog then watches it too
    handler_budget_s: float = 60.0  # one event's handling may take this long before the service counts as hung

    def __init__(self, settings: Settings, client_id: str | None = None) -> None:
        self.settings = settings
        self.topics = Topics(settings.kiosk_id)
        self.bus = Bus(
            broker_address(settings, self.name),
            client_id=client_id or f"kiosk-{settings.kiosk_id}-{self.name}",
            status_topic=self.topics.status(self.name),
            service=self.name,
        )
        self.stop_event = threading.Event()
        self.started_at = time.time()
        self.handled = 0
        self.errors = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.bus.status_detail = self.status_detail
        self._last_beat = time.monotonic()
        self._cpu = procstats.CpuMeter()
        self._started = False
        self._receipts_for: set[str] = set()

    # -- to override ------------------------------------------------------------------------
    def setup(self) -> None:
        """Load models and open devices before connecting; raise to refuse to start."""

    def handle(self, event: Event) -> Iterable[Event]:
        """Answer one validated event with the events to publish."""
        return ()

    def loop(self) -> None:
        """The service's main loop; the default waits for the stop signal."""
        self.stop_event.wait()

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        return {}

    def stage_metrics(self) -> dict[str, float]:
        """Figures of this service's own stage for ``metrics`` (fps, latencies)."""
        return {}

    def on_command(self, action: str, command: Command) -> None:
        """Carry out a staff command this service declared in ``commands``; raise ValueError to refuse."""

    # -- machinery --------------------------------------------------------------------------
    def publish(self, event: Event) -> None:
        topic = getattr(self.topics, event.kind)
        if event.kind not in EPHEMERAL_KINDS:
            self.bus.publish(topic, event.to_json(), qos=1)
            return
        if event.kind not in self._receipts_for:  # subscribed before the first face: the broker keeps order
            self._receipts_for.add(event.kind)
            self.bus.subscribe(self._receipt_topic(event.kind), self._on_receipt)
        self.bus.publish_held(event.event_id, topic, event.to_json(), EPHEMERAL_HOLD_S)

    def _receipt_topic(self, kind: str) -> str:
        return f"{self.topics.base}/receipt/{PIPELINE_TOPICS[kind]}"

    def _on_receipt(self, message: mqtt.MQTTMessage) -> None:
        try:
            self.bus.confirm(Receipt.model_validate_json(message.payload).event_id)
        except ValueError:
            logger.warning("%s: unreadable receipt on %s", self.name, message.topic)

    def _send_receipt(self, kind: str, event_id: str) -> None:
        if kind in EPHEMERAL_KINDS:
            self.bus.publish(self._receipt_topic(kind), Receipt(event_id=event_id).model_dump_json().encode())

    def publish_error(self, topic: str, reason: str, payload: bytes) -> None:
        self.errors += 1
        logger.warning("%s: refused message on %s: %s", self.name, topic, reason)
        excerpt = payload[:120].decode("utf-8", "replace") if topic.rsplit("/", 1)[-1] != "face" else ""
        error = ErrorEvent(service=self.name, topic=topic, reason=reason[:2000], payload_excerpt=excerpt)
        self.bus.publish(self.topics.error, error.model_dump_json().encode(), qos=1)

    def health(self) -> dict[str, object]:
        return {
            "service": self.name,
            "connected": self.bus.connected.is_set(),
            "uptime_s": round(time.time() - self.started_at, 1),
            "handled": self.handled,
            "errors": self.errors,
            "backlog": self.bus.backlog,
            "outbox": self.bus.outbox_size,
            "outbox_dropped": self.bus.dropped,
        } | self.status_detail()

    def _on_message(self, kind: str):
        def receive(message: mqtt.MQTTMessage) -> None:
            try:
                event = parse_event(kind, message.payload)
            except ValueError as exc:
                self.publish_error(message.topic, str(exc), message.payload)
                return
            if event.event_id in self._seen:
                logger.info("%s: %s %s already handled; skipped", self.name, kind, event.event_id)
                self._send_receipt(kind, event.event_id)
                return
            self._remember(event.event_id)
            try:
                for answer in self.handle(event):
                    self.publish(answer)
            except Exception as exc:  # a bad event must not stop the service
                logger.exception("%s: failed on %s %s", self.name, kind, event.event_id)
                self.publish_error(message.topic, f"{type(exc).__name__}: {exc}", message.payload)
            else:
                self.handled += 1
            self._send_receipt(kind, event.event_id)

        return receive

    def _on_command_message(self, action: str):
        def receive(message: mqtt.MQTTMessage) -> None:
            if message.retain:
                if message.payload:  # an empty retained message is the deletion of a stored command
                    self.publish_error(message.topic, "retained commands are refused (the broker stores them)", b"")
                return
            try:
                command = Command.model_validate_json(message.payload)
            except ValueError as exc:
                self.publish_error(message.topic, f"invalid command: {exc}", message.payload)
                return
            try:
                self.on_command(action, command)
            except Exception as exc:
                logger.exception("%s: command %s failed", self.name, action)
                self.publish_error(message.topic, f"{action} failed: {type(exc).__name__}: {exc}", message.payload)
            self.bus.publish_status("online", **self.status_detail())

        return receive

    def _delete_stored_command(self, message: mqtt.MQTTMessage) -> None:
        """A command the broker stored (sent with retain): overwrite it with nothing, so it never replays."""
        if message.retain and message.payload:
            logger.warning("%s: deleting a stored command on %s", self.name, message.topic)
            self.bus.publish(message.topic, b"", qos=1, retain=True)

    def metrics(self) -> ServiceMetrics:
        return ServiceMetrics(
            service=self.name,
            uptime_s=round(time.time() - self.started_at, 1),
            rss_mib=round(procstats.rss_mib(), 1),
            cpu_percent=round(self._cpu.percent(), 1),
            gpu_mib=procstats.gpu_mib(),
            queue_depth=self.bus.backlog,
            outbox=self.bus.outbox_size,
            handled=self.handled,
            errors=self.errors,
            stage=self.stage_metrics(),
        )

    def beat(self) -> None:
        """Called by a ``loop`` that does work, to tell the watchdog it is still making progress."""
        self._last_beat = time.monotonic()

    def alive(self, stuck_after_s: float) -> bool:
        """Progress check for the watchdog: the handler is not stuck and a beating loop still beats."""
        if self.bus.handler_stuck(stuck_after_s):
            return False
        return not self.loop_beats or time.monotonic() - self._last_beat < stuck_after_s

    def _housekeeping(self) -> None:
        """Metrics on their interval; watchdog pings while alive (a missed ping lets systemd restart us)."""
        ping_every = sdnotify.watchdog_interval_s()
        metrics_every = self.settings.metrics_interval_s
        next_metrics = time.monotonic() + min(metrics_every, 2.0)
        tick = min(x for x in (ping_every, metrics_every, 1.0) if x)
        while not self.stop_event.wait(tick):
            if ping_every and self.alive(stuck_after_s=max(ping_every * 2, self.handler_budget_s)):
                sdnotify.notify("WATCHDOG=1")
            elif ping_every:
                logger.error("%s: no progress; not pinging the watchdog (systemd will restart it)", self.name)
            if time.monotonic() >= next_metrics and self.bus.connected.is_set():
                self.bus.publish(self.topics.metrics, self.metrics().model_dump_json().encode(), qos=0)
                next_metrics = time.monotonic() + metrics_every

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)

    def install_signal_handlers(self) -> None:
        def stop(signum, frame) -> None:
            logger.info("%s: signal %d, stopping", self.name, signum)
            self.stop_event.set()
            if not self._started:
                raise SystemExit(0)  # still loading models: leave now rather than finish loading first

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def start(self) -> None:
        """Set up, connect and subscribe (returns at once; the bus works in the background)."""
        self.setup()
        for kind in self.listens:
            qos = 0 if kind in EPHEMERAL_KINDS else 1
            self.bus.subscribe(f"{self.topics.base}/{PIPELINE_TOPICS[kind]}", self._on_message(kind), qos=qos)
        for action in self.commands:
            self.bus.subscribe(self.topics.command(action), self._on_command_message(action), retain_as_published=True)
        if self.name in CLEARS_STORED_COMMANDS:
            self.bus.subscribe(self.topics.command("+"), self._delete_stored_command, retain_as_published=True)
        self.bus.start()
        threading.Thread(target=self._housekeeping, name=f"{self.name}-housekeeping", daemon=True).start()
        sdnotify.notify("READY=1", f"STATUS={self.name} running")

    def stop(self) -> None:
        sdnotify.notify("STOPPING=1")
        self.stop_event.set()
        self.bus.stop("stopped")

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; the exit code for the process."""
        self.install_signal_handlers()
        self.start()
        self._started = True
        if self.stop_event.is_set():
            self.stop()
            return 0
        logger.info("%s: running", self.name)
        try:
            self.loop()
        finally:
            self.stop()
            logger.info("%s: stopped", self.name)
        return 0
