"""The stream layout against a hostile publisher: no header purges queued tasks; migration."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import nats
import pytest
from nats.js import api

from actors import App, ConfigurationError
from actors.nats.broker import Broker
from actors.nats.migration import migrate
from actors.nats.server import EmbeddedServer
from actors.wire import topology
from actors.wire.message import TaskMessage, encode, format_time
from tests.apps.semantics import register
from tests.helpers import aeventually

STAMP = topology.task_subject("sem.stamp")


async def _raw_publish(url: str, subject: str, headers: dict[str, str]) -> dict[str, object]:
    """Publish as any NATS client could (no actors code); the JetStream answer."""
    nc = await nats.connect(url)
    try:
        reply = await nc.request(subject, b"", headers=headers, timeout=5)
        return dict(json.loads(reply.data))
    finally:
        await nc.close()


async def _messages(app: App, stream: str) -> int:
    connection = await app.client.connection()
    return int((await connection.broker.js.stream_info(stream)).state.messages)


@pytest.mark.parametrize("rollup", ["all", "sub"])
async def test_a_rollup_header_cannot_purge_queued_tasks(
    app: App, worker, nats_server: EmbeddedServer, rollup: str
) -> None:
    tasks = register(app)
    results = [await tasks["stamp"].aapply_async(args=(i,)) for i in range(20)]
    assert await _messages(app, topology.TASK_STREAM) == 20
    answer = await _raw_publish(nats_server.url, STAMP, {"Nats-Rollup": rollup})
    assert "rollup not permitted" in str(answer.get("error")), answer
    assert await _messages(app, topology.TASK_STREAM) == 20
    await worker(app)
    done = await asyncio.gather(*(result.aget(timeout=20) for result in results))
    assert len(done) == 20


async def test_a_schedule_header_on_a_task_subject_is_refused(
    app: App, nats_server: EmbeddedServer
) -> None:
    await app.client.connection()  # creates the streams
    answer = await _raw_publish(
        nats_server.url,
        STAMP,
        {"Nats-Schedule": "@at 2000-01-01T00:00:00Z", "Nats-Schedule-Target": STAMP},
    )
    assert "schedules is disabled" in str(answer.get("error")), answer


async def test_a_delayed_task_lands_once_in_actors_and_leaves_nothing_behind(
    app: App, worker
) -> None:
    tasks = register(app)
    await worker(app)
    result = await tasks["stamp"].aapply_async(countdown=0.5)
    await result.aget(timeout=10)
    # The fired copy is removed from ACTORS_SCHEDULED as ACTORS sources it.
    await aeventually(
        lambda: _messages(app, topology.SCHEDULED_STREAM),
        until=lambda count: count == 0,
        what="ACTORS_SCHEDULED to drop the fired message",
    )
    assert await _messages(app, topology.TASK_STREAM) == 0
    connection = await app.client.connection()
    info = await connection.broker.js.stream_info(topology.TASK_STREAM)
    assert info.state.last_seq == 1  # stored in ACTORS exactly once


def _old_task(task_id: str, eta: datetime | None = None) -> bytes:
    message = TaskMessage(id=task_id, task="sem.stamp", eta=format_time(eta) if eta else None)
    return encode(message.to_wire())


async def test_an_old_task_stream_is_refused_then_migrated(
    make_app, worker, nats_server: EmbeddedServer
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    # ACTORS as the previous version made it: tasks and schedules together, rollup on.
    await js.add_stream(
        api.StreamConfig(
            name=topology.TASK_STREAM,
            subjects=[topology.TASK_PREFIX + ">", topology.SCHEDULE_PREFIX + ">"],
            retention=api.RetentionPolicy.WORK_QUEUE,
            duplicate_window=120.0,
            allow_msg_schedules=True,
            allow_msg_ttl=True,
            allow_direct=True,
        )
    )
    await js.add_consumer(
        topology.TASK_STREAM,
        api.ConsumerConfig(durable_name="sem-stamp", filter_subject=STAMP, ack_policy="explicit"),
    )
    await js.publish(STAMP, _old_task("old-queued"), headers={"Nats-Msg-Id": "old-queued"})
    eta = datetime.now(UTC) + timedelta(seconds=4)
    await js.publish(
        topology.SCHEDULE_PREFIX + "old-delayed",
        _old_task("old-delayed", eta),
        headers={
            "Nats-Msg-Id": "old-delayed",
            "Nats-Schedule": f"@at {eta.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            "Nats-Schedule-Target": STAMP,
        },
    )
    await nc.close()

    app = make_app()
    register(app)
    with pytest.raises(ConfigurationError, match="actors migrate"):
        await worker(app)
    await app.aclose()

    app = make_app()
    register(app)
    broker = await Broker.connect(app.conf)
    try:
        assert await migrate(broker) == 2  # what `actors migrate` runs
        assert await migrate(broker) == 0  # current now: nothing to do
    finally:
        await broker.close()
    await worker(app)
    assert await app.AsyncResult("old-queued").aget(timeout=10) > 0
    assert await app.AsyncResult("old-delayed").aget(timeout=10) >= eta.timestamp() - 1
    js = (await app.client.connection()).broker.js
    config = (await js.stream_info(topology.TASK_STREAM)).config
    assert not config.allow_msg_schedules and not config.allow_rollup_hdrs
    answer = await _raw_publish(nats_server.url, STAMP, {"Nats-Rollup": "all"})
    assert "rollup not permitted" in str(answer.get("error")), answer
