"""Thousands of hostile payloads on every topic a kiosk service reads, on a real broker, into the real services.

Each payload is sent by the account the broker lets write that topic (a compromised service, a staff
dashboard, the deployer): random bytes, the wrong JSON types, deep nesting, huge strings, extreme numbers,
NaN and Infinity, and valid events with one field made impossible. The promise: no service stops, every
bad payload becomes exactly one dead letter on ``error`` from each service that reads it (with a short
reason), memory stays bounded, and a real visit after the flood still gets its story and pictures.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import logging
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from kiosk.camera.service import CameraService
from kiosk.config import DashboardConfig, Settings, StoryConfig
from kiosk.dashboard.service import DashboardService
from kiosk.emotion.service import EmotionService
from kiosk.events import (
    Command,
    DeployResult,
    EmotionEvent,
    ErrorEvent,
    HeroLook,
    IllustrationEvent,
    NarrationEvent,
    PresenceEvent,
    Scene,
    ServiceMetrics,
    StatusPayload,
    StoryEvent,
    StoryPartialEvent,
    Topics,
)
from kiosk.illustrate.service import IllustrateService
from kiosk.story.service import StoryService
from kiosk.voice.audio import to_wav
from kiosk.voice.service import NarrateService
from kiosk.web.service import WebService
from tests.conftest import start_bus, wait_for
from tests.servicekit import running
from tests.test_pipeline import sample_face_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAYLOADS = int(os.environ.get("KIOSK_FUZZ_PAYLOADS", "10000"))
MAX_GROWTH_MIB = 50

# topic under kiosk/<id>/ -> (the account that may write it, the services that read it)
READERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "presence": ("camera", ("web", "dashboard")),
    "face": ("camera", ("emotion",)),
    "emotion": ("emotion", ("story", "dashboard")),
    "story/partial": ("story", ("narrate", "web")),
    "story": ("story", ("illustrate", "narrate", "web", "dashboard")),
    "illustration": ("illustrate", ("web",)),
    "narration": ("narrate", ("web",)),
    "status/emotion": ("emotion", ("dashboard",)),
    "metrics": ("camera", ("dashboard",)),
    "error": ("story", ("dashboard",)),
    "models/deploy": ("deploy", ("dashboard",)),
    "cmd/pause/set": ("staff", ("camera",)),
    "cmd/reload-models/set": ("staff", ("emotion", "story", "illustrate", "narrate")),
}


def valid_payloads() -> dict[str, dict]:
    """One valid payload per topic, as JSON objects: the hostile ones are made from these."""
    scene = Scene(text="Milo smiled.", illustration_prompt="a child", setting="meadow", objects=["sun"], mood="happy")
    story = StoryEvent(
        session_id="v", emotion="happy", title="T", scenes=[scene], hero=HeroLook(description="a child"),
        generator="template", fallback=False, latency_ms=1,
    )  # fmt: skip
    made = {
        "presence": PresenceEvent(session_id="v", state="arrived"),
        "face": sample_face_event("v"),
        "emotion": EmotionEvent(
            session_id="v",
            emotion="happy",
            detected="happy",
            confidence=0.9,
            probabilities={"happy": 0.9},
            runtime="onnxruntime-cpu",
            model="m@1",
            latency_ms=1,
        ),
        "story/partial": StoryPartialEvent(session_id="v", seq=0, text="T\nMilo"),
        "story": story,
        "illustration": IllustrationEvent(
            session_id="v",
            story_id=story.event_id,
            scene_index=0,
            scene_count=1,
            media_type="image/svg+xml",
            image_b64=base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg"/>').decode(),
            illustrator="x",
            latency_ms=1,
        ),
        "narration": NarrationEvent(
            session_id="v",
            scene_index=0,
            parts=1,
            text="Milo smiled.",
            media_type="audio/wav",
            audio_b64=base64.b64encode(to_wav(np.zeros(2205, dtype=np.float32), 22050)).decode(),
            duration_s=0.1,
            words=[{"start": 0, "end": 4, "t0": 0, "t1": 0.05}],
            voice="v",
            latency_ms=1,
        ),
        "status/emotion": StatusPayload(state="online", service="emotion"),
        "metrics": ServiceMetrics(
            service="camera", uptime_s=1, rss_mib=1, cpu_percent=1, queue_depth=0, outbox=0, handled=0, errors=0
        ),
        "error": ErrorEvent(service="camera", topic="t", reason="r", payload_excerpt=""),
        "models/deploy": DeployResult(ok=True, action="installed", seconds=1),
        "cmd/pause/set": Command(value="ON"),
        "cmd/reload-models/set": Command(value="PRESS"),
    }
    return {topic: json.loads(model.model_dump_json(by_alias=True)) for topic, model in made.items()}


def hostile_payloads(rng: random.Random, template: dict) -> Callable[[], bytes]:
    """A generator of payloads that no schema accepts, in every shape an attacker would try."""
    numbers = ["1e20", "-1", "1e400", "-1e400", "NaN", "Infinity", "-Infinity", str(10**400), "1e308"]

    def mutated(value: object) -> bytes:
        return json.dumps(template | {"ts": value}).encode()

    makers: list[Callable[[], bytes]] = [
        lambda: rng.randbytes(rng.randint(0, 2000)),
        lambda: rng.choice([b"[]", b"1", b'"text"', b"null", b"true", b"[1, 2]", b'{"a": 1}', b"{}x", b"[{}]"]),
        lambda: json.dumps([template]).encode(),
        lambda: (lambda n: b"[" * n + b"]" * n)(rng.choice([100, 1000, 5000, 100_000])),
        lambda: (lambda n: b'{"a": ' * n + b"1" + b"}" * n)(rng.choice([100, 3000, 20_000])),
        lambda: json.dumps(template | {"session_id": "x" * rng.choice([65, 10_000, 300_000])}).encode(),
        lambda: json.dumps(template | {"x" * rng.choice([50, 5000]): "<script>alert(1)</script>"}).encode(),
        lambda: re.sub(r'"ts": [0-9.e+-]+', '"ts": ' + rng.choice(numbers), json.dumps(template), count=1).encode(),
        lambda: mutated(rng.choice([1e20, -5.0, time.time() + 10 * 86400, "now", None, [1], {"a": 1}])),
        lambda: json.dumps({key: rng.choice([None, [], {}, -1e308, "\u0000\ud7ff"]) for key in template}).encode(),
    ]
    return lambda: rng.choice(makers)()


class DeadLetters:
    """Counts error events per (service, topic) without keeping them (memory is measured)."""

    def __init__(self, base: str) -> None:
        self.base, self.counts, self.bad_reasons = base + "/", Counter(), Counter()
        self.lock = threading.Lock()

    def __call__(self, message) -> None:
        try:
            letter = ErrorEvent.model_validate_json(message.payload)
        except ValueError:
            return  # one of the attacks on `error` itself
        with self.lock:
            self.counts[(letter.service, letter.topic.removeprefix(self.base))] += 1
            if not 0 < len(letter.reason) <= 500:
                self.bad_reasons[(letter.service, letter.topic.removeprefix(self.base))] += 1

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.fixture
def kiosk(settings: Settings) -> Settings:
    from kiosk.broker import free_port

    settings.run_dir.mkdir(parents=True, exist_ok=True)
    (settings.run_dir / "camera-paused").touch()  # the camera only answers commands here
    return settings.model_copy(
        update={
            "dashboard": DashboardConfig(port=free_port(), home_assistant=False),
            "story": StoryConfig(backend="template"),
        }
    )


def test_ten_thousand_hostile_payloads_crash_nothing_each_is_a_dead_letter_and_memory_stays_flat(
    kiosk, connect, caplog
):
    caplog.set_level(logging.ERROR, logger="kiosk")  # 10,000 refusals are logged as warnings: not kept here
    topics = Topics(kiosk.kiosk_id)
    rng = random.Random(13)
    templates = valid_payloads()
    makers = {topic: hostile_payloads(rng, templates[topic]) for topic in READERS}
    letters = DeadLetters(topics.base)
    watcher = connect("monitor")
    watcher.subscribe(topics.error, letters)
    start_bus(watcher)
    services = [
        DashboardService(kiosk), CameraService(kiosk), EmotionService(kiosk), StoryService(kiosk),
        IllustrateService(kiosk), NarrateService(kiosk), WebService(kiosk),
    ]  # fmt: skip
    sent: Counter[str] = Counter()

    def flood(count: int) -> None:
        order = list(READERS)
        for index in range(count):
            topic = order[index % len(order)]
            account = READERS[topic][0]
            info = senders[account].publish(f"{topics.base}/{topic}", makers[topic]())
            sent[topic] += 1
            if index % 200 == 199:
                info.wait_for_publish(30)  # acknowledged by the broker; the rest of the batch went before it
            if index % 1000 == 999:  # each batch handled before the next: the broker's queues stay far from full
                assert wait_for(lambda: letters.total() >= expected_letters(), timeout=120, interval=0.1), missing()

    def expected_letters() -> int:
        return sum(sent[topic] * len(readers) for topic, (_, readers) in READERS.items())

    def missing() -> dict:
        return {
            (reader, topic): sent[topic] - letters.counts[(reader, topic)]
            for topic, (_, readers) in READERS.items()
            for reader in readers
            if letters.counts[(reader, topic)] != sent[topic]
        }

    with contextlib.ExitStack() as stack:
        for service in services:
            stack.enter_context(running(service))
        for service in services:
            assert service.bus.wait_subscribed(15), service.name
        # the broker binds a client to its account (one connection each): a service account attacks from the
        # service's own connection, as a compromised service would; staff and deploy from their own clients
        senders = {service.name: service.bus for service in services}
        senders |= {account: start_bus(connect(account)) for account in ("staff", "deploy")}
        flood(int(os.environ.get("KIOSK_FUZZ_WARMUP", "600")))  # warm-up: caches, pydantic validators, paho buffers
        assert wait_for(lambda: letters.total() >= expected_letters(), timeout=120, interval=0.2), missing()
        gc.collect()
        before = rss_mib()
        started = time.monotonic()
        flood(PAYLOADS)
        assert wait_for(lambda: letters.total() >= expected_letters(), timeout=600, interval=0.5), missing()
        seconds = time.monotonic() - started
        gc.collect()
        grown = rss_mib() - before
        for service in services:
            assert service.bus.connected.is_set() and not service.bus.handler_stuck(30), service.name

        # the positive control: a real visit still goes all the way through every service after the flood
        face = sample_face_event("visit-after-the-flood")
        senders["camera"].publish(topics.presence, PresenceEvent(session_id=face.session_id, state="arrived").to_json())
        senders["camera"].publish(topics.face, face.to_json())
        web = services[-1]
        assert wait_for(lambda: web.state.snapshot()["pictures"], timeout=60), web.state.snapshot()
        assert web.state.snapshot()["session_id"] == face.session_id
        dashboard = services[0]
        assert wait_for(lambda: dashboard.view.summary().stories_today == 1, timeout=30)

    print(f"\n{PAYLOADS} hostile payloads in {seconds:.1f} s; RSS grew {grown:.1f} MiB; letters {dict(letters.counts)}")
    for topic, (_, readers) in READERS.items():
        for reader in readers:
            assert letters.counts[(reader, topic)] == sent[topic], (reader, topic, letters.counts[(reader, topic)])
    assert not letters.bad_reasons, f"reasons empty or over 500 characters: {dict(letters.bad_reasons)}"
    assert grown < MAX_GROWTH_MIB, f"RSS grew by {grown:.1f} MiB over {PAYLOADS} hostile payloads"
