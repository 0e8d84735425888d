"""Bad input never kills a worker and never loses a message: it goes to ACTORS_DEAD."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgpack
import pytest

from actors import App, ProtocolError, TaskNotRegistered
from actors.wire.record import FAILURE
from tests.apps.basic import register


async def publish_raw(app: App, subject: str, body: bytes, content_type: str | None) -> None:
    connection = await app.client.connection()
    headers = {"Content-Type": content_type} if content_type else None
    await connection.broker.publish(subject, body, headers)


async def dead_letters(app: App, count: int, timeout: float = 10) -> list[Any]:
    """The first ``count`` messages of ACTORS_DEAD, waiting for them to arrive."""
    connection = await app.client.connection()
    js = connection.broker.js
    sub = await js.subscribe("actors.dead.>", ordered_consumer=True)
    try:
        return [await sub.next_msg(timeout=timeout) for _ in range(count)]
    finally:
        await sub.unsubscribe()


async def still_serving(app: App, tasks: dict[str, Any]) -> None:
    assert await (await tasks["add"].adelay(20, 22)).aget(timeout=10) == 42


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\xc1\xc1 not msgpack", "application/msgpack", "not valid application/msgpack"),
        (b"{not json", "application/json", "not valid application/json"),
        (json.dumps({"task": "basic.add"}).encode(), "application/json", "misses required"),
        (msgpack.packb([1, 2, 3]), None, "must be a map"),
        (b"{}", "text/plain", "unsupported Content-Type"),
    ],
)
async def test_malformed_messages_are_dead_lettered(
    app: App, worker, body: bytes, content_type: str | None, reason: str
) -> None:
    tasks = register(app)
    await worker(app)
    await publish_raw(app, "actors.task.basic.add", body, content_type)
    [dead] = await dead_letters(app, 1)
    assert dead.subject == "actors.dead.basic.add"
    assert reason in dead.headers["Actors-Dead-Reason"]
    assert dead.headers["Actors-Dead-Subject"] == "actors.task.basic.add"
    assert dead.data == body
    await still_serving(app, tasks)


async def test_readable_id_gets_a_failure_result(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    body = json.dumps({"id": "bad-args-1", "task": "basic.add", "args": "x"}).encode()
    await publish_raw(app, "actors.task.basic.add", body, "application/json")
    with pytest.raises(ProtocolError, match="'args' must be a list"):
        await app.AsyncResult("bad-args-1").aget(timeout=10)
    await still_serving(app, tasks)


async def test_arguments_that_do_not_fit_fail_clearly(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["add"].aapply_async((1, 2, 3), {"z": 4})
    with pytest.raises(ProtocolError, match="arguments do not fit basic.add"):
        await result.aget(timeout=10)
    [dead] = await dead_letters(app, 1)
    assert "arguments do not fit" in dead.headers["Actors-Dead-Reason"]
    await still_serving(app, tasks)


async def test_task_name_must_match_the_subject(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    body = msgpack.packb({"id": "mismatch-1", "task": "basic.aadd", "args": [1, 2], "kwargs": {}})
    await publish_raw(app, "actors.task.basic.add", body, None)
    with pytest.raises(ProtocolError, match="names task 'basic.aadd'"):
        await app.AsyncResult("mismatch-1").aget(timeout=10)
    await still_serving(app, tasks)


async def test_oversized_messages_are_dead_lettered(make_app, worker) -> None:
    app = make_app(max_message_bytes=200)
    tasks = register(app)
    await worker(app)
    with pytest.raises(ValueError, match="over max_message_bytes"):
        await tasks["add"].adelay("x" * 500, "y")  # the client refuses to send it
    body = msgpack.packb({"id": "big-1", "task": "basic.add", "args": ["x" * 500, ""]})
    await publish_raw(app, "actors.task.basic.add", body, None)
    with pytest.raises(ProtocolError, match="over max_message_bytes"):
        await app.AsyncResult("big-1").aget(timeout=10)
    await still_serving(app, tasks)


async def test_unregistered_task_fails_instead_of_hanging(make_app, worker) -> None:
    app = make_app(unrouted_grace=0.5)
    tasks = register(app)
    await worker(app)
    result = await app.asend_task("basic.nobody_serves_this", (1,))
    with pytest.raises(TaskNotRegistered, match="no worker serves task 'basic.nobody_serves_this'"):
        await result.aget(timeout=15)
    assert await result.astate() == FAILURE
    [dead] = await dead_letters(app, 1)
    assert dead.subject == "actors.dead.basic.nobody_serves_this"
    await still_serving(app, tasks)


async def test_a_flood_of_garbage_does_not_stop_the_worker(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    await asyncio.gather(
        *(publish_raw(app, "actors.task.basic.add", bytes([i % 256]) * 3, None) for i in range(200))
    )
    assert len(await dead_letters(app, 200, timeout=20)) == 200
    await still_serving(app, tasks)
