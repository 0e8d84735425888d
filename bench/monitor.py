"""How the web monitor copes: events per second it keeps up with, and page times with a large
events history. ``python -m bench.monitor [--tasks 100000] [--rate 2000] [--seconds 10]``.

1. History: ``--tasks`` tasks (received, started, succeeded: three events each) are written to
   ACTORS_EVENTS the way workers write them (batches per kind, one message per 500 events),
   then ``actors monitor`` starts and reads them all; the time it takes is reported, then
   the median and p95 time of each page over 20 loads.
2. Live: events are published at ``--rate`` per second for ``--seconds`` while the monitor
   runs; reported is whether it kept up (every event read) and how far it fell behind at most.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from actors.config import Settings
from actors.nats.broker import Broker
from actors.wire import events, topology
from actors.wire.ids import new_task_id
from bench.common import ROOT, nats_url, percentile

_PAGES = ("/", "/tasks", "/tasks?state=FAILURE", "/tasks?name=bench.other&page=3", "/api/tasks")


def task_events(task_id: str, stamp: float, clock: int, failed: bool) -> list[dict[str, Any]]:
    """The three events of one task, as a worker publishes them."""
    base = {"hostname": "1@bench", "uuid": task_id, "name": "bench.task", "retries": 0}
    if failed:
        base["name"] = "bench.other"
    end = (
        (events.TASK_FAILED, {"exception": "ValueError('x')"})
        if failed
        else (
            events.TASK_SUCCEEDED,
            {"result": "42"},
        )
    )
    return [
        {**base, "type": events.TASK_RECEIVED, "timestamp": stamp, "clock": clock, "args": "(1,)"},
        {**base, "type": events.TASK_STARTED, "timestamp": stamp, "clock": clock + 1},
        {
            **base,
            "type": end[0],
            "timestamp": stamp,
            "clock": clock + 2,
            "runtime": 0.001,
            **end[1],
        },
    ]


async def publish(broker: Broker, batch: list[dict[str, Any]]) -> None:
    """Publish events as one worker flush: one message per kind and 500 events."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in batch:
        by_kind.setdefault(event["type"], []).append(event)
    messages = [
        (topology.event_subject(kind), events.encode_batch(group[i : i + events.MAX_BATCH]), {})
        for kind, group in by_kind.items()
        for i in range(0, len(group), events.MAX_BATCH)
    ]
    await broker.publish_many(messages)


async def write_history(url: str, tasks: int) -> None:
    broker = await Broker.connect(Settings.build({"nats_url": url}), "bench")
    await broker.streams.ensure_topology()
    clock, now = 1, time.time() - 600
    for start in range(0, tasks, 2000):
        batch: list[dict[str, Any]] = []
        for i in range(start, min(tasks, start + 2000)):
            batch += task_events(new_task_id(), now + i * 0.005, clock, failed=i % 50 == 0)
            clock += 3
        await publish(broker, batch)
    await broker.close()


async def live(url: str, rate: int, seconds: float, clock: int) -> int:
    """Publish ``rate`` events/s (in flushes of 0.25 s) for ``seconds``; events sent."""
    broker = await Broker.connect(Settings.build({"nats_url": url}), "bench-live")
    sent, started = 0, time.monotonic()
    per_flush = rate // 4
    while time.monotonic() - started < seconds:
        batch: list[dict[str, Any]] = []
        while len(batch) < per_flush:
            batch += task_events(new_task_id(), time.time(), clock, failed=False)
            clock += 3
        await publish(broker, batch)
        sent += len(batch)
        await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
    await broker.close()
    return sent


def get(base: str, path: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=30) as response:
        body = response.read()
    return time.perf_counter() - started, body


def events_seen(base: str) -> int:
    return int(json.loads(get(base, "/api/dashboard")[1])["events_seen"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=15599)
    options = parser.parse_args()
    with nats_url() as url:
        asyncio.run(write_history(url, options.tasks))
        env = {**os.environ, "ACTORS_NATS_URL": url}
        for name in ("ACTORS_MONITOR_USER", "ACTORS_MONITOR_PASSWORD", "ACTORS_MONITOR_TOKEN"):
            env.pop(name, None)
        command = [sys.executable, "-m", "actors", "monitor", "--port", str(options.port)]
        started = time.monotonic()
        monitor = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{options.port}"
        try:
            expected = options.tasks * 3
            while True:
                try:
                    if events_seen(base) >= expected:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            loaded = time.monotonic() - started
            print(f"history: {options.tasks:,} tasks ({expected:,} events) read in {loaded:.1f} s")
            newest = json.loads(get(base, "/api/tasks?per_page=1")[1])["tasks"][0]["id"]
            for path in (*_PAGES, f"/tasks/{newest}"):
                times = [get(base, path)[0] * 1000 for _ in range(20)]
                print(
                    f"  {path[:40]:40} median {percentile(times, 0.5):6.1f} ms"
                    f"  p95 {percentile(times, 0.95):6.1f} ms"
                )
            before = events_seen(base)
            sent = asyncio.run(live(url, options.rate, options.seconds, 10**9))
            finished = time.monotonic()
            while events_seen(base) < before + sent and time.monotonic() - finished < 30:
                time.sleep(0.05)
            behind = time.monotonic() - finished
            read = events_seen(base) - before
            print(
                f"live: {sent:,} events at {options.rate:,}/s over {options.seconds:g} s; "
                f"read {read:,}; all read {behind:.2f} s after the last was published"
            )
            status = Path(f"/proc/{monitor.pid}/status").read_text()
            rss = int(status.split("VmRSS:")[1].split()[0])
            print(f"monitor memory (RSS): {rss / 1024:.0f} MiB")
        finally:
            monitor.terminate()
            monitor.wait(10)


if __name__ == "__main__":
    main()
