"""nats-py alone, the floors the actors figures are compared with (used by bench.compare).

- :func:`raw_pipeline`: JetStream publish of N (async, pipelined), then one pull consumer
  fetching and acking N; messages/s and the CPU per message of this process and nats-server.
- :func:`raw_round_trips`: the least a task round trip can cost over JetStream: publish a
  message, a consumer in another process (``python -m bench.raw URL``) publishes a reply to a
  second stream and acks, and an ordered consumer here receives the reply. No thread hop,
  no validation, no result record: what nats-py and nats-server take on their own.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench.common import ROOT, cpu_seconds, server_pid


async def raw_pipeline(url: str, count: int) -> tuple[float, float, float]:
    """Messages/s, and CPU microseconds per message of this process and of nats-server."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="RAW_BENCH", subjects=["rawbench.>"])
    body = b"x" * 40
    server = server_pid()
    cpu_client, cpu_server = cpu_seconds(os.getpid()), cpu_seconds(server) if server else 0.0
    started = time.perf_counter()
    for _ in range(count):
        await js.publish_async("rawbench.add", body)
    await js.publish_async_completed()
    pull = await js.pull_subscribe("rawbench.add", durable="raw")
    done = 0
    while done < count:
        for msg in await pull.fetch(batch=min(500, count - done), timeout=10):
            await msg.ack()
            done += 1
    await nc.flush()
    elapsed = time.perf_counter() - started
    client_us = (cpu_seconds(os.getpid()) - cpu_client) / count * 1e6
    server_us = (cpu_seconds(server) - cpu_server) / count * 1e6 if server else float("nan")
    await js.delete_stream("RAW_BENCH")
    await nc.close()
    return count / elapsed, client_us, server_us


def raw_round_trips(url: str, count: int = 1000) -> list[float]:
    """Milliseconds of ``count`` raw round trips (see the module docstring)."""
    consumer = subprocess.Popen([sys.executable, "-m", "bench.raw", url], cwd=ROOT)
    try:
        return asyncio.run(_round_trips(url, count))
    finally:
        consumer.terminate()
        consumer.wait(10)


async def _round_trips(url: str, count: int) -> list[float]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="RAW_RT_TASKS", subjects=["rawrt.task"])
    await js.add_stream(name="RAW_RT_REPLIES", subjects=["rawrt.reply"])
    replies: asyncio.Queue[Msg] = asyncio.Queue()
    await js.subscribe(
        "rawrt.reply", cb=replies.put, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
    )
    latencies = []
    for i in range(count + 100):  # the first 100 warm up (the consumer process starts)
        began = time.perf_counter()
        await js.publish("rawrt.task", str(i).encode())
        await asyncio.wait_for(replies.get(), 10)
        latencies.append((time.perf_counter() - began) * 1000)
    await js.delete_stream("RAW_RT_TASKS")
    await js.delete_stream("RAW_RT_REPLIES")
    await nc.close()
    return latencies[100:]


async def _consume(url: str) -> None:
    """The other side of the raw round trip: reply to each task message, then ack it."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for _ in range(100):  # the client creates the streams
        try:
            await js.stream_info("RAW_RT_TASKS")
            break
        except nats.js.errors.NotFoundError:
            await asyncio.sleep(0.05)

    async def reply(msg: Msg) -> None:
        await js.publish("rawrt.reply", msg.data)
        await msg.ack()

    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=64)
    await js.subscribe("rawrt.task", durable="raw-rt", cb=reply, manual_ack=True, config=config)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_consume(sys.argv[1]))
