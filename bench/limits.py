"""Two limits docs/scaling.md quotes, measured on an embedded nats-server.

Run by hand: ``python -m bench.limits [N]``. Prints how many consumers one stream accepted
(creating up to 1,100 of them), and nats-server's resident memory growth for N publishes
(default 200,000) with a unique ``Nats-Msg-Id`` each against the same N without one: the
difference is what the 120 s dedupe window holds.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import nats
from nats.js.api import StreamConfig

from actors.nats.server import EmbeddedServer

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def consumer_cap(url: str, tries: int = 1100) -> str:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="CAP", subjects=["cap.>"])
    made = 0
    error = "none"
    try:
        for i in range(tries):
            await js.add_consumer("CAP", durable_name=f"c{i}", filter_subject=f"cap.{i}")
            made += 1
    except Exception as exc:  # the server's refusal is what we measure
        error = str(getattr(exc, "description", None) or repr(exc))[:160]
    await js.delete_stream("CAP")
    await nc.close()
    return f"{made} consumers created on one stream (first refusal: {error})"


async def growth(url: str, pid: int, name: str, with_ids: bool) -> int:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"], duplicate_window=120.0))
    await asyncio.sleep(2)  # let the server's garbage collector settle first
    before = rss_bytes(pid)
    body = b"x" * 76  # the size of an add(i, i) task message
    for i in range(N):
        headers = {"Nats-Msg-Id": f"{i:08d}-4b7d-4c4e-9a51-2f1d3c8b7e10"} if with_ids else None
        await js.publish_async(f"{name}.t", body, headers=headers)
    await js.publish_async_completed()
    await asyncio.sleep(1)
    after = rss_bytes(pid)
    await nc.close()
    return after - before


async def measure(url: str, pid: int) -> None:
    plain = await growth(url, pid, "PLAIN", with_ids=False)
    deduped = await growth(url, pid, "DEDUP", with_ids=True)
    print(
        f"nats-server RSS growth for {N:,} publishes: {plain / 1e6:.1f} MB without msg ids, "
        f"{deduped / 1e6:.1f} MB with; about {(deduped - plain) / N:.0f} bytes per id held "
        "in the dedupe window"
    )
    print(await consumer_cap(url))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedServer(Path(tmp)) as server:
        asyncio.run(measure(server.url, server.pid))


if __name__ == "__main__":
    main()
