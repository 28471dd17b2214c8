"""``/metrics``: the summary and each service's latest metrics in Prometheus' text format.

Written with ``prometheus-client`` rather than by hand, so that label values are escaped, each metric is one
family (its HELP and TYPE once, its samples together) and names follow Prometheus' conventions: base units
(seconds, bytes, ratios), counters ending in ``_total``. The daily counts are counters that start at local
midnight and reset then; ``rate()`` and ``increase()`` read the reset as one.
No child data and no image ever reaches these figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MIB = 1024 * 1024


class KioskCollector(Collector):
    """One scrape's families from a summary and the services' health (snapshots taken by the caller)."""

    def __init__(self, summary: dict, health: dict) -> None:
        self.summary, self.health = summary, health

    def collect(self) -> Iterator[Metric]:
        kiosk = str(self.summary.get("kiosk_id", ""))
        yield from self._visits(kiosk)
        yield from self._services(kiosk)

    def _visits(self, kiosk: str) -> Iterator[Metric]:
        summary = self.summary
        stories = CounterMetricFamily("kiosk_stories", "stories told since local midnight", labels=["kiosk"])
        stories.add_metric([kiosk], summary.get("stories_today") or 0)
        template = CounterMetricFamily(
            "kiosk_template_stories", "template stories (LLM scene refused) since local midnight", labels=["kiosk"]
        )
        template.add_metric([kiosk], summary.get("fallback_stories_today") or 0)
        emotions = CounterMetricFamily(
            "kiosk_emotions", "emotions recognised since local midnight", labels=["kiosk", "emotion"]
        )
        for emotion, count in sorted((summary.get("emotions_today") or {}).items()):
            emotions.add_metric([kiosk, emotion], count)
        present = GaugeMetricFamily("kiosk_child_present", "1 while a child is at the kiosk", labels=["kiosk"])
        present.add_metric([kiosk], int(bool(summary.get("child_present"))))
        paused = GaugeMetricFamily("kiosk_paused", "1 while staff paused the kiosk", labels=["kiosk"])
        paused.add_metric([kiosk], int(bool(summary.get("paused"))))
        yield from (stories, template, emotions, present, paused)
        if summary.get("fps") is not None:
            fps = GaugeMetricFamily(
                "kiosk_camera_frames_per_second", "camera frames per second with detection", labels=["kiosk"]
            )
            fps.add_metric([kiosk], summary["fps"])
            yield fps
        latency = GaugeMetricFamily(
            "kiosk_latency_seconds", "median latency of recent visits, per stage", labels=["kiosk", "stage"]
        )
        for stage, milliseconds in sorted((summary.get("latency_ms") or {}).items()):
            latency.add_metric([kiosk, stage.removesuffix("_p50")], milliseconds / 1000)
        yield latency

    def _services(self, kiosk: str) -> Iterator[Metric]:
        labels = ["kiosk", "service"]
        up = GaugeMetricFamily("kiosk_service_up", "1 while the service is online", labels=labels)
        memory = GaugeMetricFamily("kiosk_service_resident_memory_bytes", "resident memory", labels=labels)
        cpu = GaugeMetricFamily(
            "kiosk_service_cpu_ratio", "CPU time over the last interval, as a fraction of one core", labels=labels
        )
        gpu = GaugeMetricFamily("kiosk_service_gpu_memory_bytes", "GPU memory allocated by torch", labels=labels)
        queue = GaugeMetricFamily("kiosk_service_queue_depth", "events received and not yet handled", labels=labels)
        outbox = GaugeMetricFamily("kiosk_service_outbox_messages", "events waiting for the broker", labels=labels)
        handled = CounterMetricFamily("kiosk_service_handled_events", "events handled since start", labels=labels)
        errors = CounterMetricFamily("kiosk_service_errors", "errors since start", labels=labels)
        for service, figures in sorted(self.health.items()):
            key = [kiosk, service]
            up.add_metric(key, int(figures.get("state") == "online"))
            if "rss_mib" not in figures:
                continue  # no metrics from this service yet
            memory.add_metric(key, figures["rss_mib"] * MIB)
            cpu.add_metric(key, figures["cpu_percent"] / 100)
            if figures.get("gpu_mib") is not None:
                gpu.add_metric(key, figures["gpu_mib"] * MIB)
            queue.add_metric(key, figures["queue_depth"])
            outbox.add_metric(key, figures["outbox"])
            handled.add_metric(key, figures.get("handled", 0))
            errors.add_metric(key, figures["errors"])
        yield from (up, memory, cpu, gpu, queue, outbox, handled, errors)


def prometheus_text(summary: dict, health: dict) -> bytes:
    """The exposition for one scrape (a registry per scrape: the figures are snapshots, not live objects)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KioskCollector(summary, health))
    return generate_latest(registry)
