"""``actors migrate``: move an ACTORS stream made by an older actors to the current streams.

Before this version ACTORS held immediate tasks and schedules together, with message schedules
on, which forces rollup headers on: any publisher could purge it with ``Nats-Rollup: all``.
The server cannot switch schedules off on an existing stream, so ACTORS is made anew:

1. ACTORS stops taking new messages (its subjects become ``actors.migrating``); publishers
   get "no responders" and retry until ``publish_timeout``, when the new ACTORS answers.
2. ACTORS_SCHEDULED is created. Each stored message is copied there in order, then deleted:
   a task on ``actors.task.<name>`` as ``actors.due.<name>`` (ACTORS will source it as a
   task again), a schedule with its target moved from ``actors.task.<name>`` to
   ``actors.due.<name>``. A copy carries ``Nats-Msg-Id: migrate-<seq>``, so running the
   migration again after an interruption does not copy twice.
3. The old ACTORS (and its consumers) is deleted and the current one created; workers
   create their consumers again when they start.

Stop every worker first: a message a worker holds while it is moved runs twice.
"""

from __future__ import annotations

import nats.js.errors
import structlog
from nats.js import api

from actors.errors import BrokerUnavailable
from actors.nats.broker import Broker
from actors.nats.connection import NATS_ERRORS
from actors.wire import topology

log = structlog.get_logger(__name__)

_PARKED = "actors.migrating"
_SCHEDULE_HEADERS = (topology.SCHEDULE, "Nats-Schedule-Time-Zone")


async def migrate(broker: Broker) -> int:
    """Move the messages of an old-style ACTORS stream; return how many were moved.

    Does nothing (returns 0) when ACTORS is already current or missing. Ends with
    ``ensure_topology``, so every stream is current afterwards.
    """
    try:
        moved = await _migrate(broker)
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"migrating {topology.TASK_STREAM} failed: {exc!r}") from exc
    await broker.streams.ensure_topology()
    return moved


async def _migrate(broker: Broker) -> int:
    js = broker.js
    try:
        old = (await js.stream_info(topology.TASK_STREAM)).config
    except nats.js.errors.NotFoundError:
        return 0
    if not old.allow_msg_schedules:
        return 0
    for consumer in await js.consumers_info(topology.TASK_STREAM):
        await js.delete_consumer(topology.TASK_STREAM, consumer.name)
    old.subjects = [_PARKED]
    await js.update_stream(old)
    await broker.streams.ensure_stream(topology.SCHEDULED_STREAM)
    moved = 0
    seq = 1
    while True:
        try:
            stored = await js.get_msg(topology.TASK_STREAM, seq, subject=">", next=True)
        except nats.js.errors.NotFoundError:
            break
        assert stored.seq is not None
        seq = stored.seq + 1
        if stored.subject and await _copy(broker, stored):
            moved += 1
        await js.delete_msg(topology.TASK_STREAM, stored.seq)
    await js.delete_stream(topology.TASK_STREAM)
    log.info("migration.done", stream=topology.TASK_STREAM, moved=moved)
    return moved


async def _copy(broker: Broker, stored: api.RawStreamMsg) -> bool:
    """Publish one old message to ACTORS_SCHEDULED; False if it is not ours to keep."""
    subject = str(stored.subject)
    old = stored.headers or {}
    # Nats-* headers were set by the server or meant something to the old stream only.
    headers = {key: value for key, value in old.items() if not key.startswith("Nats-")}
    headers["Nats-Msg-Id"] = f"migrate-{stored.seq}"
    if subject.startswith(topology.TASK_PREFIX):
        subject = topology.task_to_due_subject(subject)
    elif subject.startswith(topology.SCHEDULE_PREFIX) and topology.SCHEDULE in old:
        for key in _SCHEDULE_HEADERS:
            if key in old:
                headers[key] = old[key]
        target = old.get(topology.SCHEDULE_TARGET, "")
        headers[topology.SCHEDULE_TARGET] = topology.task_to_due_subject(target)
    else:
        log.warning("migration.dropped", subject=subject, seq=stored.seq)
        return False
    await broker.publish(subject, stored.data or b"", headers)
    return True
