"""Dead letters: messages no worker can run, kept in the ``ACTORS_DEAD`` stream.

The worker writes them (:func:`dead_letter`) and moves messages for tasks nobody serves there
(:func:`sweep_unrouted`). The ``actors dead`` commands inspect, replay and purge them: a dead
letter is addressed by its sequence number in ``ACTORS_DEAD`` (shown by ``actors dead list``);
replaying publishes the original message again to the subject it came from and removes the
dead letter.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from actors.errors import (
    ActorsError,
    BrokerUnavailable,
    ConfigurationError,
    ProtocolError,
    TaskNotRegistered,
)
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.nats.connection import wire_size
from actors.nats.replies import StoredMessage
from actors.wire import routing, topology
from actors.wire.message import clip_text, decode
from actors.wire.record import ResultRecord
from actors.worker.message_checks import message_id

log = structlog.get_logger(__name__)

_SCAN_LIMIT = 1000
"""Messages one sweep reads per subject: a subject with a wildcard matches the whole stream."""


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
    (a crash between copy and ack) stores it once. The original's ``Nats-*`` headers are left
    out: they are instructions to JetStream (expected sequences, rollups, TTLs) that could
    make the server refuse the copy; so are headers nats-py cannot send. A copy that would
    exceed the server's ``max_payload`` has its body cut to fit and ``Actors-Dead-Truncated``
    holding the original body's size.
    """
    reason = clip_text(reason, one_line=True)
    ours = {
        topology.DEAD_REASON: reason,
        topology.DEAD_SUBJECT: subject,
        topology.DEAD_SEQUENCE: str(seq),
        "Nats-Msg-Id": f"dead-{topology.TASK_STREAM}-{seq}",
    }
    if task:
        ours[topology.DEAD_TASK] = task
    route = routing.parse_subject(subject)
    if route is not None:
        ours[topology.DEAD_QUEUE] = route.queue
    copied = {k: v for k, v in headers.items() if _copyable(k, v)}
    dead_headers = {**copied, **ours}
    body = data
    if wire_size(data, dead_headers) > broker.max_payload:
        ours[topology.DEAD_TRUNCATED] = str(len(data))
        dead_headers = {**copied, **ours}
        if wire_size(b"", dead_headers) > broker.max_payload:
            dead_headers = ours  # the original headers alone are too large: keep only ours
        body = data[: max(0, broker.max_payload - wire_size(b"", dead_headers))]
    name = task or (route.task if route is not None else "_unknown")
    await broker.publish(topology.dead_subject(name), body, dead_headers)
    log.error(
        "task.dead_lettered",
        task=task,
        subject=clip_text(subject, 200, one_line=True),
        seq=seq,
        reason=reason,
        truncated=len(body) < len(data),
    )


_HEADER_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # what nats-py accepts as a key


def _copyable(key: str, value: str) -> bool:
    lowered = key.lower()
    if lowered.startswith("nats-") or lowered in ("status", "description"):
        return False
    return bool(_HEADER_KEY.fullmatch(key)) and "\0" not in value


async def sweep_unrouted(
    broker: Broker, grace: float, cursors: dict[str, int] | None = None
) -> int:
    """Fail messages waiting on task subjects that no consumer serves, once older than ``grace``.

    A message for a task no worker has ever served would wait for ever; the client would hang.
    This moves such messages to the dead-letter stream and stores a failure as their result:
    TaskNotRegistered for a task name nobody serves, ProtocolError for a subject that is not a
    task subject at all (a wildcard, a dash), even if a consumer filters on it. A subject is
    served only when a consumer's filter is exactly that subject. Safe to run in several
    workers at once. ``cursors`` keeps where the scan of a subject stopped (each sweep reads a
    bounded number of messages per subject) for the next sweep. Returns how many messages
    were moved.
    """
    cursors = {} if cursors is None else cursors
    served = await broker.streams.served_subjects()
    waiting = await broker.streams.task_subject_counts()
    cutoff = datetime.now(UTC) - timedelta(seconds=grace)
    moved = 0
    for subject in waiting:
        name = _task_name(subject)
        if name is None or not routing.consumed_by(subject, served):
            moved += await _sweep_subject(broker, subject, name, grace, cutoff, cursors)
    for gone in set(cursors) - set(waiting):
        del cursors[gone]
    return moved


