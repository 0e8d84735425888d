"""Hostile task messages are refused before their task runs, and cannot steer the worker.

A raw publisher (no Python client) sends messages whose nested names, ids and times try to
inject NATS protocol, break the worker's connection or fail only after the task ran.
"""

from __future__ import annotations

from typing import Any

import msgpack
import nats.errors
import pytest

from actors import App, ProtocolError
from actors.wire.topology import TASK_STREAM
from tests.integration.test_bad_input import dead_letters, publish_raw

SUBJECT = "actors.task.hostile.record"
INJECTION = "\r\nPUB $JS.API.STREAM.DELETE.ACTORS 0\r\n\r\n"


def recorder(app: App) -> list[Any]:
    """Register ``hostile.record`` (and a callback); return the list of its calls."""
    calls: list[Any] = []

    @app.actor(name="hostile.record")
    def record(x: Any) -> Any:
        calls.append(x)
        return x

    @app.actor(name="hostile.callback")
    def callback(*args: Any) -> None:
        calls.append(("callback", args))

    return calls


def sig(task: str = "hostile.callback", **options: Any) -> dict[str, Any]:
    return {"task": task, "args": [], "kwargs": {}, "options": options}


def chord_field(**fields: Any) -> dict[str, Any]:
    return {"id": "chord-1", "size": 1, "index": 0, "body": sig(), **fields}


async def refused_before_running(
    app: App, calls: list[Any], task_id: str, body: dict[str, Any]
) -> str:
    """Publish ``body`` raw; assert it is dead-lettered with a ProtocolError record, unrun."""
    await publish_raw(app, SUBJECT, msgpack.packb(body), None)
    [dead] = await dead_letters(app, 1)
    reason = dead.headers["Actors-Dead-Reason"]
    assert reason.startswith("malformed message: "), reason
    with pytest.raises(ProtocolError, match="malformed message"):
        await app.AsyncResult(task_id).aget(timeout=10)
    assert calls == [], calls
    return reason


async def still_serving(app: App, calls: list[Any]) -> None:
    """The stream is still there, the worker still serves, and the hostile task never ran."""
    connection = await app.client.connection()
    await connection.broker.js.stream_info(TASK_STREAM)  # not deleted
    assert await (await app.get_actor("hostile.record").adelay("ok")).aget(timeout=10) == "ok"
    assert calls == ["ok"], calls


INJECTIONS = {
    "link[0].task": {"link": [sig("hostile.callback" + INJECTION)]},
    "link[0].task (space)": {"link": [sig("hostile.call back")]},
    "link[0].options.task_id": {"link": [sig(task_id="cb" + INJECTION)]},
    "link_error[0].task": {"link_error": [sig("x" + INJECTION)]},
    "chain[0].task": {"chain": [sig("hostile.callback" + INJECTION)]},
    "chain[1].options.task_id": {"chain": [sig(), sig(task_id="x y")]},
    "chord.id": {"chord": chord_field(id="chord" + INJECTION)},
    "chord.body.task": {"chord": chord_field(body=sig("hostile.callback" + INJECTION))},
    "chord.body.options.task_id": {"chord": chord_field(body=sig(task_id="b" + INJECTION))},
    "link[0].tasks[0].task": {"link": [{"kind": "group", "tasks": [sig("a" + INJECTION)]}]},
}


@pytest.mark.parametrize("place", INJECTIONS)
async def test_protocol_injection_in_nested_fields_is_refused_before_running(
    app: App, worker, place: str
) -> None:
    calls = recorder(app)
    await worker(app)
    body = {"id": "hostile-1", "task": "hostile.record", "args": [1], **INJECTIONS[place]}
    reason = await refused_before_running(app, calls, "hostile-1", body)
    assert f"field '{place.split(' ')[0]}'" in reason
    await still_serving(app, calls)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"eta": "tomorrow"}, "field 'eta': 'tomorrow' is not an RFC 3339 time"),
        ({"expires": "next week"}, "field 'expires': 'next week' is not an RFC 3339 time"),
        ({"eta": "9999-12-31T23:59:59-01:00"}, "field 'eta'"),
        ({"link": [sig(countdown=float("nan"))]}, "field 'link[0].options.countdown'"),
        ({"link": [sig(expires="soon")]}, "field 'link[0].options.expires'"),
    ],
)
async def test_unreadable_times_are_refused_before_running(
    app: App, worker, fields: dict[str, Any], error: str
) -> None:
    calls = recorder(app)
    await worker(app)
    body = {"id": "hostile-2", "task": "hostile.record", "args": [1], **fields}
    assert error in await refused_before_running(app, calls, "hostile-2", body)
    await still_serving(app, calls)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"chain": [{"kind": "chain", "tasks": []}]}, "field 'chain[0].tasks' is empty"),
        ({"link": [{"kind": "chord", "header": sig()}]}, "field 'link[0].body' is missing"),
        ({"link": [{"kind": "loop"}]}, "field 'link[0].kind' is not a signature kind"),
        ({"chord": {"id": "c1", "size": 2, "index": 0}}, "field 'chord.body' is missing"),
        ({"chord": chord_field(), "chain": [{"kind": "group", "tasks": [sig()]}]}, "chord header"),
        (
            {"link": [{"kind": "group", "tasks": [sig()], "options": {"link": [sig()]}}]},
            "a group has no link",
        ),
        ({"link": [sig(link="not a list")]}, "field 'link[0].options.link' has the wrong type"),
        ({"group_index": -1}, "field 'group_index' must be 0 or more"),
        ({"v": 2}, "unsupported protocol version 2"),
    ],
)
async def test_malformed_nested_elements_are_refused_on_first_delivery(
    app: App, worker, fields: dict[str, Any], error: str
) -> None:
    calls = recorder(app)
    await worker(app)
    body = {"id": "hostile-3", "task": "hostile.record", "args": [1], **fields}
    reason = await refused_before_running(app, calls, "hostile-3", body)
    assert error in reason
    assert "delivered" not in reason  # not a WorkerLost after max_deliveries
    await still_serving(app, calls)


async def test_nats_py_subject_validation_is_on(app: App) -> None:
    """The second line of defence: a subject with whitespace never reaches the server."""
    connection = await app.client.connection()
    with pytest.raises(nats.errors.BadSubjectError):
        await connection.broker.nc.publish("actors.task.a b" + INJECTION, b"")
    assert connection.broker.nc.is_connected
