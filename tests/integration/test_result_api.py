"""The result API: children, forget, wait, collect; ResultSet; GroupResult save and restore."""

from __future__ import annotations

from typing import Any

import pytest

from actors import App, GroupResult, ProtocolError, ResultSet, group
from actors.client.result_set import saved_key
from actors.nats.bucket import Bucket
from actors.wire import topology
from actors.wire.message import encode


def register(app: App) -> dict[str, Any]:
    @app.actor(name="res.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.actor(name="res.spawn")
    def spawn(n: int) -> int:
        for i in range(n):
            add.delay(i, i)
        return n

    @app.actor(name="res.aspawn")
    async def aspawn() -> str:
        await add.adelay(10, 10)
        return "sent"

    return {"add": add, "spawn": spawn, "aspawn": aspawn}


def test_children_are_tasks_sent_inside_and_links(app: App, thread_worker) -> None:
    tasks = register(app)
    thread_worker(app)
    add = tasks["add"]
    parent = tasks["spawn"].apply_async((2,), link=add.s(100))
    assert parent.get(timeout=10) == 2
    children = parent.children
    assert children is not None and len(children) == 3
    assert [c.get(timeout=10) for c in children] == [0, 2, 102]  # two sent, then the link
    assert [(r.id, v) for r, v in parent.collect(timeout=10)] == [
        (parent.id, 2),
        *[(c.id, v) for c, v in zip(children, [0, 2, 102], strict=True)],
    ]
    in_async = tasks["aspawn"].delay()
    assert in_async.wait(timeout=10) == "sent"
    assert [c.get(timeout=10) for c in in_async.children or []] == [20]
    assert add.delay(1, 1).get(timeout=10) == 2


def test_children_is_none_while_not_finished_and_forget_deletes(app: App, thread_worker) -> None:
    tasks = register(app)
    later = tasks["add"].apply_async((1, 2), countdown=30)
    assert later.children is None
    thread_worker(app)
    done = tasks["add"].delay(1, 2)
    assert done.get(timeout=10) == 3 and done.children == []
    fresh = app.AsyncResult(done.id)
    assert fresh.state == "SUCCESS"
    fresh.forget()
    assert app.AsyncResult(done.id).state == "PENDING"


def test_result_set_waits_on_any_results(app: App, thread_worker) -> None:
    tasks = register(app)
    thread_worker(app)
    first, second = tasks["add"].delay(1, 1), tasks["add"].delay(2, 2)
    results = ResultSet([first])
    results.add(second)
    results.add(first)  # already a member
    assert len(results) == 2 and results.get(timeout=10) == [2, 4]
    assert results.completed_count() == 2 and results.ready() and results.successful()
    results.discard(first)
    assert results.join(timeout=10) == [4]
    with pytest.raises(KeyError):
        results.remove(first)


def test_group_result_save_and_restore(app: App, make_app, thread_worker) -> None:
    tasks = register(app)
    thread_worker(app)
    saved = group(tasks["add"].s(i, i) for i in range(3)).apply_async()
    saved.save()
    other = make_app("elsewhere")
    restored = other.GroupResult.restore(saved.id)
    assert isinstance(restored, GroupResult) and restored.id == saved.id
    assert restored.leaf_ids() == saved.leaf_ids()
    assert restored.get(timeout=10) == [0, 2, 4]
    assert GroupResult.restore(saved.id, app=other) is not None
    made = app.GroupResult("made-1", list(saved.results))
    made.save()
    assert app.GroupResult.restore("made-1").get(timeout=10) == [0, 2, 4]  # type: ignore[union-attr]
    made.delete()
    assert app.GroupResult.restore("made-1") is None and app.GroupResult.restore("nope") is None


async def test_a_forged_saved_group_is_a_protocol_error(app: App) -> None:
    connection = await app.client.connection()
    bucket = Bucket(connection.broker, topology.RESULTS_BUCKET)
    for forged in ({"id": "g1", "results": ["bad id!"]}, {"id": "g1"}, [1, 2]):
        await bucket.put(saved_key("g1"), encode(forged))
        with pytest.raises(ProtocolError, match="saved group"):
            await app.GroupResult.arestore("g1")
    with pytest.raises(ProtocolError, match="valid group id"):
        await app.GroupResult.arestore("a.b")