async def _sweep_subject(
    broker: Broker,
    subject: str,
    name: str | None,
    grace: float,
    cutoff: datetime,
    cursors: dict[str, int],
) -> int:
    """Move the messages on ``subject`` (task ``name``, None if invalid) older than ``cutoff``."""
    error: type[ActorsError]
    route = routing.parse_subject(subject)
    if name is not None and route is not None:
        where = "" if route.queue == routing.DEFAULT_QUEUE else f" on queue {route.queue!r}"
        where += "" if route.band == routing.NORMAL else f" ({route.band} priority band)"
        reason = f"no worker serves task {name!r}{where} (no consumer after {grace:g}s)"
        error = TaskNotRegistered
    else:
        reason = (
            f"invalid task subject {subject!r}: after {topology.TASK_PREFIX!r} comes a task "
            "name, dot-separated words of letters, digits and underscores"
        )
        error = ProtocolError
    moved = 0
    after = cursors.pop(subject, 0)
    for _ in range(_SCAN_LIMIT):
        stored = await broker.stored_message(topology.TASK_STREAM, subject, after)
        if stored is None or stored.time > cutoff:
            return moved
        after = stored.seq
        if stored.subject != subject:  # the subject holds a wildcard that matched this one
            continue
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
            record = ResultRecord.failure(task_id, name, error(clip_text(reason, one_line=True)))
            await Bucket(broker, topology.RESULTS_BUCKET).put(task_id, record.to_bytes())
        with contextlib.suppress(BrokerUnavailable):
            await broker.delete_message(topology.TASK_STREAM, stored.seq)
        moved += 1
    cursors[subject] = after
    return moved


def _task_name(subject: str) -> str | None:
    """The task name in a task subject, or None when it is not a valid one (``*``, ``-``)."""
    route = routing.parse_subject(subject)
    name = route.task if route is not None else None
    try:
        return None if name is None else topology.validate_task_name(name)
    except ConfigurationError:
        return None


# -- inspecting, replaying and purging (the ``actors dead`` commands) ---------------------

_ALL = topology.DEAD_PREFIX + ">"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message in the dead-letter stream."""

    seq: int
    task: str | None
    task_id: str | None
    reason: str
    subject: str
    """The subject the message was on before it died (where replay sends it)."""
    time: datetime
    data: bytes
    headers: dict[str, str]


def _dead_letter(stored: StoredMessage) -> DeadLetter:
    headers = stored.headers
    return DeadLetter(
        seq=stored.seq,
        task=headers.get(topology.DEAD_TASK),
        task_id=message_id(stored.data, headers.get("Content-Type")),
        reason=headers.get(topology.DEAD_REASON, ""),
        subject=headers.get(topology.DEAD_SUBJECT, ""),
        time=stored.time,
        data=stored.data,
        headers=headers,
    )


async def list_dead(broker: Broker, limit: int | None = None, after: int = 0) -> list[DeadLetter]:
    """Dead letters, oldest first (at most ``limit``), from the first one whose stream
    sequence is above ``after`` (the cursor of the next page: the last ``seq`` seen)."""
    out: list[DeadLetter] = []
    while limit is None or len(out) < limit:
        stored = await broker.stored_message(topology.DEAD_STREAM, _ALL, after)
        if stored is None:
            break
        after = stored.seq
        out.append(_dead_letter(stored))
    return out


async def get_dead(broker: Broker, seq: int) -> DeadLetter | None:
    """The dead letter with sequence ``seq``, or None."""
    stored = await broker.stored_message(topology.DEAD_STREAM, _ALL, seq - 1)
    if stored is None or stored.seq != seq:
        return None
    return _dead_letter(stored)


async def replay(broker: Broker, letter: DeadLetter) -> None:
    """Publish the original message again and delete the dead letter.

    ``Nats-Msg-Id`` is ``replay-<seq>``, so replaying twice in a row stores it once.
    """
    ours = (topology.DEAD_REASON, topology.DEAD_SUBJECT, topology.DEAD_SEQUENCE, topology.DEAD_TASK)
    headers = {k: v for k, v in letter.headers.items() if k not in ours}
    headers["Nats-Msg-Id"] = f"replay-{letter.seq}"
    subject = topology.subject_tokens(
        letter.subject or topology.task_subject(letter.task or "_unknown")
    )
    await broker.publish(subject, letter.data, headers)
    await broker.delete_message(topology.DEAD_STREAM, letter.seq)


async def replay_many(broker: Broker, seq: int | None) -> int:
    """Replay dead letter ``seq``, or all of them when None; return how many."""
    if seq is not None:
        letter = await get_dead(broker, seq)
        letters = [letter] if letter is not None else []
    else:
        letters = await list_dead(broker)
    for letter in letters:
        await replay(broker, letter)
    return len(letters)


def describe_body(letter: DeadLetter) -> str:
    """The body decoded for display (its repr when it cannot be decoded)."""
    try:
        return repr(decode(letter.data, letter.headers.get("Content-Type")))
    except ProtocolError:
        return repr(letter.data[:2000])


async def purge(broker: Broker) -> int:
    """Delete every dead letter; return how many there were."""
    count = len(await list_dead(broker))
    await broker.streams.purge(topology.DEAD_STREAM)
    return count
