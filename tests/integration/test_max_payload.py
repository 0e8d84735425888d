"""Nothing the server must refuse is published: near-limit messages never cost a connection.

The server here accepts at most MAX_PAYLOAD bytes (body and headers together); a message
over it makes the server close the connection, and nats-py never reconnects after that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import nats
import pytest

from actors import App, MessageTooLarge, WorkerLost
from actors.nats.server import EmbeddedServer
from actors.worker import Worker
from tests.apps.basic import register
from tests.integration.test_bad_input import dead_letters, still_serving

MAX_PAYLOAD = 64 * 1024


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """The test server, with a small max_payload."""
    config = tmp_path / "nats.conf"
    config.write_text(f"max_payload: {MAX_PAYLOAD}\n")
    server = EmbeddedServer(tmp_path / "nats", extra_args=("-c", str(config)))
    server.start()
    yield server
    server.stop()


def near_limit_message(task_id: str, size: int) -> bytes:
    """A valid basic.add message of exactly ``size`` bytes."""
    fields: dict[str, Any] = {"id": task_id, "task": "basic.add", "args": [1, 2], "pad": ""}
    fields["pad"] = "x" * (size - len(msgpack.packb(fields)) - 2)  # str16 has 2 more header bytes
    body: bytes = msgpack.packb(fields)
    assert len(body) == size
    return body


def connected(*workers: Worker) -> bool:
    return all(w.broker.nc.is_connected for w in workers)


async def test_near_limit_garbage_is_dead_lettered_truncated(
    app: App, worker: Callable[..., Any], nats_server: EmbeddedServer
) -> None:
    tasks = register(app)
    workers = [await worker(app), await worker(app)]
    body = b"\xc1" * (MAX_PAYLOAD - 100)  # not msgpack; a copy with ~250 B of headers won't fit
    raw = await nats.connect(nats_server.url)
    try:
        for _ in range(4):
            await raw.publish("actors.task.basic.add", body)
        await raw.flush()
    finally:
        await raw.close()
    letters = await dead_letters(app, 4)
    for dead in letters:
        assert dead.headers["Actors-Dead-Truncated"] == str(len(body))
        assert "not valid application/msgpack" in dead.headers["Actors-Dead-Reason"]
        assert body.startswith(dead.data) and len(dead.data) < len(body)
    assert connected(*workers)
    await still_serving(app, tasks)


async def test_redelivered_near_limit_message_takes_out_no_worker(
    make_app: Callable[..., App], worker: Callable[..., Any], nats_server: EmbeddedServer
) -> None:
    app = make_app(max_deliveries=1)
    tasks = register(app)
    broker = (await app.client.connection()).broker
    durable = await broker.streams.ensure_consumer("basic.add")
    body = near_limit_message("near-limit-1", MAX_PAYLOAD - 100)
    raw = await nats.connect(nats_server.url)
    try:
        await raw.publish("actors.task.basic.add", body)
        await raw.flush()
        # A first delivery that never finished, as when the server cut a worker off.
        pull = await raw.jetstream().pull_subscribe_bind(durable, stream="ACTORS")
        [first] = await pull.fetch(1, timeout=5)
        await first.nak()
    finally:
        await raw.close()
    workers = [await worker(app), await worker(app)]
    [dead] = await dead_letters(app, 1)
    assert "delivered 2 times" in dead.headers["Actors-Dead-Reason"]
    assert dead.headers["Actors-Dead-Truncated"] == str(len(body))
    with pytest.raises(WorkerLost, match="delivered 2 times"):
        await app.AsyncResult("near-limit-1").aget(timeout=10)
    assert connected(*workers)
    await still_serving(app, tasks)


async def test_a_result_over_max_payload_fails_the_task(
    app: App, worker: Callable[..., Any]
) -> None:
    tasks = register(app)

    @app.actor(name="big.result")
    def big_result() -> bytes:
        return b"r" * (MAX_PAYLOAD + 10)

    running = await worker(app)
    with pytest.raises(MessageTooLarge, match="result too large"):
        await (await big_result.adelay()).aget(timeout=10)
    assert connected(running)
    await still_serving(app, tasks)


async def test_the_client_counts_headers(app: App, worker: Callable[..., Any]) -> None:
    tasks = register(app)
    await worker(app)
    body_alone_fits = "x" * (MAX_PAYLOAD - 100)  # with its Nats-Msg-Id header it does not
    with pytest.raises(MessageTooLarge, match="with headers, over the server's max_payload") as e:
        await tasks["add"].adelay(body_alone_fits, "")
    assert e.value.size - 100 < MAX_PAYLOAD < e.value.size
    assert (await app.client.connection()).broker.nc.is_connected
    await still_serving(app, tasks)
