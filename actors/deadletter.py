"""Dead letters: messages no worker can run are moved to the ``ACTORS_DEAD`` stream."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import structlog

from actors import topology
from actors.broker import Broker
from actors.errors import BrokerUnavailable, ProtocolError, TaskNotRegistered
from actors.message import decode
from actors.results import ResultRecord

log = structlog.get_logger(__name__)


async def dead_letter(
    broker: Broker,
    *,
    subject: str,
    data: bytes,
    headers: dict[str, str],
    seq: int,
    reason: str,
    task: str | None,
) -> None:
    """Store a copy of a message in the dead-letter stream with the reason in headers.

    The copy's ``Nats-Msg-Id`` is derived from the original sequence, so doing this twice
    (a crash between copy and ack) stores it once.
    """
    dead_headers = {k: v for k, v in headers.items() if k.lower() not in ("nats-msg-id", "status")}
    dead_headers.update(
        {
            topology.DEAD_REASON: reason.replace("\r", " ").replace("\n", " ")[:1000],
            topology.DEAD_SUBJECT: subject,
            topology.DEAD_SEQUENCE: str(seq),
            "Nats-Msg-Id": f"dead-{topology.TASK_STREAM}-{seq}",
        }
    )
    if task:
        dead_headers[topology.DEAD_TASK] = task
    name = task or topology.task_name_from_subject(subject) or "_unknown"
    await broker.publish(topology.dead_subject(name), data, dead_headers)
    log.error("task.dead_lettered", task=task, subject=subject, seq=seq, reason=reason)


def message_id(data: bytes, content_type: str | None) -> str | None:
    """The task id of a message that may be malformed, when it can be read at all."""
    try:
        body = decode(data, content_type)
    except ProtocolError:
        return None
    task_id = body.get("id") if isinstance(body, dict) else None  # a map, possibly malformed
    return task_id if topology.valid_task_id(task_id) else None


async def sweep_unrouted(broker: Broker, grace: float) -> int:
    """Fail messages waiting on task subjects that no consumer serves, once older than ``grace``.

    A message for a task no worker has ever served would wait for ever; the client would hang.
    This moves such messages to the dead-letter stream and stores a TaskNotRegistered failure
    as their result. Safe to run in several workers at once. Returns how many were moved.
    """
    moved = 0
    consumers = await broker.consumer_names()
    cutoff = datetime.now(UTC) - timedelta(seconds=grace)
    for subject in await broker.task_subject_counts():
        name = topology.task_name_from_subject(subject)
        if name is not None and topology.consumer_name(name) in consumers:
            continue
        after = 0
        while stored := await broker.stored_message(topology.TASK_STREAM, subject, after):
            after = stored.seq
            if stored.time > cutoff:
                break
            reason = f"no worker serves task {name!r} (no consumer after {grace:g}s)"
            await dead_letter(
                broker,
                subject=subject,
                data=stored.data,
                headers=stored.headers,
                seq=stored.seq,
                reason=reason,
                task=name,
            )
            task_id = message_id(stored.data, stored.headers.get("Content-Type"))
            if task_id is not None:
                await ResultRecord.failure(task_id, name, TaskNotRegistered(reason)).store(broker)
            with contextlib.suppress(BrokerUnavailable):
                await broker.delete_message(topology.TASK_STREAM, stored.seq)
            moved += 1
    return moved
