"""Queue depth per actor, read from the task stream, its consumers and the dead letters."""

from __future__ import annotations

from dataclasses import dataclass

import nats.js.errors

from actors.errors import BrokerUnavailable, ProtocolError
from actors.nats.broker import Broker, StoredMessage
from actors.nats.connection import NATS_ERRORS
from actors.wire import topology
from actors.wire.message import decode


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What waits for one actor. Counts are read at one moment, not atomically."""

    actor: str
    pending: int
    """Messages no worker has fetched yet."""
    in_flight: int
    """Fetched by a worker and not acked yet."""
    redelivered: int
    """In flight and delivered more than once."""
    dead: int
    """Dead letters of this actor in ACTORS_DEAD."""
    consumers: int
    """Durable consumers on the actor's subject (1 once any worker has served it)."""
    waiting: int
    """Pull requests waiting for messages: roughly, idle worker capacity asking for work."""


async def _subject_counts(broker: Broker, stream: str, prefix: str) -> dict[str, int]:
    try:
        info = await broker.js.stream_info(stream, subjects_filter=prefix + ">")
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot read stream {stream}: {exc!r}") from exc
    return {subject[len(prefix) :]: count for subject, count in (info.state.subjects or {}).items()}


async def queue_stats(broker: Broker) -> list[QueueStats]:
    """One row per actor that has a consumer, queued messages or dead letters, by name."""
    queued = await _subject_counts(broker, topology.TASK_STREAM, topology.TASK_PREFIX)
    dead = await _subject_counts(broker, topology.DEAD_STREAM, topology.DEAD_PREFIX)
    try:
        infos = await broker.js.consumers_info(topology.TASK_STREAM)
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot list consumers: {exc!r}") from exc
    consumers: dict[str, list[object]] = {}
    for info in infos:
        name = topology.task_name_from_subject(info.config.filter_subject or "")
        if name is not None:
            consumers.setdefault(name, []).append(info)
    rows = []
    for name in sorted(set(queued) | set(dead) | set(consumers)):
        mine: list[object] = consumers.get(name, [])
        in_flight = max((getattr(i, "num_ack_pending", 0) or 0 for i in mine), default=0)
        rows.append(
            QueueStats(
                actor=name,
                # Work-queue retention: a message stays stored until acked.
                pending=max(0, queued.get(name, 0) - in_flight),
                in_flight=in_flight,
                redelivered=max((getattr(i, "num_redelivered", 0) or 0 for i in mine), default=0),
                dead=dead.get(name, 0),
                consumers=len(mine),
                waiting=sum(getattr(i, "num_waiting", 0) or 0 for i in mine),
            )
        )
    return rows


async def purge_queue(broker: Broker, actor: str) -> int:
    """Delete every message waiting for ``actor`` (in flight ones too); return how many."""
    subject = topology.task_subject(actor)
    before = (await _subject_counts(broker, topology.TASK_STREAM, topology.TASK_PREFIX)).get(
        actor, 0
    )
    try:
        await broker.js.purge_stream(topology.TASK_STREAM, subject=subject)
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"purging {subject} failed: {exc!r}") from exc
    return before


async def is_scheduled(broker: Broker, task_id: str) -> bool:
    """True if a delayed (countdown/eta) task with this id waits in ACTORS_SCHEDULED."""
    subject = topology.schedule_subject(task_id)
    try:  # not a direct get: ACTORS_SCHEDULED does not allow them
        await broker.js.get_last_msg(topology.SCHEDULED_STREAM, subject)
    except nats.js.errors.NotFoundError:
        return False
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"reading {topology.SCHEDULED_STREAM} failed: {exc!r}") from exc
    return True


async def is_queued(broker: Broker, task_id: str, limit: int = 10_000) -> bool:
    """True if a message of ``task_id`` is among the first ``limit`` in the task stream.

    A scan, one direct read per message: meant for the command line, not a hot path.
    """
    after = 0
    for _ in range(limit):
        stored = await broker.stored_message(
            topology.TASK_STREAM, topology.TASK_PREFIX + ">", after
        )
        if stored is None:
            return False
        if task_id.encode() in stored.data and _message_id(stored) == task_id:
            return True
        after = stored.seq
    return False


def _message_id(stored: StoredMessage) -> object:
    try:
        body = decode(stored.data, stored.headers.get("Content-Type"))
    except ProtocolError:  # not ours to judge here: the worker dead-letters it
        return None
    return body.get("id") if isinstance(body, dict) else None


async def live_keys(broker: Broker, bucket: str) -> int:
    """Keys of KV ``bucket`` holding a value (not deleted nor expired); 0 if there is none.

    For the worker registry (``actors_workers``): one key per live worker.
    """
    stream, prefix = f"KV_{bucket}", f"$KV.{bucket}."
    try:
        info = await broker.js.stream_info(stream, subjects_filter=prefix + ">")
    except nats.js.errors.NotFoundError:
        return 0
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot read bucket {bucket}: {exc!r}") from exc
    live = 0
    for subject in info.state.subjects or {}:
        last = await broker.last_message(stream, subject)
        if last is not None and last[1].get("KV-Operation") not in ("DEL", "PURGE"):
            live += 1
    return live
