"""Pipeline benchmark (JSON): page-ready time, face → story → pictures latency, peak memory.

1. Start everything as `kiosk run` does (broker + six services, camera on the sample photo) and time
   until the page answers /healthz and until it holds a story with all its pictures; then stop that camera
   (one camera account on the bus at a time: the broker binds client ids to accounts) and read each
   process's peak RSS (VmHWM).
2. Five times: a fresh visit through the running pipeline (camera in this process on the sample photo,
   5 steady frames at 15 fps), timing each stage from the first frame that shows the face to the last
   illustration arriving on the bus (what the web service pushes to the page), and to the first narration
   (the first words' audio, which the page starts playing as it arrives).

Each visit waits for its own session's pictures (a late picture of an earlier story once ended a visit's
wait early: KeyError, no figures). The clock has a persistent session, so a dropped connection loses
nothing; a visit that still misses a stage is reported with what it missed and replaced by another, and the
broker log's last lines go into the output whenever a client was dropped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from bench import machine
from kiosk import broker
from kiosk.bus import Bus
from kiosk.camera.service import CameraService
from kiosk.config import BrokerConfig, CameraConfig, Settings, WebConfig
from kiosk.events import MAX_SCENES, PIPELINE_TOPICS, Topics, parse_event
from kiosk.service import broker_address
from kiosk.supervisor import Supervisor

STAGE_TIMEOUT_S = 60.0


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
    supervisor = Supervisor(settings, ["camera", "emotion", "story", "illustrate", "narrate", "web"])
    supervisor.start()
    base = f"http://127.0.0.1:{settings.web.port}"
    page_ready = wait(lambda: get_json(base + "/healthz") is not None, 60)
    figures = {"page_ready_s": round(time.perf_counter() - started, 2) if page_ready is not None else None}
    return supervisor, settings, figures


class StageClock:
    """Receive times of each pipeline stage, per session, on the monitor account (a persistent session)."""

    def __init__(self, settings: Settings) -> None:
        self.topics = Topics(settings.kiosk_id)
        self.times: dict[str, dict[str, float]] = {}
        self.finished = threading.Condition()
        self.bus = Bus(broker_address(settings, "monitor"), f"bench-clock-{uuid.uuid4().hex[:6]}", persistent=True)
        for kind in ("emotion", "story_partial", "story", "illustration", "narration"):
            self.bus.subscribe(f"{self.topics.base}/{PIPELINE_TOPICS[kind]}", self._receive(kind))

    def _receive(self, kind: str):
        def handle(message) -> None:
            now = time.time()
            event = parse_event(kind, message.payload)
            with self.finished:
                stages = self.times.setdefault(event.session_id, {})
                stages.setdefault(kind, now)
                if kind == "narration":  # the narrate service's own time for the first part (no bus, no queue)
                    stages.setdefault("first_audio_synth_ms", event.latency_ms)
                    last_scene = stages.get("scenes", MAX_SCENES) - 1
                    if event.scene_index == last_scene and event.part >= event.parts - 1:
                        stages["narration_done"] = now
                        self.finished.notify_all()
                if kind == "story":
                    stages["scenes"] = len(event.scenes)
                if kind == "illustration":
                    stages["illustrations"] = stages.get("illustrations", 0) + 1
                    if stages["illustrations"] == event.scene_count:
                        stages["last_illustration"] = now
                        self.finished.notify_all()

        return handle

    def wait_story(self, session_id: str, timeout: float) -> dict[str, float]:
        """The stages seen for ``session_id`` once its last picture arrived and its last scene was read aloud
        (or what there is at timeout): the next visit starts then, as a real one would (the camera's cooldown
        is 10 s), not while the narrator is still reading this story."""
        done = ("last_illustration", "narration_done")
        with self.finished:
            self.finished.wait_for(lambda: all(s in self.times.get(session_id, {}) for s in done), timeout)
            return dict(self.times.get(session_id, {}))


class VisitFailed(RuntimeError):
    """A visit that did not show every stage in time."""


def one_visit(settings: Settings, clock: StageClock) -> dict[str, float]:
    face_times: dict[str, float] = {}

    def on_event(event) -> None:
        if event.kind == "face":
            face_times["face"], face_times["session"] = time.time(), event.session_id

    camera = CameraService(settings, once=True, on_event=on_event, client_id=f"bench-camera-{uuid.uuid4().hex[:6]}")
    camera.start()
    camera.bus.wait_connected(10)
    first_frame = time.time()
    try:
        camera.loop()
        if "session" not in face_times:
            raise VisitFailed("the camera published no face")
        stages = clock.wait_story(face_times["session"], STAGE_TIMEOUT_S)
    finally:
        camera.stop()
    expected = ("emotion", "story_partial", "story", "last_illustration", "narration", "narration_done")
    missing = [s for s in expected if s not in stages]
    if missing:
        raise VisitFailed(f"session {face_times['session']}: no {', '.join(missing)} within {STAGE_TIMEOUT_S:.0f} s")
    ms = lambda a, b: round((b - a) * 1000, 1)  # noqa: E731
    return {
        "face_in_source_to_face_event_ms": ms(first_frame, face_times["face"]),
        "face_event_to_emotion_ms": ms(face_times["face"], stages["emotion"]),
        "emotion_to_first_words_ms": ms(stages["emotion"], stages["story_partial"]),
        "emotion_to_story_ms": ms(stages["emotion"], stages["story"]),
        "story_to_last_illustration_ms": ms(stages["story"], stages["last_illustration"]),
        "face_in_source_to_last_illustration_ms": ms(first_frame, stages["last_illustration"]),
        "first_words_to_first_audio_ms": ms(stages["story_partial"], stages["narration"]),
        "face_in_source_to_first_audio_ms": ms(first_frame, stages["narration"]),
        "first_audio_synth_ms": stages["first_audio_synth_ms"],
        "story_to_last_scene_audio_ms": ms(stages["story"], stages["narration_done"]),
    }


def broker_log_tail(run_dir: Path, lines: int = 40) -> list[str]:
    log = run_dir / "mosquitto.log"
    return log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []


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
            camera_peak = peak_rss_mib(supervisor.pids()["camera"]) if "camera" in supervisor.pids() else None
            supervisor.stop_service("camera")  # the visits below bring their own camera
            clock = StageClock(settings)
            clock.bus.start()
            if not clock.bus.wait_subscribed(10):
                raise RuntimeError("the bench's monitor client could not subscribe")
            visits, failed = [], []
            while len(visits) < args.runs and len(failed) <= args.runs:
                try:
                    visits.append(one_visit(settings, clock))
                except VisitFailed as exc:
                    print(f"bench: visit failed: {exc}", file=sys.stderr)
                    failed.append(str(exc))
            figures["visits"] = len(visits)
            figures["failed_visits"] = failed
            if visits:
                figures["median"] = {key: statistics.median(v[key] for v in visits) for key in visits[0]}
            figures["all"] = visits
            rss = {"camera": camera_peak} | {name: peak_rss_mib(pid) for name, pid in supervisor.pids().items()}
            if supervisor.mosquitto and supervisor.mosquitto.process:
                rss["mosquitto"] = peak_rss_mib(supervisor.mosquitto.process.pid)
            figures["peak_rss_mib"] = rss | {"total": round(sum(v for v in rss.values() if v), 1)}
            figures["clock_disconnects"] = clock.bus.disconnects
            if failed or clock.bus.disconnects:
                figures["broker_log_tail"] = broker_log_tail(Path(tmp))
            clock.bus.stop()
        finally:
            supervisor.stop()
    print(json.dumps({"benchmark": "pipeline", "machine": machine.describe()} | figures, indent=2))
    return 0 if len(visits) == args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
