"""The kiosk's one MQTT client wrapper (paho-mqtt 2.x, MQTT v5).

- Pipeline events go out at QoS 1 from a persistent session (``clean_start=False`` with a session
  expiry), so the broker queues events for a service that is briefly away.
- An outbox keeps what is published while the broker is unreachable and sends it, in order, on reconnect;
  paho itself keeps what was handed over before a connection dropped.
- Incoming messages are acknowledged only after their handler has run (manual acks), so an event a
  service crashed on is delivered again rather than lost.
- Status is retained: ``online`` on connect, ``offline`` via the last will, ``stopped`` on a clean stop.
- Commands (``cmd/<action>/set``) and faces are never retained; the only retained publish allowed on a
  command topic is the empty one that deletes a command someone else stored.
- A message that must reach a reader the broker does not queue for (the face crop: its reader subscribes
  at QoS 0 so the broker never stores it) can be held until its reader confirms it (``confirm``): it is
  sent again every ``RESEND_HELD_S`` while connected, for up to its hold time, from this process's memory.
  (The broker's PUBACK cannot say it: any wildcard subscription, even one the ACL will not serve, counts
  as a matching subscriber.)
- The broker binds client ids to accounts (``use_username_as_clientid``): the client id given here only
  names the client in logs; on the broker a client is its account, and a second connection with the same
  account replaces the first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from kiosk.events import StatusPayload

logger = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600
OUTBOX_LIMIT = 10_000
HELD_LIMIT = 100
RESEND_HELD_S = 2.0

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


@dataclass
class _Held:
    message: _Outgoing
    until: float  # monotonic time after which it is given up
    next_send: float


@dataclass
class _Subscription:
    handler: MessageHandler
    options: SubscribeOptions = field(default_factory=lambda: SubscribeOptions(qos=1))


def never_retained(topic: str) -> bool:
    """Commands replay at every start and a face would be stored by the broker: neither may be retained."""
    return "/cmd/" in topic or topic.endswith("/face")


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
        self.refused = threading.Event()  # the broker said no (CONNACK reason) or the connection failed
        self.refusals: deque[str] = deque(maxlen=20)
        self._stopping = False
        self._outbox: deque[_Outgoing] = deque()
        self._lock = threading.Lock()
        self._subscriptions: dict[str, _Subscription] = {}
        self._suback = threading.Condition()
        self._unacked_subscribes: set[int] = set()
        self._early_subacks: set[int] = set()
        self.refused_subscriptions: deque[str] = deque(maxlen=20)
        self._held: dict[str, _Held] = {}
        self._held_lock = threading.Lock()
        self._work: queue.Queue[tuple[MessageHandler, mqtt.MQTTMessage] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work_loop, name=f"{client_id}-handler", daemon=True)
        self._resender = threading.Thread(target=self._resend_loop, name=f"{client_id}-resend", daemon=True)
        self.dropped = 0
        self.disconnects = 0  # connections lost (not counting our own stop)
        self.unconfirmed_dropped = 0
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
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    @property
    def account(self) -> str:
        return self.address.username or self.client_id

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

    def wait_subscribed(self, timeout: float) -> bool:
        """Connected, and the broker acknowledged every subscription made so far (SUBACK)."""
        deadline = time.monotonic() + timeout
        if not self.connected.wait(timeout):
            return False
        with self._suback:
            return self._suback.wait_for(
                lambda: not self._unacked_subscribes and self.connected.is_set(), max(0.0, deadline - time.monotonic())
            )

    def stop(self, final_state: str = "stopped") -> None:
        """Publish the final status, flush what is queued, disconnect."""
        self._stopping = True
        if self.status_topic and self.connected.is_set():
            info = self.publish_status(final_state)
            if info is not None:
                try:
                    info.wait_for_publish(timeout=5)  # a loaded machine can take seconds to acknowledge
                except RuntimeError:
                    logger.warning("%s: final status not sent", self.client_id)
        self.client.disconnect()
        self.client.loop_stop()
        self._work.put(None)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("%s: broker refused connection: %s", self.client_id, reason_code)
            self.refusals.append(str(reason_code))
            self.refused.set()
            return
        logger.info(
            "%s: connected to %s:%d as %s (session present: %s)",
            self.client_id,
            self.address.host,
            self.address.port,
            self.account,
            flags.session_present,
        )
        for topic, subscription in list(self._subscriptions.items()):
            self._send_subscribe(topic, subscription)
        with self._lock:
            self.connected.set()
            self._flush_outbox()
        if self.status_topic:
            self.publish_status("online", **self.status_detail())
        for hook in self.connect_hooks:
            hook()

    def _on_connect_fail(self, client, userdata) -> None:
        """TCP or TLS failed before any CONNACK (wrong port, unknown CA, broker away)."""
        self.refusals.append("connection failed")
        self.refused.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if self._stopping:
            logger.info("%s: disconnected", self.client_id)
            return
        self.disconnects += was_connected
        if not was_connected and not self.refused.is_set():
            self.refusals.append(f"dropped before CONNACK ({reason_code})")
            self.refused.set()
        logger.warning("%s: disconnected (%s); reconnecting", self.client_id, reason_code)

    # -- publishing -------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False):
        """Publish now, or keep in the outbox until the broker is back. Returns paho's info or None."""
        if retain and payload and never_retained(topic):
            raise ValueError(f"{topic}: commands and faces are never retained")
        return self._enqueue(_Outgoing(topic, payload, qos, retain))

    def publish_held(self, key: str, topic: str, payload: bytes, hold_s: float) -> None:
        """Publish, then again every ``RESEND_HELD_S`` until ``confirm(key)`` or ``hold_s`` is over."""
        message = _Outgoing(topic, payload, 1, False)
        now = time.monotonic()
        with self._held_lock:
            if len(self._held) >= HELD_LIMIT:
                self._held.pop(next(iter(self._held)))
                self.unconfirmed_dropped += 1
            self._held[key] = _Held(message, now + hold_s, now + RESEND_HELD_S)
            if self._resender.ident is None:  # the first held message starts the resending
                self._resender.start()
        self._enqueue(message)

    def confirm(self, key: str) -> None:
        """Its reader has it: stop sending it again."""
        with self._held_lock:
            self._held.pop(key, None)

    @property
    def held(self) -> int:
        return len(self._held)

    def _enqueue(self, message: _Outgoing):
        with self._lock:
            if self.connected.is_set() and not self._outbox:
                return self.client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
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

    def _resend_loop(self) -> None:
        """Send held messages again until confirmed (only while connected: the outbox covers the rest)."""
        while not self._stopping:
            time.sleep(RESEND_HELD_S / 4)
            now = time.monotonic()
            with self._held_lock:
                expired = [key for key, held in self._held.items() if held.until <= now]
                for key in expired:
                    logger.warning("%s: %s was not confirmed in time; given up", self.client_id, key)
                    del self._held[key]
                due = [held for held in self._held.values() if held.next_send <= now]
                for held in due:
                    held.next_send = now + RESEND_HELD_S
            self.unconfirmed_dropped += len(expired)
            if self.connected.is_set():
                for held in due:
                    self._enqueue(held.message)

    @property
    def outbox_size(self) -> int:
        return len(self._outbox)

    def publish_status(self, state: str, **detail):
        payload = StatusPayload(state=state, service=self.service, detail=detail)
        return self.publish(self.status_topic, payload.model_dump_json().encode(), qos=1, retain=True)

    # -- subscribing ------------------------------------------------------------------------
    def subscribe(self, topic: str, handler: MessageHandler, qos: int = 1, retain_as_published: bool = False) -> None:
        """Call ``handler(message)`` for each message; the message is acked when it returns.

        ``qos=0`` means the broker never queues or stores these messages for this client.
        ``retain_as_published``: a live message keeps the retain flag its sender set (MQTT v5), so a
        retained command can be told from a live one.
        """
        subscription = _Subscription(handler, SubscribeOptions(qos=qos, retainAsPublished=retain_as_published))
        self._subscriptions[topic] = subscription
        self.client.message_callback_add(topic, self._dispatch(handler))
        if self.connected.is_set():
            self._send_subscribe(topic, subscription)

    def _send_subscribe(self, topic: str, subscription: _Subscription) -> None:
        result, mid = self.client.subscribe(topic, options=subscription.options)
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            return
        with self._suback:
            if mid in self._early_subacks:
                self._early_subacks.discard(mid)
            else:
                self._unacked_subscribes.add(mid)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        with self._suback:
            if mid in self._unacked_subscribes:
                self._unacked_subscribes.discard(mid)
            else:
                self._early_subacks.add(mid)
            if refused:
                self.refused_subscriptions.append(", ".join(refused))
            self._suback.notify_all()
        if refused:
            logger.error("%s: subscription refused: %s", self.client_id, ", ".join(refused))

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
