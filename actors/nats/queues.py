"""Queue depth per actor, read from the task stream, its consumers and the dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nats.js.errors

from actors.errors import BrokerUnavailable, ProtocolError
from actors.nats.broker import Broker
from actors.nats.connection import NATS_ERRORS
from actors.nats.replies import StoredMessage
from actors.wire import routing, topology
from actors.wire.message import decode


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What waits for one actor, on all queues and bands together. Counts are read at one
    moment, not atomically."""

    actor: str
    pending: int
    """Messages no worker has fetched yet."""
    in_flight: int
    """Fetched by a worker and not acked yet. Exact when the actor's consumer serves no other
    actor with messages in flight; otherwise at most that (a consumer counts for all its
    actors, docs/routing.md)."""
    redelivered: int
    """In flight and delivered more than once (counted per consumer)."""
    dead: int
    """Dead letters of this actor in ACTORS_DEAD."""
    consumers: int
    """Durable consumers that deliver the actor's messages."""
    waiting: int
    """Pull requests waiting for messages: roughly, idle worker capacity asking for work."""


async def _subject_counts(broker: Broker, stream: str, prefix: str) -> dict[str, int]:
    try:
        info = await broker.js.stream_info(stream, subjects_filter=prefix + ">")
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot read stream {stream}: {exc!r}") from exc
    return {subject[len(prefix) :]: count for subject, count in (info.state.subjects or {}).items()}


async def _consumer_infos(broker: Broker) -> list[Any]:
    infos: list[Any] = []
    try:
        while page := await broker.js.consumers_info(topology.TASK_STREAM, offset=len(infos)):
            infos += page
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot list consumers: {exc!r}") from exc
    return infos


async def queue_stats(broker: Broker) -> list[QueueStats]:
    """One row per actor that has a consumer, queued messages or dead letters, by name."""
    stored = await _subject_counts(broker, topology.TASK_STREAM, "")
    dead = await _subject_counts(broker, topology.DEAD_STREAM, topology.DEAD_PREFIX)
    infos = await _consumer_infos(broker)
    filters = {id(i): {*(i.config.filter_subjects or ()), i.config.filter_subject} for i in infos}
    names = set(dead)
    for info in infos:
        for subject in filters[id(info)]:
            route = routing.parse_subject(subject or "")
            if route is not None and topology.valid_task_name(route.task):
                names.add(route.task)
    queued: dict[str, int] = {}
    in_flight: dict[str, int] = {}
    holders: dict[str, dict[int, Any]] = {}
    for subject, count in stored.items():
        route = routing.parse_subject(subject)
        if route is None:
            continue
        names.add(route.task)
        queued[route.task] = queued.get(route.task, 0) + count
        mine = [i for i in infos if routing.consumed_by(subject, filters[id(i)])]
        holders.setdefault(route.task, {}).update({id(i): i for i in mine})
        unacked = sum(i.num_ack_pending or 0 for i in mine)
        in_flight[route.task] = in_flight.get(route.task, 0) + min(count, unacked)
    for info in infos:
        for subject in filters[id(info)]:
            route = routing.parse_subject(subject or "")
            if route is not None:
                holders.setdefault(route.task, {})[id(info)] = info
    rows = []
    for name in sorted(names):
        mine = list(holders.get(name, {}).values())
        flying = in_flight.get(name, 0)
        rows.append(
            QueueStats(
                actor=name,
                # Work-queue retention: a message stays stored until acked.
                pending=max(0, queued.get(name, 0) - flying),
                in_flight=flying,
                redelivered=max((i.num_redelivered or 0 for i in mine), default=0),
                dead=dead.get(name, 0),
                consumers=len(mine),
                waiting=sum(i.num_waiting or 0 for i in mine),
            )
        )
    return rows


async def purge_queue(broker: Broker, actor: str) -> int:
    """Delete every message waiting for ``actor`` on any queue (in flight ones too); return
    how many."""
    stored = await _subject_counts(broker, topology.TASK_STREAM, "")
    before = 0
    for subject, count in stored.items():
        route = routing.parse_subject(subject)
        before += count if route is not None and route.task == actor else 0
    on_queues = f"{routing.QUEUE_PREFIX}*.*.{topology.subject_tokens(actor)}"
    for subject in (topology.task_subject(actor), on_queues):
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
