"""Soak benchmark (JSON): the whole kiosk running for a long while, and how each process's memory moves.

`kiosk run` as it is (its own broker and all six services, the supervisor restarting whatever crashes), the
camera on a folder of two photos shown a few seconds each (a face, then an empty room), so a child arrives,
gets a story with its pictures and leaves, over and over. Every ``--sample-s`` the resident memory (VmRSS)
of every process is read from /proc. Growth is a least-squares line through the samples after the warm-up,
in MiB per hour and as a share of the process's mean size; the slopes of the first and second halves of the
run tell whether a process levels off (the second slope near zero) or keeps growing.

    python -m bench.soak --minutes 20 > bench/results/soak.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

from bench import machine
from kiosk import broker
from kiosk.bus import Bus
from kiosk.camera import sources
from kiosk.config import BrokerConfig, CameraConfig, DashboardConfig, Settings, WebConfig
from kiosk.events import PresenceEvent, StoryEvent, Topics
from kiosk.service import broker_address
from kiosk.supervisor import Supervisor

SERVICES = ["camera", "emotion", "story", "illustrate", "narrate", "web", "dashboard"]


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def photo_folder(folder: Path, face_photo: Path | None) -> Path:
    """A face, then an empty room: each round of the folder is one visit."""
    folder.mkdir(parents=True, exist_ok=True)
    face = cv2.imread(str(face_photo)) if face_photo else sources.sample_photo()
    if face is None:
        raise SystemExit(f"soak: {face_photo} is not a readable photo")
    cv2.imwrite(str(folder / "1-child.jpg"), face)
    cv2.imwrite(str(folder / "2-empty-room.jpg"), np.full_like(face, 190))
    return folder


class Counter:
    """Visits, stories and errors as the monitor account sees them."""

    def __init__(self, settings: Settings) -> None:
        self.topics = Topics(settings.kiosk_id)
        self.visits = self.stories = self.fallbacks = self.errors = 0
        self.bus = Bus(broker_address(settings, "monitor"), "soak-counter", persistent=True)
        self.bus.subscribe(self.topics.presence, self._presence)
        self.bus.subscribe(self.topics.story, self._story)
        self.bus.subscribe(self.topics.error, self._error)

    def _presence(self, message) -> None:
        self.visits += PresenceEvent.model_validate_json(message.payload).state == "arrived"

    def _story(self, message) -> None:
        story = StoryEvent.model_validate_json(message.payload)
        self.stories += 1
        self.fallbacks += story.fallback

    def _error(self, message) -> None:
        self.errors += 1


def slope_mib_per_h(samples: list[tuple[float, float]]) -> float | None:
    if len(samples) < 3:
        return None
    hours = [t / 3600 for t, _ in samples]
    return round(statistics.linear_regression(hours, [r for _, r in samples]).slope, 2)


def growth(samples: list[tuple[float, float]], warmup_s: float) -> dict[str, float | None]:
    """Fitted growth after the warm-up, over the whole run and over each half of it."""
    settled = [(t, r) for t, r in samples if t >= warmup_s]
    if len(settled) < 3:
        return {"samples_after_warmup": len(settled)}
    half = len(settled) // 2
    mean = statistics.fmean(r for _, r in settled)
    slope = slope_mib_per_h(settled)
    return {
        "start_mib": round(settled[0][1], 1),
        "end_mib": round(settled[-1][1], 1),
        "max_mib": round(max(r for _, r in settled), 1),
        "growth_mib_per_h": slope,
        "growth_pct_per_h": round(100 * slope / mean, 2) if slope is not None else None,
        "first_half_mib_per_h": slope_mib_per_h(settled[: half + 1]),
        "second_half_mib_per_h": slope_mib_per_h(settled[half:]),
        "samples_after_warmup": len(settled),
    }


def kiosk_settings(run_dir: Path, face_photo: Path | None, name: str = "soak") -> Settings:
    """A whole kiosk in ``run_dir`` on free loopback ports, its camera on the arrive-and-leave folder."""
    return Settings(
        kiosk_id=f"{name}{uuid.uuid4().hex[:6]}",
        run_dir=run_dir,
        broker=BrokerConfig(port=broker.free_port(), secrets_dir=run_dir / "secrets"),
        camera=CameraConfig(source=str(photo_folder(run_dir / "photos", face_photo)), cooldown_s=0),
        web=WebConfig(port=broker.free_port()),
        dashboard=DashboardConfig(port=broker.free_port()),
    )


def soak(minutes: float, sample_s: float, warmup_min: float, face_photo: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="kiosk-soak-") as tmp:
        settings = kiosk_settings(Path(tmp), face_photo)
        supervisor = Supervisor(settings, SERVICES)
        counter: Counter | None = None
        samples: dict[str, list[tuple[float, float]]] = {}
        try:
            supervisor.start()  # also makes the broker accounts' passwords
            watching = threading.Thread(target=supervisor.watch, daemon=True)
            watching.start()
            counter = Counter(settings)
            counter.bus.start()
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < minutes * 60:
                pids = supervisor.pids() | {"mosquitto": supervisor.mosquitto.process.pid}
                for name, pid in pids.items():
                    if (rss := rss_mib(pid)) is not None:
                        samples.setdefault(name, []).append((round(elapsed, 1), round(rss, 1)))
                print(
                    f"soak: {elapsed / 60:5.1f} min, {counter.visits} visits, {counter.stories} stories, "
                    + ", ".join(f"{n} {s[-1][1]:.0f}" for n, s in samples.items()),
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(sample_s)
        finally:
            if counter is not None:
                counter.bus.stop()
            supervisor.stop()
        restarts = {name: child.restarts for name, child in supervisor.children.items()}
        return {
            "benchmark": "soak",
            "machine": machine.describe(),
            "minutes": round(minutes, 1),
            "sample_s": sample_s,
            "warmup_min": warmup_min,
            "visits": counter.visits,
            "stories": counter.stories,
            "template_stories": counter.fallbacks,
            "errors": counter.errors,
            "restarts": restarts | {"mosquitto": supervisor.broker_restarts},
            "rss": {name: growth(series, warmup_min * 60) for name, series in samples.items()},
            "samples": {name: series for name, series in samples.items()},
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0, help="how long the kiosk runs (default 20)")
    parser.add_argument("--sample-s", type=float, default=15.0, help="seconds between memory samples")
    parser.add_argument("--warmup-min", type=float, default=2.0, help="minutes left out of the growth fit")
    parser.add_argument("--photo", type=Path, default=None, help="the face photo (default: the sample photo)")
    args = parser.parse_args(argv)
    print(json.dumps(soak(args.minutes, args.sample_s, args.warmup_min, args.photo), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
