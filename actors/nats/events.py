"""Events over NATS: publishing without waiting for the stream's answer, and reading a limits
stream in order from a point in time, then following it (``actors events`` on ACTORS_EVENTS)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from actors.errors import BrokerUnavailable
from actors.nats.broker import Broker
from actors.nats.connection import NATS_ERRORS, reply_status
from actors.nats.replies import StoredMessage


async def publish_unconfirmed(broker: Broker, subject: str, body: bytes) -> None:
    """Publish ``body`` on ``subject`` (a stream stores it) without waiting for the stream's
    answer: for best-effort events, which must not slow down what they describe."""
    broker.check_size(subject, body, None)
    try:
        await broker.nc.publish(subject, body)
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"publish to {subject} failed: {exc!r}") from exc


async def stream_exists(broker: Broker, stream: str) -> bool:
    """True when ``stream`` (or KV bucket stream ``KV_<name>``) exists."""
    try:
        await broker.js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        return False
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot look up stream {stream}: {exc!r}") from exc
    return True


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
    except nats.js.errors.NotFoundError as exc:
        raise BrokerUnavailable(
            f"stream {stream} does not exist yet: a worker creates it when it starts"
        ) from exc
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot read stream {stream}: {exc!r}") from exc
    # Start at a sequence, not a time: nats-py re-creates an ordered consumer (after a server
    # restart) from the next sequence but keeps a start time too, which the server refuses.
    first = last + 1 if since is None else await _first_since(broker, stream, since, last)
    if not follow and first > last:
        return
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await queue.put(msg)

    try:
        sub = await broker.js.subscribe(
            subjects,
            stream=stream,
            cb=on_msg,
            ordered_consumer=True,
            idle_heartbeat=2.0,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=first),
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


async def _first_since(broker: Broker, stream: str, since: datetime, last: int) -> int:
    """The sequence of the first message stored at or after ``since`` (``last + 1``: none)."""
    request = json.dumps({"start_time": since.astimezone(UTC).isoformat()}).encode()
    try:
        reply = await broker.nc.request(
            f"$JS.API.DIRECT.GET.{stream}", request, timeout=broker.settings.publish_timeout
        )
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"cannot read stream {stream}: {exc!r}") from exc
    if reply_status(reply) is not None:  # 404: nothing stored since then
        return last + 1
    return int((reply.headers or {})["Nats-Sequence"])
