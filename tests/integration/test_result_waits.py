"""Waiting for results when the watch may have missed a record: a re-send with the same task
id (dropped by the server as a duplicate) and a nats-server restart while results are awaited."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from structlog.testing import capture_logs

from actors import App, AsyncResult, BrokerUnavailable, ProtocolError, TaskFailed
from actors.nats.bucket import Bucket
from actors.nats.server import EmbeddedServer
from actors.wire import topology
from tests.apps.basic import register
from tests.helpers import aeventually


async def test_resend_with_the_same_id_after_the_result_was_read(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    first = await tasks["add"].aapply_async((1, 2), task_id="same-id-1")
    assert await first.aget(timeout=10) == 3
    # The retry docs/deploy.md recommends after a publish timeout: the server drops the
    # message as a duplicate, so the record already stored is the answer.
    again = await tasks["add"].aapply_async((1, 2), task_id="same-id-1")
    assert await again.aget(timeout=10) == 3


async def test_resend_after_the_result_arrived_unread(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    await (await tasks["add"].adelay(0, 0)).aget(timeout=10)  # the watch is live from here
    first = await tasks["add"].aapply_async((2, 2), task_id="same-id-2")
    # Read, not waited: the record stays expected.
    await aeventually(first.astate, until=lambda state: state == "SUCCESS", what="the record")
    again = await tasks["add"].aapply_async((2, 2), task_id="same-id-2")
    assert await again.aget(timeout=10) == 4


async def test_resend_of_an_id_another_client_sent(make_app: Callable[..., App], worker) -> None:
    served, sender, other = make_app("served"), make_app("sender"), make_app("other")
    register(served)
    await worker(served)
    first = await register(sender)["add"].aapply_async((3, 3), task_id="same-id-3")
    assert await first.aget(timeout=10) == 6
    add = register(other)["add"]
    await (await add.adelay(0, 0)).aget(timeout=10)  # the other client's watch is live
    again = await add.aapply_async((3, 3), task_id="same-id-3")
    assert await again.aget(timeout=10) == 6


async def test_every_wait_returns_across_a_server_restart(
    make_app: Callable[..., App], nats_server: EmbeddedServer, worker
) -> None:
    served = make_app("served", ack_wait=2)
    register(served)
    await worker(served, concurrency=4)
    client = make_app("client", publish_timeout=2)
    sleep = register(client)["sleep"]
    await (await sleep.adelay(0)).aget(timeout=10)  # the watch is live: later sends are expected

    async def send(task_id: str) -> AsyncResult:
        # What docs/deploy.md recommends after a publish timeout: send again with the same id.
        return await aeventually(
            lambda: sleep.aapply_async((0.02,), task_id=task_id),
            what=f"{task_id} sent",
            timeout=60,
            interval=0.2,
            ignore=(BrokerUnavailable,),
        )

    count = 200
    sent = [await send(f"restart-{i}") for i in range(count // 2)]
    waits = asyncio.gather(*(result.aget(timeout=90) for result in sent))
    # Some results arrive before the restart, the rest after it.
    await aeventually(sent[0].astate, until=lambda state: state == "SUCCESS", what="a result")
    await asyncio.to_thread(nats_server.kill)
    during = asyncio.gather(*(send(f"restart-{i}") for i in range(count // 2, count)))
    # Downtime longer than publish_timeout, so the senders time out and re-send; what must
    # then happen (every send and every wait returns) is awaited below, with timeouts.
    await asyncio.sleep(3)
    await asyncio.to_thread(nats_server.start)
    later = await asyncio.wait_for(during, 60)
    assert await asyncio.wait_for(waits, 120) == [0.02] * (count // 2)
    values = await asyncio.gather(*(result.aget(timeout=90) for result in later))
    assert values == [0.02] * (count // 2)


async def test_forged_records_make_get_raise_protocol_error_or_task_failed(app: App) -> None:
    connection = await app.client.connection()

    async def forge(task_id: str, **record: Any) -> None:
        body = msgpack.packb({"id": task_id, **record})
        await Bucket(connection.broker, topology.RESULTS_BUCKET).put(task_id, body)

    modules = set(sys.modules)
    await forge("forged-1", status="SUCCESS", retries="1")
    with pytest.raises(ProtocolError, match="retries"):
        await app.AsyncResult("forged-1").aget(timeout=5)
    forged_error = {"type": "multiprocessing.Process", "message": "m", "args": []}
    await forge("forged-2", status="FAILURE", error=forged_error)
    with pytest.raises(TaskFailed, match="multiprocessing.Process"):
        await app.AsyncResult("forged-2").aget(timeout=5)
    # Waited on, then a malformed record arrives: get() fails now, not at its timeout.
    began = time.monotonic()
    waiting = asyncio.ensure_future(app.AsyncResult("forged-3").aget(timeout=30))
    await asyncio.sleep(0)
    await forge("forged-3", status=["SUCCESS"])
    with pytest.raises(ProtocolError):
        await asyncio.wait_for(waiting, 10)
    # Sent through this connection (expected on the watch), then forged.
    sent = await register(app)["add"].aapply_async((1, 1), task_id="forged-4")
    await forge("forged-4", status="SUCCESS", error="not a map")
    with pytest.raises(ProtocolError):
        await sent.aget(timeout=30)
    assert time.monotonic() - began < 10
    assert set(sys.modules) - modules == set()


async def test_a_first_wait_outlasts_jetstream_not_answering(
    make_app: Callable[..., App], nats_server: EmbeddedServer, worker
) -> None:
    """The result watch starts on the first wait; while JetStream does not answer (here the
    server is down, in a cluster a leader election) it is tried again for as long as the wait
    may last, not only for ``publish_timeout`` (a chaos test once failed on this)."""
    served = make_app("served")
    register(served)
    await worker(served, concurrency=2)
    client = make_app("client", publish_timeout=0.5)
    sleep = register(client)["sleep"]
    sent = await sleep.aapply_async((0,), task_id="first-wait")
    await aeventually(sent.astate, until=lambda state: state == "SUCCESS", what="the result")
    await asyncio.to_thread(nats_server.stop)
    with capture_logs() as logs:
        waiting = asyncio.ensure_future(client.AsyncResult("first-wait").aget(timeout=60))
        await aeventually(
            lambda: [e for e in logs if e["event"] == "results.watch_retrying"],
            what="the watch tried again",
            timeout=30,
        )
        assert not waiting.done()
        await asyncio.to_thread(nats_server.start)
        assert await asyncio.wait_for(waiting, 60) == 0
