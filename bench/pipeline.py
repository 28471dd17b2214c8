"""Pipeline benchmark (JSON): page-ready time, face → story → pictures latency, peak memory.

1. Start everything as `kiosk run` does (broker + five services, camera on the sample photo) and time
   until the page answers /healthz and until it holds a story with all its pictures; then read each
   process's peak RSS (VmHWM).
2. Five times: a fresh visit through the running pipeline (camera in this process on the sample photo,
   5 steady frames at 15 fps), timing each stage from the first frame that shows the face to the last
   illustration arriving on the bus (what the web service pushes to the page).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from kiosk import broker
from kiosk.bus import Bus
from kiosk.camera.service import CameraService
from kiosk.config import BrokerConfig, CameraConfig, Settings, WebConfig
from kiosk.events import PIPELINE_TOPICS, Topics, parse_event
from kiosk.service import broker_address
from kiosk.supervisor import Supervisor


def peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def wait(condition, timeout: float) -> float | None:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if condition():
            return time.perf_counter() - started
        time.sleep(0.01)
    return None


def start_kiosk(run_dir: Path) -> tuple[Supervisor, Settings, dict]:
    settings = Settings(
        kiosk_id=f"bench{uuid.uuid4().hex[:6]}",
        run_dir=run_dir,
        broker=BrokerConfig(port=broker.free_port(), secrets_dir=run_dir / "secrets"),
        camera=CameraConfig(source="sample", cooldown_s=0),
        web=WebConfig(port=broker.free_port()),
    )
    started = time.perf_counter()
    supervisor = Supervisor(settings, ["camera", "emotion", "story", "illustrate", "web"])
    supervisor.start()
    base = f"http://127.0.0.1:{settings.web.port}"
    page_ready = wait(lambda: get_json(base + "/healthz") is not None, 60)
    figures = {"page_ready_s": round(time.perf_counter() - started, 2) if page_ready is not None else None}
    return supervisor, settings, figures


class StageClock:
    """Receive times of each pipeline stage for one session, on the monitor account."""

    def __init__(self, settings: Settings) -> None:
        self.topics = Topics(settings.kiosk_id)
        self.times: dict[str, dict[str, float]] = {}
        self.done = threading.Event()
        self.bus = Bus(broker_address(settings, "monitor"), f"bench-clock-{uuid.uuid4().hex[:6]}", persistent=False)
        for kind in ("emotion", "story_partial", "story", "illustration"):
            self.bus.subscribe(f"{self.topics.base}/{PIPELINE_TOPICS[kind]}", self._receive(kind))

    def _receive(self, kind: str):
        def handle(message) -> None:
            now = time.time()
            event = parse_event(kind, message.payload)
            stages = self.times.setdefault(event.session_id, {})
            stages.setdefault(kind, now)
            if kind == "illustration":
                stages["illustrations"] = stages.get("illustrations", 0) + 1
                if stages["illustrations"] == event.scene_count:
                    stages["last_illustration"] = now
                    self.done.set()

        return handle


def one_visit(settings: Settings, clock: StageClock) -> dict[str, float]:
    face_times: dict[str, float] = {}

    def on_event(event) -> None:
        if event.kind == "face":
            face_times["face"], face_times["session"] = time.time(), event.session_id

    camera = CameraService(settings, once=True, on_event=on_event, client_id=f"bench-camera-{uuid.uuid4().hex[:6]}")
    clock.done.clear()
    camera.start()
    camera.bus.wait_connected(10)
    first_frame = time.time()
    camera.loop()
    camera.stop()
    clock.done.wait(30)
    stages = clock.times[face_times["session"]]
    ms = lambda a, b: round((b - a) * 1000, 1)  # noqa: E731
    return {
        "face_in_source_to_face_event_ms": ms(first_frame, face_times["face"]),
        "face_event_to_emotion_ms": ms(face_times["face"], stages["emotion"]),
        "emotion_to_first_words_ms": ms(stages["emotion"], stages["story_partial"]),
        "emotion_to_story_ms": ms(stages["emotion"], stages["story"]),
        "story_to_last_illustration_ms": ms(stages["story"], stages["last_illustration"]),
        "face_in_source_to_last_illustration_ms": ms(first_frame, stages["last_illustration"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-") as tmp:
        supervisor, settings, figures = start_kiosk(Path(tmp))
        try:
            base = f"http://127.0.0.1:{settings.web.port}"
            first_story = wait(lambda: (state := get_json(base + "/healthz")) and state.get("handled", 0) >= 3, 60)
            figures["start_to_first_story_on_page_s"] = (
                round(first_story + figures["page_ready_s"], 2) if first_story is not None else None
            )
            clock = StageClock(settings)
            clock.bus.start()
            clock.bus.wait_connected(10)
            time.sleep(0.3)
            visits = [one_visit(settings, clock) for _ in range(args.runs)]
            figures["visits"] = args.runs
            figures["median"] = {key: statistics.median(v[key] for v in visits) for key in visits[0]}
            figures["all"] = visits
            rss = {name: peak_rss_mib(pid) for name, pid in supervisor.pids().items()}
            if supervisor.mosquitto and supervisor.mosquitto.process:
                rss["mosquitto"] = peak_rss_mib(supervisor.mosquitto.process.pid)
            figures["peak_rss_mib"] = rss | {"total": round(sum(v for v in rss.values() if v), 1)}
            clock.bus.stop()
        finally:
            supervisor.stop()
    print(json.dumps({"benchmark": "pipeline", "machine": "2-core CPU, no GPU"} | figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
