"""The broker ACL, proven on a real broker: every account × every topic, read and write.

The policy below is the specification; the test measures what Mosquitto with ``kiosk/broker/acl`` actually allows
and requires the two to be identical. It writes the matrix and its counts to tests/artifacts/acl-matrix.json.
"""

from __future__ import annotations

import json

import pytest

from kiosk.broker import USERS
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.integration

TOPICS = (
    "presence", "face", "receipt/face", "emotion", "story/partial", "story", "illustration", "narration",
    "status/camera", "status/emotion", "status/story", "status/illustrate", "status/narrate", "status/web",
    "status/dashboard",
    "metrics", "error", "summary", "models/deploy", "models/emotion",
    "cmd/pause/set", "cmd/reload-models/set", "HA:homeassistant/sensor/emotionai_x/last_emotion/config",
    "HA:homeassistant/status",
)  # fmt: skip
HA_CONFIG, HA_STATUS = TOPICS[-2], TOPICS[-1]
COMMANDS = {"cmd/pause/set", "cmd/reload-models/set"}

STATUSES = {t for t in TOPICS if t.startswith("status/")}
STAFF_READS = {"presence", "emotion", "story", "metrics", "error", "summary", "models/deploy", "models/emotion"}
READS: dict[str, set[str]] = {
    "camera": {"status/camera", "receipt/face"} | COMMANDS,
    "emotion": {"face", "status/emotion"} | COMMANDS,
    "story": {"emotion", "status/story"} | COMMANDS,
    "illustrate": {"story", "status/illustrate"} | COMMANDS,
    "narrate": {"story/partial", "story", "status/narrate"} | COMMANDS,
    "web": {"presence", "story/partial", "story", "illustration", "narration", "status/web"} | COMMANDS,
    "dashboard": {"presence", "emotion", "story", "metrics", "error", "models/deploy", HA_STATUS} | STATUSES | COMMANDS,
    "deploy": {"models/deploy"},
    "monitor": {"presence", "emotion", "story/partial", "story", "illustration", "narration", "metrics", "error"}
    | {"summary"}
    | {"models/deploy", "models/emotion"}
    | STATUSES,
    "supervisor": STATUSES,
    "staff": STAFF_READS | STATUSES | {HA_CONFIG, HA_STATUS},
    "homeassistant": STAFF_READS | STATUSES | {HA_CONFIG, HA_STATUS},
}
WRITES: dict[str, set[str]] = {
    "camera": {"presence", "face", "status/camera", "error", "metrics"},
    "emotion": {"receipt/face", "emotion", "status/emotion", "error", "metrics"},
    "story": {"story", "story/partial", "status/story", "error", "metrics"},
    "illustrate": {"illustration", "status/illustrate", "error", "metrics"},
    "narrate": {"narration", "status/narrate", "error", "metrics"},
    "web": {"status/web", "error", "metrics"},
    "dashboard": {"status/dashboard", "metrics", "error", "summary", "models/emotion", HA_CONFIG, HA_STATUS} | COMMANDS,
    "deploy": {"models/deploy", "cmd/reload-models/set"},
    "monitor": set(),
    "supervisor": set(),
    "staff": COMMANDS | {HA_STATUS},
    "homeassistant": COMMANDS | {HA_STATUS},
}
ALLOWED = {"Success", "No matching subscribers"}


def full_topic(kiosk_id: str, topic: str) -> str:
    return topic[3:] if topic.startswith("HA:") else f"kiosk/{kiosk_id}/{topic}"


def markers() -> list[tuple[str, str]]:
    """(writer, topic) pairs that give every account something it may read, sent after everything else."""
    chosen: list[tuple[str, str]] = []
    for reader in USERS:
        if not any(topic in READS[reader] for _, topic in chosen):
            topic = sorted(READS[reader])[0]
            chosen.append((next(w for w in USERS if topic in WRITES[w]), topic))
    return chosen


def test_every_account_reads_and_writes_exactly_what_the_policy_says(settings, raw):
    """Writes are judged by the broker's own answer (PUBACK "Not authorized"); reads by what arrives before a
    marker each reader may see, published after every other message was acknowledged: the broker delivers
    to one client in order, so a forbidden delivery, however slow, would come before the marker."""
    assert set(READS) == set(WRITES) == set(USERS)
    assert all(any(t in READS[a] for a in USERS) for t in TOPICS)  # every write has a reader to observe it
    kid = settings.kiosk_id
    by_topic = {full_topic(kid, t): t for t in TOPICS}
    clients = {}
    for account in USERS:
        clients[account] = raw(account)
        assert clients[account].connect() == "Success", account
        assert clients[account].subscribe(f"kiosk/{kid}/#") == ["Granted QoS 1"]
        assert clients[account].subscribe("homeassistant/#") == ["Granted QoS 1"]

    answers = {
        (account, topic): clients[account].publish(full_topic(kid, topic), json.dumps({"writer": account}).encode())
        for account in USERS
        for topic in TOPICS
    }  # every account tries every topic; the payload says who wrote it
    assert set(answers.values()) <= ALLOWED | {"Not authorized"}, set(answers.values())
    for writer, topic in markers():
        assert clients[writer].publish(full_topic(kid, topic), b'{"writer": "marker"}') in ALLOWED
    for account, client in clients.items():
        assert client.wait_message(lambda m: m[1] == b'{"writer": "marker"}'), f"no marker reached {account}"

    observed_reads = {a: set() for a in USERS}
    delivered_writes = {a: set() for a in USERS}
    for reader, client in clients.items():
        for topic, payload, _ in client.received():
            writer = json.loads(payload)["writer"]
            if writer != "marker":
                observed_reads[reader].add(by_topic[topic])
                delivered_writes[writer].add(by_topic[topic])
    matrix = {
        account: {
            topic: {"read": topic in observed_reads[account], "write": answers[account, topic] in ALLOWED}
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
        assert {t for t in TOPICS if matrix[account][t]["write"]} == WRITES[account], f"{account} writes differ"
        assert delivered_writes[account] == WRITES[account], f"what {account} may write did not all arrive"
    # the privacy rule in one line: the face crop reaches the emotion service alone
    assert [a for a in USERS if "face" in observed_reads[a]] == ["emotion"]
