"""The chord join: each header member counts once, and the body is published once.

State per chord (docs/protocol.md, "Chords"): in KV bucket ``actors_chords`` the key
``<chord id>.r.<index>`` holds member ``index``'s result (created once, create-only) and
``<chord id>.fired`` is ``firing``, ``fired`` or ``failed`` (created once); the counter subject
``actors.chord.<chord id>`` (stream ``ACTORS_CHORD_COUNTERS``, ``Nats-Incr``) counts finished
members, each increment carrying ``Nats-Msg-Id: <chord id>.<index>`` so a member that is
redelivered and finishes again is not counted twice. The member that sees the count reach the
size, and finds every result stored, creates the ``fired`` marker and publishes the body.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import structlog

from actors import topology
from actors.errors import ChordError
from actors.message import TaskMessage, decode, encode
from actors.results import describe_exception
from actors.signature import Hop, Signature, WireSignature, from_wire, send_all

if TYPE_CHECKING:
    from actors.app import App, Connection

log = structlog.get_logger(__name__)

FIRING = b"firing"
FIRED = b"fired"
FAILED = b"failed"


async def join(connection: Connection, app: App, message: TaskMessage, value: Any) -> None:
    """Record a finished header member once, count it once, and fire the body if it is last."""
    spec = message.chord or {}
    chord_id, size, index = spec["id"], int(spec["size"]), int(spec["index"])
    broker = connection.broker
    try:
        data = encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"result of {message.task} cannot be stored as msgpack: {exc}") from None
    await broker.kv_create(topology.CHORDS_BUCKET, f"{chord_id}.r.{index}", data)
    subject = topology.chord_counter_subject(chord_id)
    count = await broker.counter_add(subject, 1, f"{chord_id}.{index}")
    if count is None:  # this member was counted before it was redelivered
        count = await broker.counter_value(topology.CHORD_COUNTER_STREAM, subject)
    if count < size:
        return
    stored = await broker.kv_scan(topology.CHORDS_BUCKET, f"{chord_id}.r")
    keys = [f"{chord_id}.r.{i}" for i in range(size)]
    if not all(key in stored for key in keys):
        # Counted more than once (a redelivery after the dedupe window): the member still
        # missing fires when it finishes.
        return
    results = [decode(stored[key], topology.MSGPACK) for key in keys]
    await _fire(connection, app, message, results)


async def _fire(connection: Connection, app: App, message: TaskMessage, results: list[Any]) -> None:
    spec = message.chord or {}
    chord_id = spec["id"]
    marker = f"{chord_id}.fired"
    broker = connection.broker
    if not await broker.kv_create(topology.CHORDS_BUCKET, marker, FIRING):
        state = await broker.kv_get(topology.CHORDS_BUCKET, marker)
        if state != FIRING:
            return
        # The firing member may have died before publishing: publish again. The body's
        # Nats-Msg-Id makes this a no-op if it did publish (within the dedupe window).
    body = from_wire(spec["body"], app)
    body.freeze(f"{chord_id}.body")
    hop = Hop(root_id=message.root_id or message.id, parent_id=message.id)
    await send_all(connection, body.messages([results], [], hop))
    await broker.kv_put(topology.CHORDS_BUCKET, marker, FIRED)
    log.info("chord.fired", chord=chord_id, size=len(results))


@dataclasses.dataclass(frozen=True, slots=True)
class ChordFailure:
    """What to do when a chord fails: the body's tasks to fail, and its errbacks to call."""

    tasks: list[Signature]
    errbacks: list[WireSignature]
    body_id: str
    error: dict[str, Any]


async def abort(
    connection: Connection, app: App, message: TaskMessage, error: dict[str, Any]
) -> ChordFailure | None:
    """A header member failed: claim the chord's ``fired`` marker as ``failed``.

    Returns what the caller must do (fail the body's tasks, call its errbacks), or None when
    the chord already fired or failed.
    """
    spec = message.chord or {}
    chord_id = spec["id"]
    if not await connection.broker.kv_create(topology.CHORDS_BUCKET, f"{chord_id}.fired", FAILED):
        return None
    body = from_wire(spec["body"], app)
    body.freeze(f"{chord_id}.body")
    reason = ChordError(
        f"chord {chord_id}: header task {message.task}[{message.id}] failed: "
        f"{error.get('type')}: {error.get('message')}"
    )
    log.warning("chord.failed", chord=chord_id, failed_task=message.id, error=str(reason))
    tasks = body.tasks_in()
    errbacks: list[WireSignature] = []
    for wire in tasks[0].options.get("link_error") or []:
        if wire not in errbacks:
            errbacks.append(wire)
    return ChordFailure(tasks, errbacks, tasks[0].id or chord_id, describe_exception(reason))
