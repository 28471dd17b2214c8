"""``kiosk run --source PATH --once``: the installer's check of a kiosk, one photo or video end to end.

It starts a private broker (free loopback port, own run directory) and the emotion, story and illustrate
services, runs the camera on the source in this process, and prints every pipeline event as one JSON line
as it passes on the bus: ``presence`` and ``face`` as the camera publishes them (the crop redacted: this
command never reads the face topic), the rest as the monitor account receives them. It exits 0 after the
story's last illustration, 2 if the source is unusable or shows no face, 3 if a stage times out.

Output (stable): one JSON object per line with ``topic`` (relative to ``kiosk/<id>/``) and the event's
fields; ``face.crop_jpeg_b64`` and ``illustration.image_b64`` are replaced by their sizes.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

from kiosk import broker
from kiosk.bus import Bus
from kiosk.camera.service import CameraService, NoFaceFound
from kiosk.camera.sources import SourceError
from kiosk.config import Settings
from kiosk.events import PIPELINE_TOPICS, Event, FaceEvent, IllustrationEvent, Topics, parse_event
from kiosk.service import broker_address
from kiosk.supervisor import Supervisor

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_NO_FACE, EXIT_TIMEOUT = 0, 2, 3
OBSERVED = ("emotion", "story_partial", "story", "illustration")
STAGES = ("face", "emotion", "story", "illustration")


def printable(topic: str, event: Event) -> dict:
    data = event.redacted() if isinstance(event, FaceEvent) else event.model_dump(by_alias=True)
    if isinstance(event, IllustrationEvent):
        data["image_b64"] = f"<{len(event.image_b64)} base64 chars>"
    return {"topic": topic} | data


class Observer:
    """Prints pipeline events in order and notices when the story's last picture has arrived."""

    def __init__(self, settings: Settings, out: TextIO) -> None:
        self.topics = Topics(settings.kiosk_id)
        self.out = out
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.pictures: set[int] = set()
        self.done = threading.Event()
        self.errors: list[str] = []
        self.bus = Bus(
            broker_address(settings, "monitor"), client_id=f"kiosk-{settings.kiosk_id}-once", persistent=False
        )
        for kind in OBSERVED:
            self.bus.subscribe(f"{self.topics.base}/{PIPELINE_TOPICS[kind]}", self._receive(kind))
        self.bus.subscribe(self.topics.error, self._error)

    def emit(self, topic: str, event: Event) -> None:
        with self.lock:
            self.seen.add(event.kind)
            self.out.write(json.dumps(printable(topic, event)) + "\n")
            self.out.flush()

    def _receive(self, kind: str):
        def handle(message) -> None:
            event = parse_event(kind, message.payload)
            self.emit(self.topics.relative(message.topic), event)
            if isinstance(event, IllustrationEvent):
                self.pictures.add(event.scene_index)
                if len(self.pictures) >= event.scene_count:
                    self.done.set()

        return handle

    def _error(self, message) -> None:
        text = message.payload.decode(errors="replace")
        self.errors.append(text)
        logger.error("pipeline error: %s", text)

    def waiting_for(self) -> str:
        return next((s for s in STAGES if s not in self.seen), "illustration")


def print_service_logs(run_dir: Path, lines: int = 8) -> None:
    """The last lines of each service's log (the run directory is removed on exit)."""
    for log in sorted((run_dir / "logs").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- {log.stem} log (last {len(tail)} lines)", *tail, sep="\n", file=sys.stderr)


def run_once(settings: Settings, source: str, timeout: float = 60.0, out: TextIO = sys.stdout) -> int:
    with tempfile.TemporaryDirectory(prefix="kiosk-once-") as tmp:
        run_dir = Path(tmp)
        settings = settings.model_copy(
            update={
                "kiosk_id": "check",
                "run_dir": run_dir,
                "broker": settings.broker.model_copy(
                    update={"port": broker.free_port(), "secrets_dir": run_dir / "secrets"}
                ),
                "camera": settings.camera.model_copy(update={"source": source}),
            }
        )
        supervisor = Supervisor(settings, ["emotion", "story", "illustrate"])
        observer: Observer | None = None
        try:
            supervisor.start(startup_timeout=timeout)
            observer = Observer(settings, out)
            observer.bus.start()
            if not observer.bus.wait_subscribed(10):
                print("kiosk: the monitor could not connect to the broker", file=sys.stderr)
                return EXIT_TIMEOUT
            camera = CameraService(settings, once=True, on_event=lambda e: observer.emit(PIPELINE_TOPICS[e.kind], e))
            camera.start()
            started = time.monotonic()
            try:
                camera.loop()
            except (NoFaceFound, SourceError) as exc:
                print(f"kiosk: {exc}", file=sys.stderr)
                return EXIT_NO_FACE
            finally:
                camera.stop()
            if not observer.done.wait(max(1.0, timeout - (time.monotonic() - started))):
                print(
                    f"kiosk: timed out after {timeout:.0f} s waiting for the {observer.waiting_for()} event",
                    file=sys.stderr,
                )
                for error in observer.errors:
                    print(f"kiosk: pipeline error: {error}", file=sys.stderr)
                print_service_logs(run_dir)
                return EXIT_TIMEOUT
            return EXIT_OK
        except (broker.BrokerError, RuntimeError) as exc:
            print(f"kiosk: {exc}", file=sys.stderr)
            print_service_logs(run_dir)
            return EXIT_TIMEOUT
        finally:
            if observer:
                observer.bus.stop()
            supervisor.stop()
