"""The kiosk's one MQTT client wrapper (paho-mqtt 2.x, MQTT v5).

- Pipeline events go out at QoS 1 from a persistent session (``clean_start=False`` with a session
  expiry), so the broker queues events for a service that is briefly away.
- An outbox keeps what is published while the broker is unreachable and sends it, in order, on reconnect;
  paho itself keeps what was handed over before a connection dropped.
- Incoming messages are acknowledged only after their handler has run (manual acks), so an event a
  service crashed on is delivered again rather than lost.
- Status is retained: ``online`` on connect, ``offline`` via the last will, ``stopped`` on a clean stop.
- Commands (``cmd/<action>/set``) are never retained.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.events import StatusPayload

logger = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600
OUTBOX_LIMIT = 10_000

MessageHandler = Callable[[mqtt.MQTTMessage], None]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # TLS: verify the broker against this CA (remote dashboards)


@dataclass(frozen=True)
class _Outgoing:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Bus:
    """A connected MQTT client with an outbox, manual acks and retained status."""

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        status_topic: str | None = None,
        service: str | None = None,
        persistent: bool = True,
    ) -> None:
        self.address = address
        self.client_id = client_id
        self.status_topic = status_topic
        self.service = service or client_id
        self.persistent = persistent
        self.connected = threading.Event()
        self._stopping = False
        self._outbox: deque[_Outgoing] = deque()
        self._lock = threading.Lock()
        self._subscriptions: dict[str, MessageHandler] = {}
        self._work: queue.Queue[tuple[MessageHandler, mqtt.MQTTMessage] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work_loop, name=f"{client_id}-handler", daemon=True)
        self.dropped = 0
        self.busy_since: float | None = None
        self.status_detail: Callable[[], dict] = dict
        self.connect_hooks: list[Callable[[], None]] = []  # run after each (re)connect, on paho's thread
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        if address.ca_file:
            self.client.tls_set(ca_certs=address.ca_file)
        if status_topic:
            will = StatusPayload(state="offline", service=self.service).model_dump_json().encode()
            self.client.will_set(status_topic, will, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # -- connection -------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; keeps retrying with backoff until the broker answers."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_S if self.persistent else 0
        self.client.connect_async(
            self.address.host, self.address.port, keepalive=15, clean_start=not self.persistent, properties=properties
        )
        self.client.loop_start()
        self._worker.start()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def stop(self, final_state: str = "stopped") -> None:
        """Publish the final status, flush what is queued, disconnect."""
        self._stopping = True
        if self.status_topic and self.connected.is_set():
            info = self.publish_status(final_state)
            if info is not None:
                try:
                    info.wait_for_publish(timeout=2)
                except RuntimeError:
                    logger.warning("%s: final status not sent", self.client_id)
        self.client.disconnect()
        self.client.loop_stop()
        self._work.put(None)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("%s: broker refused connection: %s", self.client_id, reason_code)
            return
        logger.info(
            "%s: connected to %s:%d (session present: %s)",
            self.client_id,
            self.address.host,
            self.address.port,
            flags.session_present,
        )
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        with self._lock:
            self.connected.set()
            self._flush_outbox()
        if self.status_topic:
            self.publish_status("online", **self.status_detail())
        for hook in self.connect_hooks:
            hook()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if self._stopping:
            logger.info("%s: disconnected", self.client_id)
        else:
            logger.warning("%s: disconnected (%s); reconnecting", self.client_id, reason_code)

    # -- publishing -------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False):
        """Publish now, or keep in the outbox until the broker is back. Returns paho's info or None."""
        if "/cmd/" in topic and retain:
            raise ValueError("commands are never retained")
        message = _Outgoing(topic, payload, qos, retain)
        with self._lock:
            if self.connected.is_set() and not self._outbox:
                return self.client.publish(topic, payload, qos=qos, retain=retain)
            if len(self._outbox) >= OUTBOX_LIMIT:
                self._outbox.popleft()
                self.dropped += 1
                logger.error("%s: outbox full, dropped the oldest message", self.client_id)
            self._outbox.append(message)
            logger.debug("%s: broker away, %d message(s) in outbox", self.client_id, len(self._outbox))
        return None

    def _flush_outbox(self) -> None:
        if self._outbox:
            logger.info("%s: sending %d message(s) kept while the broker was away", self.client_id, len(self._outbox))
        while self._outbox:
            message = self._outbox.popleft()
            self.client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)

    @property
    def outbox_size(self) -> int:
        return len(self._outbox)

    def publish_status(self, state: str, **detail):
        payload = StatusPayload(state=state, service=self.service, detail=detail)
        return self.publish(self.status_topic, payload.model_dump_json().encode(), qos=1, retain=True)

    # -- subscribing ------------------------------------------------------------------------
    def subscribe(self, topic: str, handler: MessageHandler) -> None:
        """Call ``handler(message)`` for each message; the message is acked when it returns."""
        self._subscriptions[topic] = handler
        self.client.message_callback_add(topic, self._dispatch(handler))
        if self.connected.is_set():
            self.client.subscribe(topic, qos=1)

    def _dispatch(self, handler: MessageHandler):
        def on_message(client, userdata, message: mqtt.MQTTMessage) -> None:
            self._work.put((handler, message))

        return on_message

    def _work_loop(self) -> None:
        """Run handlers one at a time, in arrival order, off paho's network thread; ack when done."""
        while (item := self._work.get()) is not None:
            handler, message = item
            self.busy_since = time.monotonic()
            try:
                handler(message)
            except Exception:
                logger.exception("%s: handler for %s failed", self.client_id, message.topic)
            finally:
                self.busy_since = None
                self.client.ack(message.mid, message.qos)

    def handler_stuck(self, after_s: float) -> bool:
        """True when the handler thread died or one handler has run for more than ``after_s``."""
        if self._worker.ident is not None and not self._worker.is_alive() and not self._stopping:
            return True
        busy_since = self.busy_since
        return busy_since is not None and time.monotonic() - busy_since > after_s

    @property
    def backlog(self) -> int:
        """Messages received and not yet handled."""
        return self._work.qsize()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        logger.debug("%s: unrouted message on %s", self.client_id, message.topic)
        client.ack(message.mid, message.qos)
