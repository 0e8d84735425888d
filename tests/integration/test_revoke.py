"""Revoke: skipped before start (also by workers started later), terminate, CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from actors import App, Revoked
from actors.wire.record import REVOKED, STARTED
from tests.apps.semantics import register
from tests.helpers import aeventually
from tests.integration.cli_helper import actors_cli


async def test_revoked_before_any_worker_started_is_skipped(app: App, worker) -> None:
    tasks = register(app)
    result = await tasks["stamp"].adelay()
    await app.control.arevoke(result.id)
    await worker(app)
    with pytest.raises(Revoked, match="revoked"):
        await result.aget(timeout=10)
    assert await result.astate() == REVOKED
    assert await (await tasks["stamp"].adelay()).aget(timeout=10) > 0


async def test_revoke_reaches_running_workers_for_delayed_tasks(app: App, worker) -> None:
    tasks = register(app)
    await worker(app)
    await worker(app)
    result = await tasks["stamp"].aapply_async(countdown=0.8)
    await app.control.arevoke(result.id)
    with pytest.raises(Revoked):
        await result.aget(timeout=10)


async def test_revoking_a_group_by_its_ids(app: App, worker) -> None:
    tasks = register(app)
    group = [await tasks["stamp"].adelay(i) for i in range(3)]
    kept = await tasks["stamp"].adelay(99)
    await app.control.arevoke([r.id for r in group])
    await worker(app)
    for result in group:
        with pytest.raises(Revoked):
            await result.aget(timeout=10)
    assert await kept.aget(timeout=10) > 0


async def test_revoke_from_the_result_handles(app: App, worker) -> None:
    from actors import group

    tasks = register(app)
    single = await tasks["stamp"].adelay(1)
    await single.arevoke()
    members = await group(tasks["stamp"].s(i) for i in range(3)).aapply_async()
    await members.arevoke()
    await worker(app)
    with pytest.raises(Revoked):
        await single.aget(timeout=10)
    for result in members:
        with pytest.raises(Revoked):
            await result.aget(timeout=10)


@pytest.mark.parametrize("task", ["along", "plong", "tlong"])
async def test_terminate_stops_a_running_task(app: App, worker, task: str, tmp_path: Path) -> None:
    tasks = register(app)
    await worker(app)
    marker = tmp_path / "started"
    result = await tasks[task].adelay(30, str(marker))
    await aeventually(
        result.astate, until=lambda state: state == STARTED, what="state STARTED", timeout=20
    )
    # Terminate the body itself, not a process-pool child still starting up.
    await aeventually(marker.exists, what="the task body to start", timeout=20)
    began = asyncio.get_running_loop().time()
    await app.control.arevoke(result.id, terminate=True)
    with pytest.raises(Revoked, match="terminated"):
        await result.aget(timeout=10)
    assert asyncio.get_running_loop().time() - began < 5
    assert await result.astate() == REVOKED


def test_revoke_command(app: App, nats_server, thread_worker) -> None:
    tasks = register(app)
    first = tasks["stamp"].delay()
    second = tasks["stamp"].delay()
    outcome = actors_cli("revoke", first.id, second.id, "--nats-url", nats_server.url)
    assert outcome.returncode == 0, outcome.stdout
    assert "revoked 2 task(s)" in outcome.stdout
    thread_worker(app)
    for result in (first, second):
        with pytest.raises(Revoked):
            result.get(timeout=10)
