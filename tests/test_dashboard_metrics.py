"""``/metrics`` as a Prometheus server reads it: parsed by prometheus_client's own text parser.

One family per metric (HELP and TYPE once, samples together), base units (seconds, bytes, ratios), counters
ending in ``_total``, and label values escaped: a stage name holding a quote, a backslash and a newline must
come back from the parser unchanged, not break the exposition or forge a sample.
"""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from kiosk.dashboard.discovery import discovery_messages
from kiosk.dashboard.prometheus import prometheus_text
from kiosk.events import Topics

SUMMARY = {
    "kiosk_id": "k1",
    "stories_today": 3,
    "fallback_stories_today": 1,
    "emotions_today": {"happy": 2, "sad": 1},
    "child_present": True,
    "paused": False,
    "fps": 12.5,
    "latency_ms": {"emotion_to_story_p50": 1500.0, 'evil"} 1\nkiosk_paused{kiosk="k1\\': 7.0},
}
FIGURES = {"rss_mib": 100.0, "cpu_percent": 50.0, "gpu_mib": None, "queue_depth": 0, "outbox": 2}
HEALTH = {
    "emotion": {"state": "online", **FIGURES, "handled": 9, "errors": 1},
    "story": {"state": "offline", **FIGURES, "handled": 4, "errors": 0},
    "web": {"state": "unknown"},
}


def families() -> dict:
    text = prometheus_text(SUMMARY, HEALTH).decode()
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(names) == len(set(names)), f"a family is declared twice: {names}"
    parsed = {family.name: family for family in text_string_to_metric_families(text)}
    assert len(parsed) == len(names), "samples of one family are interleaved with another's"
    return parsed


def value(family, **labels) -> float:
    return next(s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items()))


def test_counters_and_base_units() -> None:
    parsed = families()
    assert parsed["kiosk_stories"].type == "counter"
    assert value(parsed["kiosk_stories"], kiosk="k1") == 3
    assert value(parsed["kiosk_emotions"], emotion="happy") == 2
    assert value(parsed["kiosk_latency_seconds"], stage="emotion_to_story") == 1.5
    assert value(parsed["kiosk_service_resident_memory_bytes"], service="emotion") == 100 * 1024 * 1024
    assert value(parsed["kiosk_service_cpu_ratio"], service="emotion") == 0.5
    assert parsed["kiosk_service_errors"].type == "counter"
    assert value(parsed["kiosk_service_up"], service="story") == 0
    assert not any(name.endswith(("_ms", "_mib", "_today")) for name in parsed)
    assert all(s.name.endswith(("_total", "_created")) for s in parsed["kiosk_stories"].samples)


def test_a_hostile_label_value_is_escaped_not_injected() -> None:
    parsed = families()
    stages = {s.labels["stage"] for s in parsed["kiosk_latency_seconds"].samples}
    assert 'evil"} 1\nkiosk_paused{kiosk="k1\\' in stages
    assert [s.value for s in parsed["kiosk_paused"].samples] == [0], "a forged sample reached kiosk_paused"


def test_home_assistant_discovery_uses_current_keys() -> None:
    configs = {topic: payload for topic, payload in discovery_messages(Topics("k1"))}
    for topic, payload in configs.items():
        config = json.loads(payload)
        assert "object_id" not in config, topic  # dropped in Home Assistant 2026.4
        component = topic.split("/")[1]
        assert config["default_entity_id"] == f"{component}.emotionai_k1_{topic.split('/')[3]}"
    stories = json.loads(next(p for t, p in configs.items() if t.endswith("/stories_today/config")))
    assert stories["state_class"] == "total_increasing"
