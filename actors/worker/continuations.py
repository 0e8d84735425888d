"""What a worker does after a task finishes: callbacks, the next chain step, chord joins,
errbacks, and marking the steps that will not run.

Every message published here gets a task id fixed before the task ran (frozen by the sender)
or derived from the finished task's id, so a task redelivered after a crash re-publishes the
same ids and JetStream's ``Nats-Msg-Id`` de-duplication stores them once.
"""

from __future__ import annotations

import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from actors import canvas
from actors.client.client import Client
from actors.client.connection import Connection
from actors.nats.bucket import Bucket
from actors.signature import Canvas, Hop, Signature, send_all
from actors.wire import topology
from actors.wire.message import TaskMessage, WireSignature, format_time
from actors.wire.record import FAILURE, ResultRecord, describe_exception
from actors.worker import chords

if TYPE_CHECKING:
    pass

log = structlog.get_logger(__name__)


def next_messages(message: TaskMessage, value: Any) -> list[TaskMessage]:
    """The links and the next chain step that a success of ``message`` with ``value``
    publishes (built here, sent by :func:`succeeded`); their ids are the task's children."""
    if not (message.link or message.chain):
        return []
    hop = Hop(root_id=message.root_id or message.id, parent_id=message.id)
    out: list[TaskMessage] = []
    for index, wire in enumerate(message.link):
        out.extend(_prepare(wire, f"{message.id}.link.{index}").messages([value], [], hop))
    if message.chain:
        chord, group_id, position = message.chord, message.group_id, message.group_index
        carried = Hop(hop.root_id, hop.parent_id, chord, group_id, position)
        step = _prepare(message.chain[0], f"{message.id}.next")
        out.extend(step.messages([value], message.chain[1:], carried))
    return out


async def succeeded(
    client: Client, message: TaskMessage, value: Any, following: list[TaskMessage] | None = None
) -> None:
    """Publish the links and the next chain step with ``value`` (``following``, when built
    already by :func:`next_messages`); join a chord if a member."""
    if not (message.link or message.chain or message.chord):
        return
    connection = await client.connection()
    await send_all(connection, next_messages(message, value) if following is None else following)
    if message.chord and not message.chain:
        try:
            await chords.join(connection, message, value)
        except TypeError as exc:  # the result cannot be encoded: the chord cannot complete
            error = describe_exception(exc)
            await _abort_chord(connection, message, error, str(exc))


async def failed(client: Client, message: TaskMessage, exc: BaseException) -> None:
    """Call the errbacks, fail the rest of the chain, and fail the chord this task was in."""
    if not (message.link_error or message.chain or message.chord):
        return
    connection = await client.connection()
    error = describe_exception(exc)
    trace = "".join(traceback.format_exception(exc))
    await call_errbacks(connection, message.link_error, message, message.id, error, trace)
    skipped = [s for wire in message.chain for s in _prepare(wire, None).tasks_in()]
    note = f"not run: {message.task}[{message.id}] before it in the chain failed\n\n{trace}"
    await store_failures(connection, skipped, error, note)
    if message.chord:
        await _abort_chord(connection, message, error, trace)


async def _abort_chord(
    connection: Connection, message: TaskMessage, error: dict[str, Any], trace: str
) -> None:
    failure = await chords.abort(connection, message, error)
    if failure is not None:
        await store_failures(connection, failure.tasks, failure.error, trace)
        await call_errbacks(
            connection, failure.errbacks, message, failure.body_id, failure.error, trace
        )


async def call_errbacks(
    connection: Connection,
    errbacks: list[WireSignature],
    message: TaskMessage,
    task_id: str,
    error: dict[str, Any],
    trace: str,
) -> None:
    """Publish each errback with ``(task_id, error, traceback)`` prepended (unless immutable)."""
    hop = Hop(root_id=message.root_id or message.id, parent_id=message.id)
    out: list[TaskMessage] = []
    for index, wire in enumerate(errbacks):
        errback = _prepare(wire, f"{message.id}.{task_id}.errback.{index}")
        out.extend(errback.messages([task_id, error, trace], [], hop))
    await send_all(connection, out)


async def store_failures(
    connection: Connection, tasks: list[Signature], error: dict[str, Any], trace: str
) -> None:
    """Store FAILURE records for tasks that will not run, so nobody waits on them for ever."""
    done = format_time(datetime.now(UTC))
    results = Bucket(connection.broker, topology.RESULTS_BUCKET)
    for task in tasks:
        if task.id is None:  # a foreign sender gave no id: nobody can be waiting on it
            continue
        record = ResultRecord(
            id=task.id, task=task.task, status=FAILURE, error=error, traceback=trace, date_done=done
        )
        await results.put(record.id, record.to_bytes())


def _prepare(wire: WireSignature, seed: str | None) -> Canvas:
    sig = canvas.from_wire(wire)
    if seed is not None:
        sig.assign_ids(seed)  # fills only the ids the sender left out
    return sig
