"""``kiosk run``: start the broker and each service as its own process, restart any that crash.

Development and demonstration use this; production uses the systemd units in ``systemd/``. The camera
starts last, once every other service says ``online``, so the first child's face never meets an empty bus.
The broker is restarted too (with the same backoff), from its own persistence: services reconnect to the
same sessions and what they published meanwhile waits in their outboxes, so no event is lost.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kiosk import broker
from kiosk.bus import Bus
from kiosk.config import Settings
from kiosk.events import StatusPayload, Topics
from kiosk.service import broker_address

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
STOP_GRACE_S = 10.0
# glibc's heap for services that run for days (the same lines are in systemd/kiosk@.service). glibc raises
# its mmap threshold each time a large block is freed, after which the story service's per-token logits
# (~190 KiB) and the voice's ONNX buffers come from the heap and fragment it: a 60-minute soak saw the story
# service grow 5.4% and the narrator 15.5% in the hour. A fixed threshold keeps such blocks mapped (returned
# when freed; 100 llama.cpp generations: +9 MiB without, +4 MiB with), two arenas stop each thread's heap.
HEAP_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_ARENA_MAX": "2"}
HEALTHY_AFTER_S = 60.0  # a process that ran this long starts its backoff from the beginning again


@dataclass
class Child:
    name: str
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


def write_settings(settings: Settings, run_dir: Path) -> Path:
    path = run_dir / "settings.json"
    path.write_text(settings.model_dump_json(indent=2))
    return path


def backoff_s(restarts: int) -> float:
    return min(MAX_BACKOFF_S, 2.0**restarts)


class StatusWatcher:
    """Follows the retained ``status/<service>`` topics with its own account (``supervisor``)."""

    def __init__(self, settings: Settings) -> None:
        self.topics = Topics(settings.kiosk_id)
        self.states: dict[str, str] = {}
        self.changed = threading.Condition()
        self.bus = Bus(
            broker_address(settings, "supervisor"), client_id=f"kiosk-{settings.kiosk_id}-supervisor", persistent=False
        )
        self.bus.subscribe(self.topics.status("+"), self._on_status)

    def _on_status(self, message) -> None:
        try:
            status = StatusPayload.model_validate_json(message.payload)
        except ValueError:
            return
        with self.changed:
            self.states[status.service] = status.state
            self.changed.notify_all()

    def wait_online(self, services: list[str], timeout: float, stop: threading.Event | None = None) -> list[str]:
        """Wait until ``services`` are online (or ``stop`` is set); returns those that are not."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while (missing := [s for s in services if self.states.get(s) != "online"]) and (
                left := deadline - time.monotonic()
            ) > 0:
                if stop is not None and stop.is_set():
                    break
                self.changed.wait(min(left, 0.2))
        return missing


