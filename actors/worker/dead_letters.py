"""Inspecting, replaying and purging dead letters (the ``actors dead`` commands).

A dead letter is addressed by its sequence number in the ``ACTORS_DEAD`` stream (shown by
``actors dead list``). Replaying publishes the original message again to the subject it came
from and removes the dead letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from actors.errors import ProtocolError
from actors.nats.broker import Broker, StoredMessage
from actors.wire import topology
from actors.wire.message import decode
from actors.worker.dead_letter_writer import message_id

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


async def list_dead(broker: Broker, limit: int | None = None) -> list[DeadLetter]:
    """Dead letters, oldest first (at most ``limit``)."""
    out: list[DeadLetter] = []
    after = 0
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
