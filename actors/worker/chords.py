"""The chord join: each header member counts once, and the body is published once.

State per chord (docs/protocol.md, "Chords"): in KV bucket ``actors_chords`` the key
``<chord id>.r.<index>`` holds member ``index``'s result (created once, create-only) and
``<chord id>.fired`` is ``firing``, ``fired`` or ``failed`` (created once); the counter subject
``actors.chord.<chord id>`` (stream ``ACTORS_CHORD_COUNTERS``, ``Nats-Incr``) counts finished
members, each increment carrying ``Nats-Msg-Id: <chord id>.<index>`` so a member that is
redelivered and finishes again is not counted twice (see ChordJoin for batches). The member
that sees the count reach the size, and finds every result stored, creates the ``fired``
marker and publishes the body.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import weakref
from typing import TYPE_CHECKING, Any

import structlog

from actors.errors import ChordError, EncodeError
from actors.nats.bucket import Bucket
from actors.signature import Hop, Signature, from_wire, send_all
from actors.wire import topology
from actors.wire.message import TaskMessage, WireSignature, decode, encode
from actors.wire.record import describe_exception

if TYPE_CHECKING:
    from actors.client.connection import Connection
    from actors.nats.broker import Broker

log = structlog.get_logger(__name__)

FIRING = b"firing"
FIRED = b"fired"
FAILED = b"failed"


async def join(connection: Connection, message: TaskMessage, value: Any) -> None:
    """Record a finished header member once, count it, and fire the body if it is the last.

    Returns once the member is recorded and counted (so the caller may ack its message).
    Members finishing at about the same time in this process are joined in one batch.
    """
    try:
        data = encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"result of {message.task} cannot be stored as msgpack: {exc}") from None
    joiner = _joiners.get(connection.broker)
    if joiner is None:
        joiner = _joiners[connection.broker] = ChordJoin(connection)
    await joiner.add(message, data)


@dataclasses.dataclass(slots=True)
class _Member:
    message: TaskMessage
    data: bytes
    done: asyncio.Future[None]


class ChordJoin:
    """Joins the chord members finished in this process, in batches.

    While one batch is being written, members finishing meanwhile queue up for the next, so
    under load one pipelined write of the results and one counter increment serve many
    members. A batch's increment carries a ``Nats-Msg-Id`` naming its members; a member
    redelivered into another batch may count twice, which is harmless: the body fires only
    when every member's result is found stored.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._chords = _chords(connection)
        self._counters = Bucket.counters(connection.broker, topology.CHORD_COUNTER_STREAM)
        self._queue: list[_Member] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add(self, message: TaskMessage, data: bytes) -> None:
        """Queue a member and wait until its batch is recorded and counted."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Member(message, data, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        await done

    async def _flush_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._flush(batch)
            except Exception as exc:
                for member in batch:
                    if not member.done.done():
                        member.done.set_exception(exc)
            else:
                for member in batch:
                    if not member.done.done():
                        member.done.set_result(None)

    async def _flush(self, batch: list[_Member]) -> None:
        # A member recorded before (redelivered) keeps its first result.
        await self._chords.create_many([(_result_key(m.message), m.data) for m in batch])
        chords: dict[str, list[_Member]] = {}
        for member in batch:
            chords.setdefault((member.message.chord or {})["id"], []).append(member)
        await asyncio.gather(*(self._count(chord_id, ms) for chord_id, ms in chords.items()))

    async def _count(self, chord_id: str, members: list[_Member]) -> None:
        spec = members[0].message.chord or {}
        size = int(spec["size"])
        indices = ",".join(str(m.message.chord["index"]) for m in members if m.message.chord)
        batch_id = hashlib.sha1(indices.encode()).hexdigest()[:16]
        subject = topology.chord_counter_subject(chord_id)
        count = await self._counters.add(subject, len(members), f"{chord_id}.{batch_id}")
        if count is None:  # this very batch was counted before
            count = await self._counters.total(subject, fresh=True)
        if count < size:
            return
        stored = await self._chords.scan(f"{chord_id}.r")
        keys = [f"{chord_id}.r.{i}" for i in range(size)]
        for key in keys:
            if key not in stored:
                # The scan's replica may lag behind (a chord never fired when it did): ask the
                # leader, which has every member's acknowledged result.
                value = await self._chords.get(key, fresh=True)
                if value is None:
                    return  # counted a redelivered member twice: the member still missing fires
                stored[key] = value
        results = [decode(stored[key], topology.MSGPACK) for key in keys]
        last = members[-1]
        await _fire(self.connection, last.message, results)


_joiners: weakref.WeakKeyDictionary[Broker, ChordJoin] = weakref.WeakKeyDictionary()


def _chords(connection: Connection) -> Bucket:
    return Bucket(connection.broker, topology.CHORDS_BUCKET)


def _result_key(message: TaskMessage) -> str:
    spec = message.chord or {}
    return f"{spec['id']}.r.{spec['index']}"


async def _fire(connection: Connection, message: TaskMessage, results: list[Any]) -> None:
    spec = message.chord or {}
    chord_id = spec["id"]
    marker = f"{chord_id}.fired"
    chords = _chords(connection)
    if await chords.create(marker, FIRING) is None:
        state = await chords.get(marker, fresh=True)
        if state != FIRING:
            return
        # The firing member may have died before publishing: publish again. The body's
        # Nats-Msg-Id makes this a no-op if it did publish (within the dedupe window).
    body = from_wire(spec["body"])
    body.assign_ids(f"{chord_id}.body")
    hop = Hop(root_id=message.root_id or message.id, parent_id=message.id)
    await send_all(connection, body.messages([results], [], hop))
    await chords.put(marker, FIRED)
    log.info("chord.fired", chord=chord_id, size=len(results))


@dataclasses.dataclass(frozen=True, slots=True)
class ChordFailure:
    """What to do when a chord fails: the body's tasks to fail, and its errbacks to call."""

    tasks: list[Signature]
    errbacks: list[WireSignature]
    body_id: str
    error: dict[str, Any]


async def abort(
    connection: Connection, message: TaskMessage, error: dict[str, Any]
) -> ChordFailure | None:
    """A header member failed: claim the chord's ``fired`` marker as ``failed``.

    Returns what the caller must do (fail the body's tasks, call its errbacks), or None when
    the chord already fired or failed.
    """
    spec = message.chord or {}
    chord_id = spec["id"]
    if await _chords(connection).create(f"{chord_id}.fired", FAILED) is None:
        return None
    body = from_wire(spec["body"])
    body.assign_ids(f"{chord_id}.body")
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
