"""The unrouted sweeper fails exactly the messages no consumer serves, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import nats
import pytest

from actors import App, ProtocolError
from actors.nats.server import EmbeddedServer
from actors.worker import dead_letters as deadletter
from actors.worker.dead_letters import sweep_unrouted
from tests.apps.basic import register
from tests.integration.test_bad_input import dead_letters

ODD_SUBJECTS = {
    "actors.task.>": "wild-gt",
    "actors.task.*": "wild-star",
    "actors.task.probe-echo": "dash-1",  # the consumer of probe.echo is named probe-echo
}


async def test_odd_subjects_are_dead_lettered_and_served_tasks_are_not(
    make_app: Callable[..., App], worker: Callable[..., Any], nats_server: EmbeddedServer
) -> None:
    app = make_app(unrouted_grace=0.5)
    tasks = register(app)

    @app.actor(name="probe.echo")
    def echo(value: Any) -> Any:
        return value

    # 100 tasks wait on a served subject (its consumer exists) while the sweeper runs.
    broker = (await app.client.connection()).broker
    await broker.streams.ensure_consumer("basic.add")
    results = [await tasks["add"].adelay(i, 1) for i in range(100)]
    raw = await nats.connect(nats_server.url)
    try:
        for subject, task_id in ODD_SUBJECTS.items():
            body = msgpack.packb({"id": task_id, "task": "probe.echo", "args": [1]})
            await raw.publish(subject, body)
        await raw.flush()
    finally:
        await raw.close()
    await worker(app, actor_names=["probe.echo"])

    letters = await dead_letters(app, 3, timeout=15)
    assert {dead.headers["Actors-Dead-Subject"] for dead in letters} == set(ODD_SUBJECTS)
    for dead in letters:
        assert dead.subject == "actors.dead._invalid"
        assert "invalid task subject" in dead.headers["Actors-Dead-Reason"]
    for task_id in ODD_SUBJECTS.values():
        with pytest.raises(ProtocolError, match="invalid task subject"):
            await app.AsyncResult(task_id).aget(timeout=10)
    assert await sweep_unrouted(broker, grace=0.0) == 0  # every waiting task past the grace

    await worker(app, actor_names=["basic.add"])
    assert [await r.aget(timeout=20) for r in results] == [i + 1 for i in range(100)]
    assert await (await echo.adelay("ok")).aget(timeout=10) == "ok"


async def test_a_wildcard_subject_is_found_behind_a_long_queue_in_bounded_steps(
    make_app: Callable[..., App], nats_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadletter, "_SCAN_LIMIT", 10)
    app = make_app()
    tasks = register(app)
    broker = (await app.client.connection()).broker
    await broker.streams.ensure_consumer("basic.add")
    results = [await tasks["add"].adelay(i, 1) for i in range(35)]
    raw = await nats.connect(nats_server.url)
    try:
        await raw.publish("actors.task.>", msgpack.packb({"id": "behind-1", "task": "x"}))
        await raw.flush()
    finally:
        await raw.close()
    cursors: dict[str, int] = {}
    moved = [await sweep_unrouted(broker, 0.0, cursors) for _ in range(4)]
    assert moved == [0, 0, 0, 1]  # 10 messages read per sweep, the 36th found by the fourth
    assert cursors == {}
    with pytest.raises(ProtocolError, match="invalid task subject"):
        await app.AsyncResult("behind-1").aget(timeout=10)
    waiting = await broker.streams.task_subject_counts()
    assert waiting == {"actors.task.basic.add": len(results)}