class Supervisor:
    def __init__(self, settings: Settings, services: list[str], own_broker: bool = True) -> None:
        self.settings = settings
        self.services = services
        self.own_broker = own_broker
        self.children = {name: Child(name) for name in services}
        self.stopping = threading.Event()
        self.mosquitto: broker.MosquittoProcess | None = None
        self.settings_path: Path | None = None
        self.watcher: StatusWatcher | None = None
        self.broker_restarts = 0
        self._broker_next_start = 0.0
        self._broker_started_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Safe from a signal handler: only sets a flag that start() and watch() look at."""
        self.stopping.set()

    def start(self, startup_timeout: float = 60.0) -> None:
        """Broker, then the services, the camera last; returns early once a stop is requested."""
        run_dir = self.settings.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        if self.own_broker:
            files = broker.render(
                run_dir,
                self.settings.broker.port,
                self.settings.broker.secrets_dir,
                log_file=run_dir / "mosquitto.log",
                tls=self.settings.broker.tls,
            )
            self.mosquitto = broker.MosquittoProcess(files)
            self.mosquitto.start()
            self._broker_started_at = time.monotonic()
        self.settings_path = write_settings(self.settings, run_dir)
        self.watcher = StatusWatcher(self.settings)
        self.watcher.bus.start()
        consumers = [s for s in self.services if s != "camera"]
        for name in consumers:
            if self.stopping.is_set():
                return
            self._spawn(self.children[name])
        missing = self.watcher.wait_online(consumers, startup_timeout, self.stopping)
        if self.stopping.is_set():
            return
        if missing:
            raise RuntimeError(
                f"services did not come online in {startup_timeout:.0f} s: {', '.join(missing)}"
                f" (logs in {run_dir / 'logs'})"
            )
        if "camera" in self.children:
            self._spawn(self.children["camera"])

    def _spawn(self, child: Child) -> None:
        log_dir = self.settings.run_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        env = os.environ | HEAP_ENV | {"KIOSK_CONFIG": str(self.settings_path), "PYTHONUNBUFFERED": "1"}
        with (log_dir / f"{child.name}.log").open("ab") as log:
            child.process = subprocess.Popen(
                [sys.executable, "-m", "kiosk", "serve", child.name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=broker.die_with_parent,
            )
        child.started_at = time.monotonic()
        logger.info("started %s (pid %d)", child.name, child.process.pid)

    def watch(self) -> None:
        """Restart a crashed broker and crashed services, each with backoff, until ``stop``."""
        while not self.stopping.wait(0.5):
            self._watch_broker()
            for child in list(self.children.values()):
                if child.process is None or child.process.poll() is None:
                    continue
                now = time.monotonic()
                if child.next_start == 0.0:
                    if now - child.started_at > HEALTHY_AFTER_S:
                        child.restarts = 0
                    delay = backoff_s(child.restarts)
                    logger.error("%s exited with %s; restarting in %.0f s", child.name, child.process.returncode, delay)
                    child.next_start = now + delay
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    self._spawn(child)

    def _watch_broker(self) -> None:
        """Start our Mosquitto again when it died: at once the first time, then with growing pauses."""
        if self.mosquitto is None or self.stopping.is_set() or (code := self.mosquitto.exited()) is None:
            return
        now = time.monotonic()
        if self._broker_next_start == 0.0:
            if now - self._broker_started_at > HEALTHY_AFTER_S:
                self.broker_restarts = 0
            delay = 0.0 if self.broker_restarts == 0 else backoff_s(self.broker_restarts - 1)
            logger.error("mosquitto exited with %s; restarting in %.0f s", code, delay)
            self._broker_next_start = now + delay
        if now < self._broker_next_start:
            return
        self.broker_restarts += 1
        self._broker_next_start = 0.0
        try:
            self.mosquitto.start()
        except broker.BrokerError as exc:
            logger.error("mosquitto did not start again: %s", exc)
            return
        self._broker_started_at = time.monotonic()
        logger.info("mosquitto restarted (restart %d); the services reconnect to their sessions", self.broker_restarts)

    def stop(self) -> None:
        self.stopping.set()
        for child in self.children.values():
            if child.process and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S  # one grace period for all, not one each
        for child in self.children.values():
            if child.process:
                try:
                    child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    logger.warning("%s did not stop in %.0f s; killed", child.name, STOP_GRACE_S)
                    child.process.kill()
                    child.process.wait()
        if self.watcher:
            self.watcher.bus.stop()
        if self.mosquitto:
            self.mosquitto.stop()

    def stop_service(self, name: str) -> None:
        """Stop one service for good (a benchmark that brings its own camera); ``watch`` leaves it stopped."""
        child = self.children.pop(name)
        if child.process and child.process.poll() is None:
            child.process.terminate()
            try:
                child.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()

    def pids(self) -> dict[str, int]:
        return {c.name: c.process.pid for c in self.children.values() if c.process and c.process.poll() is None}


def describe(settings: Settings) -> str:
    return json.dumps(
        {
            "kiosk_id": settings.kiosk_id,
            "broker_port": settings.broker.port,
            "page": f"http://{settings.web.host}:{settings.web.port}/",
            "staff_page": f"{'https' if settings.dashboard.tls_cert_dir else 'http'}://"
            f"{settings.dashboard.host}:{settings.dashboard.port}/",
        }
    )
