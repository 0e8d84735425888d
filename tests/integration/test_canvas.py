"""Workflows against a real nats-server, with in-loop workers (fast cases).

Cases that need separate worker processes live in tests/integration/test_canvas_processes.py
and tests/chaos/test_chord_chaos.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from actors import App, ChordError, GroupResult, chain, chord, group, signature
from actors.wire.record import FAILURE, SUCCESS
from tests.apps.canvas import register
from tests.helpers import aeventually, asettled, lines


@pytest.fixture
async def canvas(app: App, worker: Any) -> dict[str, Any]:
    """The canvas test actors, served by two in-loop workers."""
    tasks = register(app)
    await worker(app)
    await worker(app)
    return tasks


# -- link / link_error -----------------------------------------------------------------------


async def test_link_gets_the_result_prepended(canvas: dict[str, Any]) -> None:
    add, mul = canvas["add"], canvas["mul"]
    result = await add.aapply_async((2, 2), link=add.s(8).set(task_id="cb-1"))
    assert await result.aget(timeout=10) == 4
    app = add.app
    assert await app.AsyncResult("cb-1").aget(timeout=10) == 12
    await add.aapply_async(
        (1, 1), link=[mul.s(10).set(task_id="cb-2"), add.si(5, 5).set(task_id="cb-3")]
    )
    assert await app.AsyncResult("cb-2").aget(timeout=10) == 20
    assert await app.AsyncResult("cb-3").aget(timeout=10) == 10


async def test_link_error_gets_task_id_error_and_traceback(
    canvas: dict[str, Any], tmp_path: Path
) -> None:
    marker = tmp_path / "errbacks"
    errback = canvas["errback"].s(marker=str(marker))
    result = await canvas["div"].aapply_async((1, 0), link_error=[errback, errback.clone()])
    with pytest.raises(ZeroDivisionError):
        await result.aget(timeout=10)
    seen = await aeventually(lambda: lines(marker), until=lambda n: len(n) >= 2, what="2 errbacks")
    assert seen == [f"{result.id}|ZeroDivisionError|division by zero|True"] * 2
    # an errback given as an immutable signature gets only its own arguments
    ok = await canvas["div"].aapply_async((1, 0), link_error=canvas["add"].si(1, 2))
    with pytest.raises(ZeroDivisionError):
        await ok.aget(timeout=10)


# -- chain -----------------------------------------------------------------------------------


async def test_chain_feeds_each_result_to_the_next(canvas: dict[str, Any]) -> None:
    add, mul = canvas["add"], canvas["mul"]
    result = await (add.s(2, 2) | mul.s(8) | add.s(1)).aapply_async()
    assert await result.aget(timeout=10) == 33
    assert await result.parent.aget(timeout=10) == 32
    assert await result.parent.parent.aget(timeout=10) == 4
    assert result.parent.parent.parent is None
    partial = await chain(add.s(2), mul.s(2)).adelay(3)
    assert await partial.aget(timeout=10) == 10
    immutable = await chain(add.s(1, 1), add.si(5, 5)).aapply_async()
    assert await immutable.aget(timeout=10) == 10


async def test_failing_step_stops_the_chain_marks_the_rest_and_calls_errbacks(
    canvas: dict[str, Any], nats_server: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "errbacks"
    ran = tmp_path / "ran"
    add, div, record = canvas["add"], canvas["div"], canvas["record"]
    flow = chain(add.s(1, -1), div.s(0), record.s(str(ran)), add.s(1))
    flow.set(link_error=canvas["errback"].s(marker=str(marker)))
    last = await flow.aapply_async()
    with pytest.raises(ZeroDivisionError) as caught:
        await last.aget(timeout=10)  # does not hang: the rest is marked FAILURE
    assert "chain failed" in str(caught.value.__notes__)
    failed_step = last.parent.parent
    assert await failed_step.astate() == FAILURE
    assert await last.parent.astate() == FAILURE
    assert await last.parent.parent.parent.astate() == SUCCESS
    expected = f"{failed_step.id}|ZeroDivisionError|division by zero|True"
    assert await aeventually(lambda: lines(marker), what="the errback") == [expected]
    # Sentinel: once the failed step is acked, whatever it published is in the stream; once
    # the steps after it and the errback are settled too, a wrongly sent step would have run.
    await asettled(nats_server.url, "canvas.div")
    await asettled(nats_server.url, "canvas.record", "canvas.add", "canvas.errback")
    assert not ran.exists()
    assert len(lines(marker)) == 1


# -- group -----------------------------------------------------------------------------------


async def test_group_results_in_order(canvas: dict[str, Any]) -> None:
    add = canvas["add"]
    result = await group(add.s(i, i) for i in range(10)).aapply_async()
    assert isinstance(result, GroupResult) and len(result) == 10
    assert await result.aget(timeout=10) == [i + i for i in range(10)]
    assert await result.ajoin(timeout=10) == [i + i for i in range(10)]
    assert await result.acompleted_count() == 10
    with_args = await group(add.s(1), add.s(2)).aapply_async((10,))
    assert await with_args.aget(timeout=10) == [11, 12]


def test_group_result_sync_api(app: App, thread_worker: Any) -> None:
    tasks = register(app)
    thread_worker(app)
    add, div = tasks["add"], tasks["div"]
    result = group(add.s(1, 1), div.s(1, 0), add.s(2, 2)).delay()
    assert result.get(timeout=10, propagate=False)[0::2] == [2, 4]
    assert isinstance(result.get(timeout=10, propagate=False)[1], ZeroDivisionError)
    with pytest.raises(ZeroDivisionError):
        result.join(timeout=10)
    assert result.ready() and not result.waiting()
    assert result.failed() and not result.successful()
    assert result.completed_count() == 2
    good = group([add.s(1, 1)])()
    assert good.get(timeout=10) == [2] and good.successful()


# -- chord -----------------------------------------------------------------------------------


async def test_chord_body_gets_the_ordered_header_results(canvas: dict[str, Any]) -> None:
    add, tsum, echo = canvas["add"], canvas["tsum"], canvas["echo"]
    result = await chord((add.s(i, i) for i in range(10)), tsum.s()).aapply_async()
    assert await result.aget(timeout=10) == 90
    assert isinstance(result.parent, GroupResult)
    assert await result.parent.aget(timeout=10) == [i + i for i in range(10)]
    called = await chord([add.s(3, 3), add.s(1, 1), add.s(2, 2)]).acall(echo.s("x"))
    assert await called.aget(timeout=10) == [[6, 2, 4], "x"]
    empty = await chord([], tsum.s()).aapply_async()
    assert await empty.aget(timeout=10) == 0


async def test_retried_header_members_fire_the_body_once(
    canvas: dict[str, Any], tmp_path: Path
) -> None:
    retry_once, record = canvas["retry_once"], canvas["record"]
    attempts, bodies = tmp_path / "attempts", tmp_path / "bodies"
    header = [retry_once.s(i, str(attempts)) for i in range(20)]
    result = await chord(header, record.s(str(bodies), "body")).aapply_async()
    assert await result.aget(timeout=30) == list(range(20))
    lines = attempts.read_text().splitlines()
    assert sorted(lines) == sorted([f"0 {i}" for i in range(20)] + [f"1 {i}" for i in range(20)])
    assert len(bodies.read_text().splitlines()) == 1


def test_chord_sync_forms(app: App, thread_worker: Any) -> None:
    tasks = register(app)
    thread_worker(app)
    add, tsum = tasks["add"], tasks["tsum"]
    assert chord(add.s(i, i) for i in range(5))(tsum.s()).get(timeout=10) == 20
    assert chord([add.s(1, 1)], tsum.s()).delay().get(timeout=10) == 2
    assert chord([add.s(1, 1)], tsum.s()).apply_async().get(timeout=10) == 2


async def test_failing_header_routes_to_the_body_errback_and_body_does_not_run(
    canvas: dict[str, Any], nats_server: Any, tmp_path: Path
) -> None:
    marker, ran = tmp_path / "errbacks", tmp_path / "ran"
    add, div, record = canvas["add"], canvas["div"], canvas["record"]
    body = record.s(str(ran)).set(link_error=canvas["errback"].s(marker=str(marker)))
    result = await chord([add.s(1, 1), div.s(1, 0), div.s(2, 0)], body).aapply_async()
    with pytest.raises(ChordError, match=r"header task canvas.div\[.*\] failed: ZeroDivision"):
        await result.aget(timeout=10)
    (seen,) = await aeventually(lambda: lines(marker), what="the body's errback")
    assert seen.startswith(f"{result.id}|actors.errors.ChordError|chord ")
    # Sentinel: every header member handled (the join done), then the body and errbacks.
    await asettled(nats_server.url, "canvas.add", "canvas.div")
    await asettled(nats_server.url, "canvas.record", "canvas.errback")
    assert not ran.exists()
    assert len(lines(marker)) == 1  # two members failed, the errback ran once


# -- map / starmap / chunks ------------------------------------------------------------------


async def test_map_and_starmap_are_one_message(app: App, worker: Any) -> None:
    tasks = register(app)
    serving = await worker(app)
    add, tsum = tasks["add"], tasks["tsum"]
    before = serving.processed
    assert await (await tsum.map([[1, 2], [3, 4], []]).aapply_async()).aget(timeout=10) == [3, 7, 0]
    assert await (await add.starmap([(1, 2), (3, 4)]).adelay()).aget(timeout=10) == [3, 7]
    assert serving.processed - before == 2
    bad = await add.starmap([(1, 2, 3)]).aapply_async()
    with pytest.raises(Exception, match="arguments do not fit"):
        await bad.aget(timeout=10)


async def test_chunks(canvas: dict[str, Any]) -> None:
    add = canvas["add"]
    items = [(i, i) for i in range(10)]
    result = await add.chunks(items, 3).aapply_async()
    assert await result.aget(timeout=10) == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]
    as_group = add.chunks(items, 5).group()
    assert len(as_group.tasks) == 2
    halves = await as_group.aapply_async()
    assert await halves.aget(timeout=10) == [[0, 2, 4, 6, 8], [10, 12, 14, 16, 18]]


# -- nesting ---------------------------------------------------------------------------------


async def test_chain_of_groups_becomes_chords(canvas: dict[str, Any]) -> None:
    add, tsum, mul = canvas["add"], canvas["tsum"], canvas["mul"]
    flow = chain(add.s(1, 1), group(add.s(1), add.s(2)), tsum.s(), group(mul.s(2), mul.s(3)))
    result = await flow.aapply_async()
    assert isinstance(result, GroupResult)
    assert await result.aget(timeout=10) == [14, 21]
    header = result.parent.parent
    assert await result.parent.aget(timeout=10) == 7
    assert isinstance(header, GroupResult) and await header.aget(timeout=10) == [3, 4]
    assert await header.parent.aget(timeout=10) == 2


async def test_group_of_chains(canvas: dict[str, Any]) -> None:
    add, mul = canvas["add"], canvas["mul"]
    result = await group(add.s(i, i) | mul.s(10) for i in range(4)).aapply_async()
    assert await result.aget(timeout=10) == [0, 20, 40, 60]
    assert await result.results[3].parent.aget(timeout=10) == 6


async def test_chord_inside_a_chain(canvas: dict[str, Any]) -> None:
    add, tsum = canvas["add"], canvas["tsum"]
    flow = add.s(1, 1) | chord([add.s(1), add.s(2)], tsum.s()) | add.s(100)
    result = await flow.aapply_async()
    assert await result.aget(timeout=10) == 107
    assert await result.parent.aget(timeout=10) == 7
    assert await result.parent.parent.aget(timeout=10) == [3, 4]
    assert await result.parent.parent.parent.aget(timeout=10) == 2


async def test_chain_inside_a_chord_header(canvas: dict[str, Any]) -> None:
    add, mul, tsum = canvas["add"], canvas["mul"], canvas["tsum"]
    header = [add.s(1, 1) | mul.s(10), add.s(5, 5), chain(add.s(0, 1), add.s(1), mul.s(3))]
    result = await chord(header, tsum.s()).aapply_async()
    assert await result.aget(timeout=10) == 20 + 10 + 6
    chained = result.parent.results[2]
    assert await chained.parent.parent.aget(timeout=10) == 1


async def test_nested_chord_in_a_header_is_refused(canvas: dict[str, Any]) -> None:
    add, tsum = canvas["add"], canvas["tsum"]
    with pytest.raises(Exception, match="chord header member"):
        await chord([group(add.s(1, 1))], tsum.s()).aapply_async()


# -- signatures by name and from other languages ---------------------------------------------


async def test_signature_by_name_from_a_client_without_the_task(
    canvas: dict[str, Any], make_app: Any
) -> None:
    client = make_app("client")  # registers nothing
    sig = signature("canvas.add", args=(2, 2), app=client)
    chained = sig | signature("canvas.mul", args=(10,), app=client)
    assert await (await chained.aapply_async()).aget(timeout=10) == 40


async def test_a_json_chain_published_by_hand_runs(canvas: dict[str, Any]) -> None:
    app = canvas["add"].app
    connection = await app.client.connection()
    message = {
        "id": "json-chain-1",
        "task": "canvas.add",
        "args": [1, 2],
        "chain": [
            {"task": "canvas.mul", "args": [10], "options": {"task_id": "json-chain-2"}},
            {"task": "canvas.add", "args": [1], "options": {"task_id": "json-chain-3"}},
        ],
    }
    headers = {"Nats-Msg-Id": "json-chain-1", "Content-Type": "application/json"}
    await connection.broker.publish("actors.task.canvas.add", json.dumps(message).encode(), headers)
    assert await app.AsyncResult("json-chain-3").aget(timeout=10) == 31


# -- chord joins are idempotent ----------------------------------------------------------------


async def test_redelivered_members_and_double_counts_fire_the_body_once(
    app: App, worker: Any, nats_server: Any, tmp_path: Path
) -> None:
    """Replays what redeliveries do to the join: members joining again, alone and in batches
    the counter has not seen (as after the dedupe window), including the one that fired."""
    from actors.signature import Hop
    from actors.worker import continuations

    tasks = register(app)
    await worker(app, actor_names=["canvas.record"])
    ran = tmp_path / "body"
    flow = chord([tasks["add"].s(i, i) for i in range(5)], tasks["record"].s(str(ran)))
    result = flow.freeze()
    members = flow.messages([], [], Hop())
    for member in members[:4]:
        await continuations.succeeded(app.client, member, member.args[0] * 2)
    await continuations.succeeded(app.client, members[0], 0)  # redelivered alone: deduplicated
    # redelivered together: a batch the counter never saw, so the count passes the size
    await asyncio.gather(
        *(continuations.succeeded(app.client, m, m.args[0] * 2) for m in members[:2])
    )
    # Sentinel: the joins above returned, so a body they sent is in the stream; settled, it ran.
    await asettled(nats_server.url, "canvas.record")
    assert not ran.exists()  # member 4 has not finished: the body must not run yet
    await continuations.succeeded(app.client, members[4], 8)
    await continuations.succeeded(app.client, members[4], 8)  # the firing member redelivered
    assert await result.aget(timeout=10) == [0, 2, 4, 6, 8]
    await asettled(nats_server.url, "canvas.record")  # a second body sent would have run
    assert len(lines(ran)) == 1
