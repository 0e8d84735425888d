"""A message redelivered after its result was stored does not run again; what follows it
(the next chain step, the chord join) still happens, once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from actors import App, chain, chord
from actors.nats.consumer import Delivery
from actors.wire import topology
from tests.apps.canvas import register


def lose_first_ack(monkeypatch: pytest.MonkeyPatch, task: str) -> list[int]:
    """Drop the ack of every first delivery of ``task``, as if its worker died right after
    storing the result; return the stream sequences whose ack was lost."""
    lost: list[int] = []
    ack = Delivery.ack

    async def lossy(self: Delivery) -> None:
        if self.subject == topology.task_subject(task) and self.delivered == 1:
            lost.append(self.stream_seq)
            return
        await ack(self)

    monkeypatch.setattr(Delivery, "ack", lossy)
    return lost


async def settled(app: App, task: str, timeout: float = 20) -> None:
    """Wait until the consumer of ``task`` has nothing pending or unacked."""
    connection = await app.client.connection()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        info = await connection.broker.js.consumer_info(
            topology.TASK_STREAM, topology.consumer_name(task)
        )
        if info.num_pending == 0 and info.num_ack_pending == 0:
            return
        assert loop.time() < deadline, f"{task}: {info.num_pending} pending, unacked"
        await asyncio.sleep(0.1)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_a_redelivered_finished_task_is_not_run_again(
    make_app: Any, worker: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = make_app(ack_wait=1)
    tasks = register(app)
    lost = lose_first_ack(monkeypatch, "canvas.record")
    first, second = tmp_path / "first", tmp_path / "second"
    with capture_logs() as logs:
        await worker(app, concurrency=4)
        steps = chain(
            tasks["record"].s(5, str(first), "a"),
            tasks["add"].s(1),
            tasks["record"].s(str(second), "b"),
        )
        result = await steps.aapply_async()
        assert await result.aget(timeout=20) == 6
        await settled(app, "canvas.record")
    assert len(lost) == 2  # both record steps lost their first ack and were redelivered
    assert len(lines(first)) == 1
    assert len(lines(second)) == 1
    done = [e for e in logs if e["event"] == "task.already_done"]
    assert len(done) == 2 and all(e["delivered"] >= 2 for e in done)


async def test_a_redelivered_chord_member_joins_once(
    make_app: Any, worker: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = make_app(ack_wait=1)
    tasks = register(app)
    lose_first_ack(monkeypatch, "canvas.record")
    members, body = tmp_path / "members", tmp_path / "body"
    await worker(app, concurrency=8)
    header = [tasks["record"].s(i, str(members), "m") for i in range(5)]
    result = await chord(header, tasks["record"].s(str(body), "body")).aapply_async()
    assert await result.aget(timeout=20) == list(range(5))
    await settled(app, "canvas.record")
    assert len(lines(members)) == 5
    assert len(lines(body)) == 1
