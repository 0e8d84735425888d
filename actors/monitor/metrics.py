"""``/metrics``: the cluster as the monitor sees it, in the Prometheus text format.

Queue gauges keep the names ``actors exporter`` uses, prefixed ``actors_monitor_`` so that a
Prometheus scraping both keeps them apart; task counts by state exist only here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_QUEUE = (  # field of a queue row, metric, help
    ("pending", "actors_monitor_queue_lag", "Messages waiting for an actor, not yet delivered."),
    ("in_flight", "actors_monitor_queue_in_flight", "Messages delivered, not acked yet."),
    ("dead", "actors_monitor_dead_letters", "Dead letters of an actor."),
    ("rate", "actors_monitor_task_rate", "Runs of an actor ended per second (5 minutes)."),
)


class _Snapshot:
    """A collector over one dashboard reading."""

    def __init__(self, reading: dict[str, Any]) -> None:
        self.reading = reading

    def collect(self) -> Iterator[Metric]:
        reading = self.reading
        states = GaugeMetricFamily(
            "actors_monitor_tasks", "Tasks in the monitor's index by state.", labels=["state"]
        )
        for state, count in reading["states"].items():
            states.add_metric([state], count)
        yield states
        for field, name, text in _QUEUE:
            family = GaugeMetricFamily(name, text, labels=["actor"])
            for row in reading["queues"]:
                if field in row:
                    family.add_metric([row["actor"]], row[field])
            yield family
        yield GaugeMetricFamily(
            "actors_monitor_workers_online", "Workers in the registry.", len(reading["workers"])
        )
        yield GaugeMetricFamily(
            "actors_monitor_tasks_tracked", "Tasks held in the index.", reading["tasks_tracked"]
        )
        yield GaugeMetricFamily(
            "actors_monitor_events_seen", "Events read since start.", reading["events_seen"]
        )
        lag = reading["events_lag"]
        yield GaugeMetricFamily(
            "actors_monitor_events_age_seconds",
            "Seconds since the newest event read (-1: none yet).",
            -1 if lag is None else lag,
        )


def render_metrics(reading: dict[str, Any]) -> tuple[bytes, str]:
    """The body and content type of ``/metrics`` for a dashboard reading."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(reading))
    return generate_latest(registry), CONTENT_TYPE_LATEST
