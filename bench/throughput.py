"""Core speed: tasks/s with results, fire-and-forget tasks/s, and round-trip latency.

Run by hand: ``python -m bench.throughput [N]``. One worker process and this client on the
same machine as nats-server (an embedded one unless ACTORS_NATS_URL is set).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from actors import App
from actors.cli.processes import run_loop as run
from bench import tasks
from bench.common import (
    cpu_seconds,
    nats_url,
    percentile,
    server_pid,
    stored_for,
    worker_processes,
)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
WINDOW = 2_000  # tasks in flight from the client at once


async def with_results(app: App, worker_pid: int) -> float:
    add = app.registry["bench.add"]
    await (await add.adelay(0, 0)).aget(timeout=10)  # warm up: connect, start the result watch
    started = time.perf_counter()
    cpu_worker, cpu_client = cpu_seconds(worker_pid), cpu_seconds(os.getpid())
    server = server_pid()
    cpu_server = cpu_seconds(server) if server else 0.0
    results = []
    for offset in range(0, N, WINDOW):
        results += await asyncio.gather(*(add.adelay(i, i) for i in range(offset, offset + WINDOW)))
    values = await asyncio.gather(*(r.aget(timeout=120) for r in results))
    elapsed = time.perf_counter() - started
    assert values == [2 * i for i in range(N)], "wrong results"
    worker_us = (cpu_seconds(worker_pid) - cpu_worker) / N * 1e6
    client_us = (cpu_seconds(os.getpid()) - cpu_client) / N * 1e6
    server_us = (cpu_seconds(server) - cpu_server) / N * 1e6 if server else float("nan")
    print(
        f"  (CPU per task: worker {worker_us:.0f} us, client {client_us:.0f} us, "
        f"nats-server {server_us:.0f} us)"
    )
    return N / elapsed


async def fire_and_forget(app: App) -> float:
    noop = app.registry["bench.noop"]
    connection = await app.client.connection()
    started = time.perf_counter()
    for offset in range(0, N, WINDOW):
        await asyncio.gather(*(noop.adelay(i) for i in range(offset, offset + WINDOW)))
    sent = time.perf_counter() - started
    while await stored_for(connection.broker.js, "bench.noop"):  # until all are acked
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    print(f"  (sending alone: {N / sent:,.0f} tasks/s)")
    return N / elapsed


def round_trips(app: App, count: int = 1000) -> list[float]:
    add = app.registry["bench.add"]
    add.delay(0, 0).get(timeout=10)
    latencies = []
    for i in range(count):
        began = time.perf_counter()
        add.delay(i, i).get(timeout=10)
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies


def main() -> None:
    with nats_url() as url, worker_processes(url, "bench.tasks:app") as procs:
        app = tasks.app
        app.conf.nats_url = url
        print(f"N={N}, one worker process, client and nats-server on this machine")
        print(f"with results:     {run(with_results(app, procs[0].pid)):,.0f} tasks/s")
        print(f"fire-and-forget:  {run(fire_and_forget(app)):,.0f} tasks/s")
        latencies = round_trips(app)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        print(
            f"round trip (sync delay().get(), 1000 sequential): p50 {p50:.3f} ms, p99 {p99:.3f} ms"
        )
        app.close()


if __name__ == "__main__":
    main()
