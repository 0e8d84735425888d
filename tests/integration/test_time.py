"""countdown/eta (server-side schedules), expires, time limits and rate limits."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from actors import App, Revoked, SoftTimeLimitExceeded, TimeLimitExceeded
from actors.wire import topology
from actors.wire.record import REVOKED
from tests.apps.semantics import register
from tests.helpers import aeventually


async def test_countdown_runs_no_earlier_than_asked(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    sent = time.time()
    result = await tasks["stamp"].aapply_async(countdown=1.0)
    ran = await result.aget(timeout=10)
    assert ran >= sent + 1.0 - 0.01
    assert ran < sent + 3.0


async def test_eta_datetime_and_past_eta(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    eta = datetime.now(UTC) + timedelta(seconds=0.8)
    future = await tasks["stamp"].aapply_async(eta=eta)
    past = await tasks["stamp"].aapply_async(eta=datetime.now(UTC) - timedelta(hours=1))
    sent = time.time()
    assert await past.aget(timeout=5) < sent + 0.5  # past eta runs at once
    assert await future.aget(timeout=10) >= eta.timestamp() - 0.01


async def test_delayed_tasks_wait_on_schedule_subjects_not_the_actor(app: App, worker) -> None:
    tasks = register(app)
    result = await tasks["stamp"].aapply_async(countdown=60, task_id="sched-1")
    connection = await app.client.connection()
    js = connection.broker.js
    info = await js.stream_info(topology.SCHEDULED_STREAM, subjects_filter="actors.>")
    assert info.state.subjects == {"actors.sched.sched-1": 1}
    assert (await js.stream_info(topology.TASK_STREAM)).state.messages == 0
    await worker(app)
    # Sentinel: a task sent now runs, so the worker is consuming; the delayed one stays put.
    assert await (await tasks["stamp"].adelay()).aget(timeout=10) > 0
    assert await result.astate() == "PENDING"


@pytest.mark.parametrize(
    ("count", "delay"),
    [
        pytest.param(1000, 6.0, id="1k-6s"),
        pytest.param(10_000, 60.0, id="10k-60s", marks=[pytest.mark.slow, pytest.mark.chaos]),
    ],
)
async def test_many_delayed_tasks_do_not_stall_immediate_ones_and_survive_restarts(
    make_app, worker, nats_server, count: int, delay: float
) -> None:
    app = make_app()
    tasks = register(app)
    first = await worker(app, concurrency=64)
    eta = datetime.now(UTC) + timedelta(seconds=delay)
    delayed = []
    for start in range(0, count, 500):
        batch = range(start, min(count, start + 500))
        delayed += await asyncio.gather(
            *(tasks["stamp"].aapply_async((i,), eta=eta) for i in batch)
        )
    # Immediate tasks on the same actor are not held up by the waiting ones.
    began = time.monotonic()
    for _ in range(5):
        round_trips = []
        for _ in range(20):
            sent = time.monotonic()
            await (await tasks["stamp"].adelay()).aget(timeout=5)
            round_trips.append(time.monotonic() - sent)
    assert max(round_trips) < 0.5
    assert time.monotonic() - began < 5
    assert datetime.now(UTC) < eta, "the test took too long to check anything"
    # Worker restart and nats-server restart while they wait.
    await first.stop()
    await app.aclose()
    nats_server.restart()
    later = make_app()
    register(later)
    await worker(later, concurrency=128)
    ids = [r.id for r in delayed]
    values = await asyncio.gather(*(later.AsyncResult(i).aget(timeout=delay + 60) for i in ids))
    assert len(values) == count
    assert min(values) >= eta.timestamp() - 0.01


async def test_expired_task_is_not_run_and_revoked(app: App, worker) -> None:
    tasks = register(app)
    result = await tasks["stamp"].aapply_async(expires=0.2)
    await asyncio.sleep(0.4)  # the expiry itself is what is tested: let it pass
    await worker(app)
    with pytest.raises(Revoked, match="expired"):
        await result.aget(timeout=10)
    assert await result.astate() == REVOKED
    fresh = await tasks["stamp"].aapply_async(expires=30)
    assert await fresh.aget(timeout=10) > 0


async def test_expires_with_ignore_result_uses_server_ttl(app: App) -> None:
    tasks = register(app)
    await tasks["stamp"].aapply_async(expires=1, ignore_result=True)
    connection = await app.client.connection()
    js = connection.broker.js
    subject = topology.task_subject("sem.stamp")
    assert (await js.stream_info(topology.TASK_STREAM)).state.messages == 1

    async def stored() -> int:
        info = await js.stream_info(topology.TASK_STREAM, subjects_filter=subject)
        return int(info.state.messages)

    await aeventually(
        stored, until=lambda count: count == 0, what="the server to drop the expired message"
    )


async def test_async_soft_limit_raises_inside_the_task(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    assert await (await tasks["asoft"].adelay()).aget(timeout=10) == "cleaned up"


async def test_async_hard_limit_cancels(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    began = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match=r"time_limit of 0\.3s"):
        await (await tasks["ahard"].adelay()).aget(timeout=10)
    assert time.monotonic() - began < 3


async def test_thread_soft_limit_raises_inside_the_task(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    assert await (await tasks["tsoft"].adelay()).aget(timeout=10) == "cleaned up"


async def test_worker_default_soft_limit_applies_to_tasks_without_one(make_app, worker) -> None:
    app = make_app(soft_time_limit=0.3)
    tasks = register(app)
    await worker(app)
    with pytest.raises(SoftTimeLimitExceeded, match=r"soft_time_limit of 0\.3s"):
        await (await tasks["busy"].adelay(10)).aget(timeout=10)


async def test_sync_hard_limit_kills_the_child_process(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    began = time.monotonic()
    with pytest.raises(TimeLimitExceeded):
        await (await tasks["phard"].adelay()).aget(timeout=20)
    assert time.monotonic() - began < 8


async def test_process_pool_soft_limit_raises_in_the_child(app: App, worker) -> None:
    import os

    tasks = register(app)
    await worker(app)
    outcome, pid = await (await tasks["psoft"].adelay()).aget(timeout=20)
    assert outcome == "cleaned up"
    assert pid != os.getpid()


async def test_rate_limit_holds_across_workers(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    await worker(app)  # two workers share the limit (a counter in NATS)
    results = await asyncio.gather(*(tasks["rated"].adelay() for _ in range(12)))
    starts = await asyncio.gather(*(r.aget(timeout=20) for r in results))
    per_second = Counter(int(t) for t in starts)
    assert max(per_second.values()) <= 5
    assert max(starts) - min(starts) > 1.0
