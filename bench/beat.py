"""Beat precision: how late each tick of a 1-second schedule is stored by the server.

Run by hand: ``python -m bench.beat [SECONDS] [REPLICAS]`` (defaults 150 s, 1 replica). Beat
runs as ``actors beat bench.beat:app`` subprocesses against an embedded nats-server (or
ACTORS_NATS_URL); nothing consumes the ticks, so afterwards every message is read back from
the task stream and its server timestamp compared with its scheduled tick.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter

from actors import App
from actors.wire.message import TaskMessage, decode, parse_time
from bench.common import ROOT, nats_url, percentile

app = App("benchbeat")
app.conf.beat_schedule = {"every-second": {"task": "benchbeat.tick", "schedule": 1.0}}
SUBJECT = "actors.task.benchbeat.tick"


async def lateness(url: str) -> tuple[list[tuple[float, str]], int]:
    """Lateness in ms of every stored tick, and how many ticks were stored twice."""
    reader = App("benchbeat-reader", nats_url=url)
    broker = (await reader.client.connection()).broker
    late: list[tuple[float, str]] = []
    ticks, seq = Counter[str](), 0
    while (stored := await broker.stored_message("ACTORS", SUBJECT, seq)) is not None:
        seq = stored.seq
        message = TaskMessage.from_wire(decode(stored.data, stored.headers.get("Content-Type")))
        tick = message.headers["beat_tick"]
        ticks[tick] += 1
        late.append(((stored.time - parse_time(tick)).total_seconds() * 1000, tick))
    await reader.aclose()
    return late, sum(count - 1 for count in ticks.values())


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 150.0
    replicas = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with nats_url() as url:
        env = {**os.environ, "ACTORS_NATS_URL": url, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "actors", "beat", "bench.beat:app"]
        procs = [
            subprocess.Popen([*command, "--log-level", "warning"], env=env, cwd=ROOT)
            for _ in range(replicas)
        ]
        print(f"beat: {replicas} replica(s), 1-second schedule, {seconds:.0f} s ...")
        try:
            time.sleep(seconds)  # bench only: the schedule runs for a fixed time
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
        measured, doubled = asyncio.run(lateness(url))
    late = [ms for ms, _ in measured]
    print(f"ticks stored: {len(late)}, stored twice: {doubled}")
    worst = ", ".join(f"{tick} {ms:.1f} ms" for ms, tick in sorted(measured)[-3:])
    print(f"latest three: {worst} (first tick {measured[0][1]})")
    print(
        f"lateness (server store time - tick): p50 {percentile(late, 0.5):.2f} ms, "
        f"p99 {percentile(late, 0.99):.2f} ms, max {max(late):.2f} ms, "
        f"min {min(late):.2f} ms"
    )


if __name__ == "__main__":
    main()
