"""Broker-kill benchmark (JSON): SIGKILL the kiosk's Mosquitto again and again and count what was lost.

`kiosk run` as the soak runs it (its own broker, all services, the supervisor that restarts the broker), the
camera on a face / empty-room photo folder so children keep arriving. ``--kills`` times the broker is killed
with SIGKILL (no clean shutdown, no last save): every other kill the moment a child's emotion is out and
their story is not (mid-story), the others at a random moment. Kills are ``--interval-s`` apart, longer than
the supervisor's healthy period, so each restart is immediate and the figure is the kiosk's, not the backoff's.

A visit (one ``session_id``) is *lost* when the child arrived and no story came for it; *handled twice*
when two stories came for it. Visits that arrived in the last ``--grace-s`` before the end are not judged.
The monitor account reads with a persistent session, as the page's web service does.

    python -m bench.broker_kills --kills 20 > bench/results/broker-kills.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from bench import machine
from bench.soak import SERVICES, kiosk_settings
from kiosk.bus import Bus
from kiosk.config import Settings
from kiosk.events import EmotionEvent, PresenceEvent, StoryEvent, Topics
from kiosk.service import broker_address
from kiosk.supervisor import Supervisor


class VisitLedger:
    """Per visit: when the child arrived, when the emotion came out, how many stories came."""

    def __init__(self, settings: Settings) -> None:
        self.topics = Topics(settings.kiosk_id)
        self.lock = threading.Lock()
        self.arrived: dict[str, float] = {}
        self.emotion_at: dict[str, float] = {}
        self.stories: dict[str, int] = defaultdict(int)
        self.story_times: list[float] = []
        self.bus = Bus(broker_address(settings, "monitor"), "kills-ledger", persistent=True)
        self.bus.subscribe(self.topics.presence, self._presence)
        self.bus.subscribe(self.topics.emotion, self._emotion)
        self.bus.subscribe(self.topics.story, self._story)

    def _presence(self, message) -> None:
        event = PresenceEvent.model_validate_json(message.payload)
        if event.state == "arrived":
            with self.lock:
                self.arrived.setdefault(event.session_id, time.monotonic())

    def _emotion(self, message) -> None:
        event = EmotionEvent.model_validate_json(message.payload)
        with self.lock:
            self.emotion_at.setdefault(event.session_id, time.monotonic())

    def _story(self, message) -> None:
        event = StoryEvent.model_validate_json(message.payload)
        with self.lock:
            self.stories[event.session_id] += 1
            self.story_times.append(time.monotonic())

    def mid_story(self) -> bool:
        """A child's emotion is out and their story is not."""
        with self.lock:
            return any(self.stories.get(s, 0) == 0 for s in self.emotion_at)

    def next_story_after(self, moment: float) -> float | None:
        with self.lock:
            return next((t - moment for t in self.story_times if t > moment), None)


def broker_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def run(kills: int, interval_s: float, grace_s: float, face_photo: Path | None, seed: int) -> dict:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="kiosk-kills-") as tmp:
        settings = kiosk_settings(Path(tmp), face_photo, "kills")
        supervisor = Supervisor(settings, SERVICES)
        ledger: VisitLedger | None = None
        records = []
        try:
            supervisor.start()
            threading.Thread(target=supervisor.watch, daemon=True).start()
            ledger = VisitLedger(settings)
            ledger.bus.start()
            time.sleep(20)  # the first visits, before any kill
            for number in range(kills):
                started = time.monotonic()
                mid_story = number % 2 == 0
                if mid_story:
                    while not ledger.mid_story() and time.monotonic() - started < interval_s:
                        time.sleep(0.02)
                else:
                    time.sleep(rng.uniform(2, 10))
                was_mid_story = ledger.mid_story()
                killed_at = time.monotonic()
                old_pid = supervisor.mosquitto.process.pid
                os.kill(old_pid, signal.SIGKILL)
                while time.monotonic() - killed_at < 60:  # back: a new broker process that accepts connections
                    if supervisor.mosquitto.process.pid != old_pid and broker_accepts(settings.broker.port):
                        break
                    time.sleep(0.02)
                back_s = time.monotonic() - killed_at
                time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
                story_s = ledger.next_story_after(killed_at)
                records.append(
                    {
                        "kill": number + 1,
                        "aimed_mid_story": mid_story,
                        "mid_story": was_mid_story,
                        "broker_back_s": round(back_s, 2),
                        "next_story_s": None if story_s is None else round(story_s, 2),
                    }
                )
                print(f"kills: {records[-1]}", file=sys.stderr, flush=True)
            time.sleep(grace_s)
        finally:
            if ledger is not None:
                ledger.bus.stop()
            supervisor.stop()
        end = time.monotonic()
        with ledger.lock:
            judged = [s for s, t in ledger.arrived.items() if end - t > grace_s]
            lost = [s for s in judged if ledger.stories.get(s, 0) == 0]
            twice = [s for s, n in ledger.stories.items() if n > 1]
        recoveries = [r["next_story_s"] for r in records if r["next_story_s"] is not None]
        backs = [r["broker_back_s"] for r in records]
        return {
            "benchmark": "broker-kills",
            "machine": machine.describe(),
            "kills": kills,
            "kills_mid_story": sum(r["mid_story"] for r in records),
            "visits_judged": len(judged),
            "visits_lost": len(lost),
            "visits_handled_twice": len(twice),
            "broker_back_s_median": round(statistics.median(backs), 2) if backs else None,
            "broker_back_s_max": max(backs, default=None),
            "next_story_s_median": round(statistics.median(recoveries), 2) if recoveries else None,
            "broker_restarts": supervisor.broker_restarts,
            "records": records,
            "lost_sessions": lost,
            "twice_sessions": twice,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--interval-s", type=float, default=62.0, help="seconds between kills (default 62)")
    parser.add_argument("--grace-s", type=float, default=30.0, help="last arrivals not judged (default 30)")
    parser.add_argument("--photo", type=Path, default=None, help="the face photo (default: the sample photo)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.kills, args.interval_s, args.grace_s, args.photo, args.seed), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
