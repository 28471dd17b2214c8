"""The broker ACL, proven on a real broker: every account × every topic, read and write.

The policy below is the specification; the test measures what Mosquitto with ``broker/acl`` actually allows
and requires the two to be identical. It writes the matrix and its counts to tests/artifacts/acl-matrix.json.
"""

from __future__ import annotations

import json
import time

import pytest

from kiosk.broker import USERS
from tests.conftest import ARTIFACTS, Recorder, start_bus, wait_for

pytestmark = pytest.mark.integration

TOPICS = (
    "presence", "face", "emotion", "story/partial", "story", "illustration",
    "status/camera", "status/emotion", "status/story", "status/illustrate", "status/web", "status/dashboard",
    "metrics", "error", "summary", "models/deploy", "models/emotion",
    "cmd/pause/set", "cmd/reload-models/set", "HA:homeassistant/sensor/emotionai_x/last_emotion/config",
    "HA:homeassistant/status",
)  # fmt: skip
HA_CONFIG, HA_STATUS = TOPICS[-2], TOPICS[-1]
COMMANDS = {"cmd/pause/set", "cmd/reload-models/set"}

READS: dict[str, set[str]] = {
    "camera": {"status/camera"} | COMMANDS,
    "emotion": {"face", "status/emotion"} | COMMANDS,
    "story": {"emotion", "status/story"} | COMMANDS,
    "illustrate": {"story", "status/illustrate"} | COMMANDS,
    "web": {"presence", "story/partial", "story", "illustration", "status/web"} | COMMANDS,
    "dashboard": {"presence", "emotion", "story", "metrics", "error", "models/deploy", HA_STATUS}
    | {t for t in TOPICS if t.startswith("status/")},
    "deploy": {"models/deploy"},
    "monitor": {"presence", "emotion", "story/partial", "story", "illustration", "metrics", "error", "summary"}
    | {"models/deploy", "models/emotion"}
    | {t for t in TOPICS if t.startswith("status/")},
    "staff": {"presence", "emotion", "story", "metrics", "error", "summary", "models/deploy", "models/emotion"}
    | {t for t in TOPICS if t.startswith("status/")}
    | {HA_CONFIG, HA_STATUS},
}
WRITES: dict[str, set[str]] = {
    "camera": {"presence", "face", "status/camera", "error", "metrics"},
    "emotion": {"emotion", "status/emotion", "error", "metrics"},
    "story": {"story", "story/partial", "status/story", "error", "metrics"},
    "illustrate": {"illustration", "status/illustrate", "error", "metrics"},
    "web": {"status/web", "error", "metrics"},
    "dashboard": {"status/dashboard", "metrics", "error", "summary", "models/emotion", HA_CONFIG, HA_STATUS} | COMMANDS,
    "deploy": {"models/deploy", "cmd/reload-models/set"},
    "monitor": set(),
    "staff": COMMANDS | {HA_STATUS},
}


def full_topic(kiosk_id: str, topic: str) -> str:
    return topic[3:] if topic.startswith("HA:") else f"kiosk/{kiosk_id}/{topic}"


def test_every_account_reads_and_writes_exactly_what_the_policy_says(settings, connect):
    assert set(READS) == set(WRITES) == set(USERS)
    kid = settings.kiosk_id
    by_topic = {full_topic(kid, t): t for t in TOPICS}
    received: dict[str, Recorder] = {}
    clients = {}
    for account in USERS:
        received[account] = Recorder()
        clients[account] = connect(account)
        clients[account].subscribe(f"kiosk/{kid}/#", received[account])
        clients[account].subscribe("homeassistant/#", received[account])
        start_bus(clients[account], settle=0)
    time.sleep(0.5)

    for account in USERS:  # every account tries every topic; the payload says who wrote it
        for topic in TOPICS:
            info = clients[account].publish(full_topic(kid, topic), json.dumps({"writer": account}).encode())
            info.wait_for_publish(5)
    expected_deliveries = sum(1 for writer in USERS for t in WRITES[writer] for reader in USERS if t in READS[reader])
    wait_for(lambda: sum(len(r.payloads()) for r in received.values()) >= expected_deliveries, timeout=10)
    time.sleep(0.5)  # anything the policy forbids would have arrived by now too

    observed_reads = {a: set() for a in USERS}
    observed_writes = {a: set() for a in USERS}
    for reader, recorder in received.items():
        for topic, payload in recorder.messages:
            name = by_topic[topic]
            observed_reads[reader].add(name)
            observed_writes[json.loads(payload)["writer"]].add(name)
    # a write is only observable through a reader: every topic has one in the policy
    assert all(any(t in READS[a] for a in USERS) for t in TOPICS)

    matrix = {
        account: {
            topic: {"read": topic in observed_reads[account], "write": topic in observed_writes[account]}
            for topic in TOPICS
        }
        for account in USERS
    }
    checks = [cell[kind] for row in matrix.values() for cell in row.values() for kind in ("read", "write")]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "acl-matrix.json").write_text(
        json.dumps({"allowed": sum(checks), "denied": len(checks) - sum(checks), "matrix": matrix}, indent=1)
    )
    for account in USERS:
        assert observed_reads[account] == READS[account], f"{account} reads differ from the policy"
        assert observed_writes[account] == WRITES[account], f"{account} writes differ from the policy"
    # the privacy rule in one line: the face crop reaches the emotion service alone
    assert [a for a in USERS if "face" in observed_reads[a]] == ["emotion"]
