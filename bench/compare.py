"""The sync path, the async path and raw nats-py against one nats-server in one run.

Run by hand from the repository root: ``python -m bench.compare [N]`` (default 20,000). It
starts one embedded nats-server (unless ACTORS_NATS_URL is set), measures the raw nats-py
pipeline (JetStream publish of N, then one pull consumer fetching and acking N) and the raw
round trip (bench/raw.py: the floor of a task's round trip over JetStream), then, with 1
and then 2 ``actors run`` worker processes: the sync loop with results (N ``delay()`` then
``get()`` each), the sync enqueue loop alone, sync fire-and-forget until the workers acked
all (and, with 1 worker, the sync loop with ``confirm_publish``), the async client with
results, ``delay().get()`` round trips, a chord of 1,000 and a
chain's hop; each throughput also as a ratio to the raw pipeline, and CPU per task of the
workers, this client and nats-server (from /proc). docs/scaling.md holds a run's figures.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import nats

from actors import App
from actors.cli.processes import run_loop as run
from bench import tasks
from bench.canvas import chain_seconds, chord_seconds
from bench.common import (
    cpu_seconds,
    nats_url,
    percentile,
    server_pid,
    stored_for,
    worker_processes,
)
from bench.raw import raw_pipeline, raw_round_trips
from bench.throughput import round_trips, with_results

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000


@contextmanager
def cpu_per_task(pids: list[int], count: int, out: list[str]) -> Iterator[None]:
    """Append to ``out`` the CPU microseconds per task of the workers, this process and
    nats-server while the block runs."""
    server = server_pid()
    watched = {"workers": pids, "client": [os.getpid()], "nats-server": [server] if server else []}
    before = {name: sum(cpu_seconds(p) for p in group) for name, group in watched.items()}
    yield
    parts = [
        f"{name} {(sum(cpu_seconds(p) for p in group) - before[name]) / count * 1e6:.0f} us"
        for name, group in watched.items()
        if group
    ]
    out.append("CPU per task: " + ", ".join(parts))


def sync_with_results(app: App) -> tuple[float, float]:
    """The loop a Celery user writes; returns (enqueue loop tasks/s, with results tasks/s)."""
    add = app.registry["bench.add"]
    started = time.perf_counter()
    results = [add.delay(i, i) for i in range(N)]
    enqueued = time.perf_counter() - started
    values = [r.get(timeout=120) for r in results]
    elapsed = time.perf_counter() - started
    assert values == [2 * i for i in range(N)], "wrong results"
    return N / enqueued, N / elapsed


def sync_fire_and_forget(app: App, url: str) -> float:
    """``noop.delay(i)`` N times, until the workers acked every message."""
    noop = app.registry["bench.noop"]
    started = time.perf_counter()
    for i in range(N):
        noop.delay(i)
    app.flush()
    run(_drained(url))
    return N / (time.perf_counter() - started)


async def _drained(url: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    while await stored_for(js, "bench.noop"):
        await asyncio.sleep(0.005)
    await nc.close()


def measure(url: str, workers: int, line: Callable[[str, float | str], None]) -> None:
    app = tasks.app
    app.conf.nats_url = url
    with worker_processes(url, "bench.tasks:app", workers) as procs:
        pids = [proc.pid for proc in procs]
        app.registry["bench.add"].delay(0, 0).get(timeout=10)  # warm up the sync path
        notes: list[str] = []
        with cpu_per_task(pids, N, notes):
            enqueue, results = sync_with_results(app)
        line("sync loop with results", results)
        line("sync enqueue loop", enqueue)
        line("  " + notes[-1], "")
        if workers == 1:  # the strict mode, for comparison (one thread, one PubAck per call)
            app.conf.confirm_publish = True
            _, strict = sync_with_results(app)
            app.conf.confirm_publish = False
            line("sync loop with results, confirm_publish", strict)
        line("sync fire-and-forget", sync_fire_and_forget(app, url))
        # Close the sync side's connection before each async part: its results watch would
        # decode every result of the async run too (one watch per connection).
        app.close()
        line("async client with results", run(with_results(app, pids[0])))
        latencies = round_trips(app)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        line("round trip delay().get()", f"p50 {p50:.3f} ms, p99 {p99:.3f} ms")
        app.close()
        chord_s, chain_s = run(_canvas())
        line("chord of 1000 until body result", f"{chord_s:.3f} s")
        line("chain hop", f"{chain_s / 100 * 1000:.2f} ms")
        app.close()


async def _canvas() -> tuple[float, float]:
    await chord_seconds(10)
    await chain_seconds(3)
    chords = sorted([await chord_seconds(1000) for _ in range(3)])
    chains = sorted([await chain_seconds(100) for _ in range(3)])
    await tasks.app.aclose()
    return chords[1], chains[1]


def main() -> None:
    load = os.getloadavg()[0]
    with nats_url() as url:
        raw, raw_client_us, raw_server_us = run(raw_pipeline(url, N))
        floor = raw_round_trips(url)
        print(f"N={N}; load average before the run {load:.1f} on {os.cpu_count()} cores")
        print(f"{'raw nats-py: JS publish, then pull fetch+ack':45} {raw:>10,.0f} msg/s")
        print(
            f"  CPU per message: client {raw_client_us:.0f} us, nats-server {raw_server_us:.0f} us"
        )
        print(
            f"{'raw nats-py round trip (the floor)':45} p50 {percentile(floor, 0.5):.3f} ms, "
            f"p99 {percentile(floor, 0.99):.3f} ms"
        )

        def line(what: str, value: float | str) -> None:
            if isinstance(value, float):
                print(f"{what:45} {value:>10,.0f} /s  ({value / raw:.2f} x raw)")
            else:
                print(f"{what:45} {value}")

        for workers in (1, 2):
            print(f"-- {workers} worker process{'es' if workers > 1 else ''}")
            measure(url, workers, line)


if __name__ == "__main__":
    main()
