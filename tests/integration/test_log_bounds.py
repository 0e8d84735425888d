"""One hostile message cannot make a huge log line (values and tracebacks are capped)."""

from __future__ import annotations

import asyncio
import json
import os

import msgpack
import nats

from actors.log import EXCEPTION_LIMIT, VALUE_LIMIT, bound_values
from actors.nats.server import EmbeddedServer
from actors.wire import topology


def test_bound_values_caps_strings_containers_and_tracebacks() -> None:
    event = {
        "event": "x" * 5000,
        "reason": "r" * 100_000,
        "ids": list(range(100_000)),
        "exception": "Traceback\n" + "f" * 100_000 + "\nValueError: last line",
        "count": 10**30,
        "ok": True,
    }
    bounded = bound_values(None, "error", event)
    assert len(bounded["event"]) < VALUE_LIMIT + 40
    assert bounded["reason"].endswith("...[truncated 99000 chars]")
    assert isinstance(bounded["ids"], str) and len(bounded["ids"]) < VALUE_LIMIT + 40
    assert len(bounded["exception"]) < EXCEPTION_LIMIT + 40
    assert bounded["exception"].endswith("ValueError: last line")
    assert (bounded["count"], bounded["ok"]) == (10**30, True)


def test_a_400kb_garbage_message_makes_no_huge_log_line(
    nats_server: EmbeddedServer, worker_process
) -> None:
    worker = worker_process("tests.apps.basic:app")
    # A valid map followed by 400 KB of noise: msgpack's ExtraData error holds the bytes.
    head = msgpack.packb({"v": 1, "id": "garbage-1", "task": "basic.add", "args": [1, 2]})
    body = head + os.urandom(400_000)

    async def publish() -> None:
        nc = await nats.connect(nats_server.url)
        try:
            await nc.jetstream().publish(topology.task_subject("basic.add"), body)
        finally:
            await nc.close()

    asyncio.run(publish())
    worker.wait_for_event("task.dead_lettered", timeout=30)
    logged = worker.log_file.read_text().splitlines()
    longest = max(len(line) for line in logged)
    assert longest < 16 * 1024, f"a log line of {longest} characters"
    for line in logged:
        json.loads(line)  # every line still one JSON object
