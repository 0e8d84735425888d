"""Events from the client side: ``task-sent`` for clients that opt in
(``task_send_sent_event``), and reading the events workers publish (``actors events``)."""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

import structlog

from actors.errors import ActorsError, ProtocolError
from actors.nats.broker import Broker
from actors.nats.events import publish_unconfirmed, read_stream
from actors.wire import events, topology
from actors.wire.message import TaskMessage

log = structlog.get_logger(__name__)

_CLOCK = itertools.count(1)
_HOSTNAME = f"{os.getpid()}@{socket.gethostname()}"


async def publish_sent(broker: Broker, messages: Iterable[TaskMessage]) -> None:
    """Publish one ``task-sent`` message for ``messages``; best effort, never raises."""
    now = time.time()
    batch = [
        {
            "type": events.TASK_SENT,
            "hostname": _HOSTNAME,
            "timestamp": now,
            "clock": next(_CLOCK),
            "uuid": message.id,
            "name": message.task,
            "retries": message.retries,
            **({"eta": message.eta} if message.eta else {}),
            **({"expires": message.expires} if message.expires else {}),
        }
        for message in messages
    ]
    try:
        for i in range(0, len(batch), events.MAX_BATCH):
            body = events.encode_batch(batch[i : i + events.MAX_BATCH])
            await publish_unconfirmed(broker, topology.event_subject(events.TASK_SENT), body)
    except ActorsError as exc:
        log.warning("events.dropped", events=len(batch), error=str(exc))


async def read_events(
    broker: Broker, since: datetime | None = None, follow: bool = True
) -> AsyncIterator[dict[str, Any]]:
    """Yield events in the order they were stored: from ``since`` (None: only new ones), then,
    with ``follow``, new ones as they come. Unreadable messages are skipped with a warning."""
    stream = read_stream(broker, topology.EVENTS_STREAM, topology.EVENT_PREFIX + ">", since, follow)
    reorder = events.Reorder()
    async for stored in stream:
        try:
            batch = events.decode_batch(stored.data, stored.subject)
        except ProtocolError as exc:
            log.warning("events.unreadable", seq=stored.seq, error=str(exc))
            continue
        for event in reorder.add(batch, stored.headers.get(events.BATCH_HEADER)):
            yield event
    for event in reorder.rest():
        yield event
