"""Celery parity against a real nats-server: replace, argument types, signatures as arguments,
the current App."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from actors import (
    ActorsError,
    App,
    ConfigurationError,
    chord,
    current,
    group,
    signals,
    signature,
)
from tests.apps.parity import register
from tests.helpers import aeventually


@pytest.fixture
async def parity(app: App, worker: Any) -> dict[str, Any]:
    tasks = register(app)
    await worker(app)
    return tasks


async def test_replace_gives_the_replacements_result_and_keeps_what_follows(
    parity: dict[str, Any],
) -> None:
    app, replaced, mul = parity["add"].app, parity["replaced"], parity["mul"]
    states: list[tuple[str, str]] = []

    def postrun(sender: Any, task_id: str, state: str, **_: Any) -> None:
        states.append((sender.name, state))

    signals.task_postrun.connect(postrun)
    try:
        assert await (await replaced.adelay(2, 3)).aget(timeout=10) == 5
        # as with Celery, hooks see the replaced task end IGNORED, and the replacement's end
        await aeventually(lambda: sorted(states), until=lambda seen: len(seen) >= 2, what="ends")
    finally:
        signals.task_postrun.disconnect(postrun)
    assert sorted(states) == [("parity.add", "SUCCESS"), ("parity.replaced", "IGNORED")]
    # the chain after the replaced task continues from the replacement's result
    assert await (await (replaced.s(2, 3) | mul.s(10)).adelay()).aget(timeout=10) == 50
    # and its link callbacks too
    result = await replaced.aapply_async((1, 1), link=mul.s(100).set(task_id="after-replace"))
    assert await result.aget(timeout=10) == 2
    assert await app.AsyncResult("after-replace").aget(timeout=10) == 200
    # a replacement may replace itself in turn
    assert await (await parity["replaced_twice"].adelay(0)).aget(timeout=10) == 3
    # in a chord header, the replacement joins the chord in the task's place
    header = group(replaced.s(1, 1), parity["add"].s(2, 2))
    assert await (await chord(header).acall(parity["tsum"].s())).aget(timeout=10) == 6
    # not inside a map, nor outside a running task
    with pytest.raises(ActorsError, match="cannot replace one item of a map"):
        await (await replaced.starmap([(1, 1)]).adelay()).aget(timeout=10)
    with pytest.raises(ActorsError, match="only be called while the task runs"):
        replaced.replace(mul.s(1, 1))
    # a group or a chain cannot replace a task: the task fails and says why
    for name in ("replaced_by_group", "replaced_by_chain"):
        with pytest.raises(ConfigurationError, match="cannot replace a task with a"):
            await (await parity[name].adelay(*([1] if "chain" in name else []))).aget(timeout=10)


async def test_replace_from_the_process_pool(parity: dict[str, Any]) -> None:
    result = await parity["replaced_in_process"].adelay(20, 22)
    assert await result.aget(timeout=30) == 42


async def test_datetime_date_time_uuid_decimal_round_trip(parity: dict[str, Any]) -> None:
    when = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    key = UUID("12345678-1234-5678-1234-567812345678")
    result = await parity["shift"].adelay(when, date(2026, 3, 1), time(8), key, Decimal("1.10"))
    got = await result.aget(timeout=10)
    assert got == [
        datetime(2026, 3, 2, 12, 30, tzinfo=UTC),
        date(2026, 3, 1),
        time(8),
        key,
        Decimal("2.20"),
        [1, 2],  # a tuple comes back as a list
    ]


async def test_a_signature_argument_arrives_as_a_map_and_is_rebuilt(
    parity: dict[str, Any],
) -> None:
    app = parity["add"].app
    sent = await parity["run_signature"].adelay(parity["add"].s(40, 2))
    started_id = await sent.aget(timeout=10)
    assert await app.AsyncResult(started_id).aget(timeout=10) == 42


def test_a_signature_by_name_is_sent_through_the_current_app(
    app: App, thread_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(app)
    thread_worker(app)
    monkeypatch.setattr(current, "_current", None)
    app.set_current()
    assert signature("parity.add", args=(2, 2)).delay().get(timeout=10) == 4
    # send_task takes apply_async's options, as Celery's does; a naive eta is read in UTC
    past = datetime(2020, 1, 1, 12)
    assert app.send_task("parity.add", (1, 2), eta=past, expires=60).get(timeout=10) == 3


def test_max_tasks_per_child_replaces_the_worker_process(
    make_app: Any, worker_process: Any
) -> None:
    process = worker_process(
        "tests.apps.parity:app", "--max-tasks-per-child", "2", "-c", "1", "-l", "info"
    )
    app = make_app("client")
    results = [app.send_task("parity.add", (i, i)) for i in range(3)]
    assert [r.get(timeout=30) for r in results] == [0, 2, 4]
    process.wait_for_event("worker.process_recycled", count=1)
    started = process.events("worker.started")
    assert len({event["hostname"] for event in started}) >= 2  # a fresh process took over
    [recycling] = process.events("worker.recycling")[:1]
    assert recycling["reason"] == "ran 2 tasks (max_tasks_per_child=2)"
