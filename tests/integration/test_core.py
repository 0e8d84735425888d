"""Core behaviour against a real nats-server: sending, running, results, states."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from actors import App, ResultTimeout, TaskFailed
from actors.wire.record import FAILURE, PENDING, SUCCESS
from tests.apps.basic import CustomError, register
from tests.helpers import aeventually


async def test_sync_and_async_actors_return_results(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    assert await (await tasks["add"].adelay(2, 2)).aget(timeout=10) == 4
    assert await (await tasks["aadd"].adelay(3, 4)).aget(timeout=10) == 7


async def test_bound_task_sees_its_request(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["ctx"].aapply_async((5,), task_id="fixed-id-1")
    seen = await result.aget(timeout=10)
    assert seen == {
        "id": "fixed-id-1",
        "args": [5],
        "kwargs": {},
        "retries": 0,
        "delivered": 1,
        "subject": "actors.task.basic.ctx",
    }


def test_sync_facade_from_plain_code(app: App, thread_worker) -> None:
    tasks = register(app)
    thread_worker(app)
    result = tasks["add"].delay(2, 2)
    assert result.get(timeout=10) == 4
    assert result.state == SUCCESS
    assert result.ready() and result.successful() and not result.failed()
    assert result.result == 4
    assert result.date_done is not None


async def test_exception_type_is_rebuilt_with_remote_traceback(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["boom"].adelay("kaput")
    with pytest.raises(CustomError, match="kaput") as caught:
        await result.aget(timeout=10)
    assert "remote traceback" in caught.value.__notes__[0]
    assert await result.astate() == FAILURE


async def test_unimportable_exception_becomes_task_failed(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["local_boom"].adelay()
    with pytest.raises(TaskFailed) as caught:
        await result.aget(timeout=10)
    assert "LocalError" in caught.value.exc_type
    assert "not importable" in str(caught.value)
    assert caught.value.remote_traceback and "local_boom" in caught.value.remote_traceback


async def test_get_without_propagate_returns_the_exception(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["boom"].adelay("quiet")
    outcome = await result.aget(timeout=10, propagate=False)
    assert isinstance(outcome, CustomError)


async def test_unknown_id_is_pending_and_get_times_out(app: App) -> None:
    result = app.AsyncResult("never-sent")
    assert await result.astate() == PENDING
    with pytest.raises(ResultTimeout):
        await result.aget(timeout=0.3)


async def test_ignore_result_per_task(app: App, worker, tmp_path: Path) -> None:
    tasks = register(app)
    await worker(app)
    marker = tmp_path / "ran"
    result = await tasks["noresult"].adelay(str(marker))
    await aeventually(marker.exists, what="the task to run")
    assert marker.read_text() == "ran"
    # The worker finished the task but stored nothing: the state stays PENDING.
    done = await (await tasks["add"].adelay(1, 1)).aget(timeout=10)
    assert done == 2
    assert await result.astate() == PENDING


async def test_ignore_result_globally(make_app, worker) -> None:
    app = make_app(ignore_result=True)
    tasks = register(app)
    serving = await worker(app)
    result = await tasks["add"].adelay(1, 2)
    # Sentinel: the worker counts a task processed once it is acked, after any result is stored.
    await aeventually(lambda: serving.processed, what="the worker to process the task")
    assert await result.astate() == PENDING
    with pytest.raises(ResultTimeout):
        await result.aget(timeout=0.3)


async def test_unencodable_result_is_a_failure(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["unencodable"].adelay()
    with pytest.raises(TypeError, match="cannot be stored"):
        await result.aget(timeout=10)


async def test_five_thousand_concurrent_tasks(app: App, worker) -> None:
    tasks = register(app)
    await worker(app, concurrency=128)
    sent = await asyncio.gather(*(tasks["add"].adelay(i, i) for i in range(5000)))
    values = await asyncio.gather(*(r.aget(timeout=60) for r in sent))
    assert values == [2 * i for i in range(5000)]


async def test_result_ttl_is_applied_to_the_bucket(make_app) -> None:
    app = make_app(result_ttl=123)
    connection = await app.client.connection()
    info = await connection.broker.js.stream_info("KV_actors_results")
    assert info.config.max_age == 123
    await app.aclose()


def test_local_call_runs_in_process(app: App) -> None:
    tasks = register(app)
    assert tasks["add"](2, 3) == 5
    assert tasks["add"].request.id is None
