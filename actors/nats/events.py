"""Events over NATS: publishing without waiting for the stream's answer, and reading a limits
stream in order from a point in time, then following it (``actors events`` on ACTORS_EVENTS)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import api

from actors.errors import BrokerUnavailable
from actors.nats.broker import Broker, StoredMessage
from actors.nats.connection import NATS_ERRORS


async def publish_unconfirmed(broker: Broker, subject: str, body: bytes) -> None:
    """Publish ``body`` on ``subject`` (a stream stores it) without waiting for the stream's
    answer: for best-effort events, which must not slow down what they describe."""
    broker.check_size(subject, body, None)
    try:
        await broker.nc.publish(subject, body)
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"publish to {subject} failed: {exc!r}") from exc


async def read_stream(
    broker: Broker,
    stream: str,
    subjects: str,
    since: datetime | None = None,
    follow: bool = True,
) -> AsyncIterator[StoredMessage]:
    """Yield the messages of ``stream`` on ``subjects`` stored at or after ``since`` (None:
    only new ones), in stream order; with ``follow`` wait for more for ever, else stop at the
    last message stored when the read began."""
    try:
        last = (await broker.js.stream_info(stream)).state.last_seq
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot read stream {stream}: {exc!r}") from exc
    if not follow and (since is None or last == 0 or await _older(broker, stream, last, since)):
        return
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await queue.put(msg)

    options = (
        {"deliver_policy": api.DeliverPolicy.NEW}
        if since is None
        else {
            "deliver_policy": api.DeliverPolicy.BY_START_TIME,
            "config": api.ConsumerConfig(opt_start_time=since.astimezone(UTC)),
        }
    )
    try:
        sub = await broker.js.subscribe(
            subjects,
            stream=stream,
            cb=on_msg,
            ordered_consumer=True,
            idle_heartbeat=2.0,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
            **options,
        )
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot read stream {stream}: {exc!r}") from exc
    try:
        while True:
            msg = await queue.get()
            meta = msg.metadata
            seq = meta.sequence.stream
            yield StoredMessage(
                seq=seq,
                subject=msg.subject,
                data=bytes(msg.data),
                headers=dict(msg.headers or {}),
                time=meta.timestamp,
            )
            if not follow and (seq >= last or meta.num_pending == 0):
                return
    finally:
        with contextlib.suppress(*NATS_ERRORS):
            await sub.unsubscribe()


async def _older(broker: Broker, stream: str, seq: int, since: datetime) -> bool:
    """True when message ``seq`` (the last one) was stored before ``since``: nothing to read."""
    message = await broker.stored_message(stream, ">", seq - 1)
    return message is None or message.time < since
