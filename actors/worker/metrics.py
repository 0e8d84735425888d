"""Prometheus metrics of one worker process (``actors run --metrics-port``).

Needs ``prometheus-client``: ``pip install 'actors[metrics]'``. Task outcomes are counted by
wrapping the worker's :class:`~actors.worker.outcomes.Outcomes`, where every run ends; the
rest (in flight, pull loops, connection) is read from the worker at scrape time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from actors.errors import ConfigurationError, Revoked
from actors.worker.worker import Worker

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ConfigurationError(
        "metrics need prometheus-client: pip install 'actors[metrics]'"
    ) from exc

_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))
_COUNTED = {  # Outcomes method: (outcome label, position of the message argument)
    "succeeded": ("succeeded", 1),
    "failed": ("failed", 1),
    "retry": ("retried", 0),
    "revoked": ("revoked", 0),
}
_STARTED_LIMIT = 100_000  # runs timed at once; a bound so a leak cannot grow for ever


class WorkerMetrics:
    """The metrics of ``worker``; :meth:`render` gives the Prometheus text format."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.registry = CollectorRegistry(auto_describe=True)
        self.tasks = Counter(
            "actors_tasks",
            "Task runs finished, by actor and outcome (succeeded, failed, retried, revoked).",
            ["actor", "outcome"],
            registry=self.registry,
        )
        self.runtime = Histogram(
            "actors_task_runtime_seconds",
            "Seconds from the start of a run to its outcome, by actor.",
            ["actor"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "actors_dead_letters",
            "Messages this worker dead-lettered, by actor.",
            ["actor"],
            registry=self.registry,
        )
        self.registry.register(_WorkerCollector(worker))
        self._started: dict[str, float] = {}

    def instrument(self) -> None:
        """Count outcomes from now on: wrap the worker's Outcomes methods (after start)."""
        outcomes = self.worker.outcomes
        for name, (outcome, position) in _COUNTED.items():
            setattr(outcomes, name, self._counting(getattr(outcomes, name), outcome, position))
        setattr(outcomes, "done_before", self._timing(outcomes.done_before))  # noqa: B010
        setattr(outcomes, "reject", self._rejecting(outcomes.reject))  # noqa: B010

    def _timing(self, method: Callable[..., Awaitable[bool]]) -> Callable[..., Awaitable[bool]]:
        # done_before is the first step of every run: the runtime is measured from there.
        @functools.wraps(method)
        async def timed(message: Any, *args: Any) -> bool:
            if len(self._started) >= _STARTED_LIMIT:
                self._started.clear()  # runs that ended without an outcome (lost connection)
            self._started[message.id] = time.perf_counter()
            done = await method(message, *args)
            if done:  # a redelivery of a finished run: no outcome follows
                self._started.pop(message.id, None)
            return done

        return timed

    def _rejecting(self, method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(method)
        async def rejected(delivery: Any, task: str, *args: Any, **kwargs: Any) -> None:
            self.dead_letters.labels(task).inc()
            await method(delivery, task, *args, **kwargs)

        return rejected

    def _counting(
        self, method: Callable[..., Awaitable[None]], outcome: str, position: int
    ) -> Callable[..., Awaitable[None]]:
        @functools.wraps(method)
        async def counted(*args: Any, **kwargs: Any) -> None:
            message = args[position]
            terminated = outcome == "failed" and isinstance(args[2], Revoked)
            self.tasks.labels(message.task, "revoked" if terminated else outcome).inc()
            began = self._started.pop(message.id, None)
            if began is not None:
                self.runtime.labels(message.task).observe(time.perf_counter() - began)
            await method(*args, **kwargs)

        return counted

    def render(self) -> tuple[int, str, bytes]:
        """The ``/metrics`` answer."""
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)


class _WorkerCollector(Collector):
    """Gauges read from the worker at scrape time."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        worker = self.worker
        yield GaugeMetricFamily(
            "actors_tasks_in_flight",
            "Messages in hand: running or waiting for a slot.",
            value=worker.active,
        )
        yield GaugeMetricFamily(
            "actors_worker_processed",
            "Messages finished by this worker.",
            value=worker.processed,
        )
        yield GaugeMetricFamily(
            "actors_worker_concurrency",
            "Tasks this worker runs at once at most.",
            value=worker.concurrency,
        )
        connected = GaugeMetricFamily(
            "actors_nats_connected", "1 while the connection to NATS is up."
        )
        try:
            connected.add_metric([], 1 if worker.broker.connected else 0)
        except Exception:  # not started, or stopped
            connected.add_metric([], 0)
        yield connected
        up = GaugeMetricFamily(
            "actors_pull_loop_up", "1 while the consumer's pull loop runs.", labels=["consumer"]
        )
        idle = GaugeMetricFamily(
            "actors_pull_loop_idle_seconds",
            "Seconds since the server last sent the consumer anything (messages or "
            "heartbeats, every 5 s when all is well).",
            labels=["consumer"],
        )
        for name, consumer in sorted(worker.consumers.items()):
            up.add_metric([name], 1 if consumer.running else 0)
            idle.add_metric([name], consumer.idle_seconds)
        yield up
        yield idle
