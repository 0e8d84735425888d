"""``actors exporter``: cluster-level Prometheus gauges read from NATS.

Per-process numbers come from each worker's ``--metrics-port``; this one process reports
what no single worker sees: the queues (lag per actor), dead letters and workers online.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Annotated

import structlog
import typer

from actors.cli.connect import connection_options
from actors.cli.output import fail
from actors.cli.processes import run_loop
from actors.cli.run_checks import LogFormat, LogLevel, check_log_options
from actors.config import Settings
from actors.errors import ActorsError
from actors.log import configure_logging
from actors.nats import queues
from actors.nats.broker import Broker
from actors.wire import topology
from actors.worker.health import HttpEndpoints

log = structlog.get_logger(__name__)

_TEXT = "text/plain; version=0.0.4; charset=utf-8"
_GAUGES = (  # QueueStats field, metric, help
    ("pending", "actors_queue_lag", "Messages waiting for an actor, not yet delivered."),
    ("in_flight", "actors_queue_in_flight", "Messages delivered to workers, not acked yet."),
    ("redelivered", "actors_queue_redelivered", "Messages in flight delivered more than once."),
    ("dead", "actors_dead_letters", "Dead letters of an actor in ACTORS_DEAD."),
    ("consumers", "actors_queue_consumers", "Durable consumers on an actor's subject."),
)


class ClusterGauges:
    """The last reading of the cluster, rendered in the Prometheus text format."""

    def __init__(self) -> None:
        self.rows: list[queues.QueueStats] = []
        self.workers = 0
        self.read_at: float | None = None
        self.failures = 0

    async def refresh(self, broker: Broker) -> None:
        """Read the queues and the worker registry once."""
        try:
            self.rows = await queues.queue_stats(broker)
            self.workers = await queues.live_keys(broker, topology.WORKERS_BUCKET)
            self.read_at = time.time()
        except ActorsError as exc:
            self.failures += 1
            log.warning("exporter.read_failed", error=str(exc))

    def render(self) -> tuple[int, str, bytes]:
        """The ``/metrics`` answer."""
        out: list[str] = []
        for field, name, text in _GAUGES:
            out += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
            out += [f'{name}{{actor="{r.actor}"}} {getattr(r, field)}' for r in self.rows]
        out += [
            "# HELP actors_workers_online Workers with a live record in the registry.",
            "# TYPE actors_workers_online gauge",
            f"actors_workers_online {self.workers}",
            "# HELP actors_exporter_last_read_timestamp_seconds When NATS was last read.",
            "# TYPE actors_exporter_last_read_timestamp_seconds gauge",
            f"actors_exporter_last_read_timestamp_seconds {self.read_at or 0}",
            "# HELP actors_exporter_read_failures_total Reads of NATS that failed.",
            "# TYPE actors_exporter_read_failures_total counter",
            f"actors_exporter_read_failures_total {self.failures}",
        ]
        return 200, _TEXT, ("\n".join(out) + "\n").encode()


@connection_options
def exporter(
    port: Annotated[int, typer.Option(help="Serve /metrics on this port.")] = 9808,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    interval: Annotated[float, typer.Option(help="Seconds between reads of NATS.")] = 5.0,
    log_level: LogLevel = "info",
    log_format: LogFormat = None,
) -> None:
    """Serve cluster gauges for Prometheus: lag per actor, dead letters, workers online."""
    check_log_options(log_level, log_format)
    if not 0 < port < 65536:
        fail(f"--port must be a TCP port (1-65535), got {port}")
    if interval <= 0:
        fail(f"--interval must be > 0, got {interval:g}")
    configure_logging(log_level, log_format)
    try:
        run_loop(_serve(host, port, interval))
    except ActorsError as exc:
        fail(exc)


async def _serve(host: str, port: int, interval: float) -> None:
    broker = await Broker.connect(Settings.build({}), "actors-exporter")
    gauges = ClusterGauges()
    endpoints = HttpEndpoints({"/metrics": gauges.render}, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await endpoints.start()
        while not stop.is_set():
            await gauges.refresh(broker)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        await endpoints.stop()
        await broker.close()
