"""The Broker: one NATS connection, publishing to JetStream, and direct reads of streams.

Set-up of streams and consumers is in :mod:`actors.nats.streams` (``broker.streams``), KV
buckets and counters in :mod:`actors.nats.bucket`. Wraps nats-py errors in BrokerUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from actors.config import Settings
from actors.errors import BrokerUnavailable
from actors.nats import connection as nats_connection
from actors.nats.codes import JS_UNAVAILABLE
from actors.nats.connection import (
    NATS_ERRORS,
    ConnectionEvents,
    ReplyInbox,
    check_size,
    reply_status,
)
from actors.nats.retrying import NotReady, retry_until
from actors.nats.streams import Streams

_RETRY_PAUSE = 0.2


@dataclass(frozen=True, slots=True)
class PublishAck:
    """The stream's answer to a publish."""

    seq: int
    duplicate: bool = False
    """True when the server dropped the message as a repeat of its ``Nats-Msg-Id``."""
    total: int | None = None
    """For an addition to a ``Nats-Incr`` counter: the counter's new total."""


class PublishRefused(BrokerUnavailable):
    """JetStream refused to store a message; ``code`` is its error code (actors.nats.codes)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class StoredMessage:
    """A message read directly from a stream (not through a consumer)."""

    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]
    time: datetime


class Broker:
    """One NATS connection: publishing, direct reads, and the streams set up over it."""

    def __init__(self, nc: Client, settings: Settings) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=settings.publish_timeout)
        self.settings = settings
        self.streams = Streams(self.js, settings)
        self._requests = ReplyInbox(nc)
        self._events = ConnectionEvents()

    @classmethod
    async def connect(cls, settings: Settings, name: str = "actors") -> Broker:
        """Connect to the configured NATS servers; BrokerUnavailable says what to check."""
        nc, events = await nats_connection.connect(settings, name)
        broker = cls(nc, settings)
        broker._events = events
        return broker

    async def close(self) -> None:
        """Flush pending messages and close the connection."""
        self._events.closing = True
        await self._requests.close()
        if self.nc.is_closed:
            return
        with contextlib.suppress(*NATS_ERRORS):
            await self.nc.flush(timeout=2)
        await self.nc.close()

    def on_reconnected(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each reconnect to NATS."""
        self._events.on_reconnected.append(listener)

    @property
    def connected(self) -> bool:
        """True while the connection is up (not while it reconnects, nor once closed)."""
        return bool(self.nc.is_connected)

    @property
    def max_payload(self) -> int:
        """The largest message (body and headers) the server accepts, from its INFO."""
        return self.nc.max_payload

    def check_size(self, subject: str, body: bytes, headers: dict[str, str] | None) -> None:
        """Raise MessageTooLarge if body and headers together exceed the server's limit."""
        check_size(self.nc, subject, body, headers)

    def connection_lost(self, patience: float) -> str | None:
        """Why the connection is lost for good, or None while it is usable or may come back.

        Lost means closed (nats-py does not reconnect after that), or disconnected for more
        than ``patience`` seconds.
        """
        if self._events.closing:
            return None
        if self.nc.is_closed:
            cause = self._events.last_error
            return "connection closed" + (f" ({cause!r})" if cause else "")
        since = self._events.disconnected_since
        if since is not None and not self.nc.is_connected:
            down = time.monotonic() - since
            if down > patience:
                return f"disconnected for {down:.1f}s (max_disconnected={patience:g}s)"
        return None

    # -- publishing -------------------------------------------------------------------------

    async def publish(
        self,
        subject: str,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        retry: bool = True,
    ) -> PublishAck:
        """Publish to JetStream and wait for the server to store it; return its answer.

        While a stream has no leader (an election after a node died) the server answers "no
        responders": retried until ``publish_timeout`` (with ``retry`` False, raised at once).
        Our messages carry a ``Nats-Msg-Id`` or are idempotent writes, so a retry never
        stores twice. A message larger than the server's ``max_payload`` (headers counted)
        raises MessageTooLarge; nothing is sent. A refusal raises PublishRefused.
        """
        deadline = time.monotonic() + self.settings.publish_timeout

        async def attempt() -> PublishAck:
            return await self._publish_once(subject, body, headers, deadline)

        try:
            return await (retry_until(attempt, deadline, _RETRY_PAUSE) if retry else attempt())
        except nats.errors.NoRespondersError as exc:
            raise BrokerUnavailable(f"publish to {subject}: no stream answers") from exc

    async def _publish_once(
        self, subject: str, body: bytes, headers: dict[str, str] | None, deadline: float
    ) -> PublishAck:
        try:
            reply = await self._requests.request(
                subject, body, headers, max(0.1, deadline - time.monotonic())
            )
        except nats.errors.NoRespondersError:
            raise
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"publish to {subject} failed: {exc!r}") from exc
        try:
            ack = json.loads(reply.data)
        except ValueError as exc:
            raise BrokerUnavailable(f"publish to {subject}: unreadable answer {exc!r}") from exc
        error = ack.get("error")
        if error:
            code = error.get("err_code")
            refusal = f"publish to {subject} refused: {error.get('description')}"
            raise NotReady(refusal) if code == JS_UNAVAILABLE else PublishRefused(refusal, code)
        total = ack.get("val")
        return PublishAck(
            int(ack["seq"]), bool(ack.get("duplicate")), None if total is None else int(total)
        )

    async def publish_many(
        self,
        messages: list[tuple[str, bytes, dict[str, str]]],
        tolerate: Collection[int] = (),
    ) -> list[bool]:
        """Publish many messages to JetStream pipelined, and wait until all are answered.

        One reply subscription for the batch instead of a request per message: several times
        faster than awaiting each publish. Returns per message True (stored) or False (refused
        with a JetStream error code in ``tolerate``, e.g. WRONG_LAST_SEQUENCES for a
        create-only KV key that exists); any other refusal raises BrokerUnavailable.
        """
        for subject, body, headers in messages:  # refuse the batch before sending any of it
            check_size(self.nc, subject, body, headers)
        stored = [True] * len(messages)
        errors: list[str] = []
        todo = list(range(len(messages)))
        deadline = time.monotonic() + self.settings.publish_timeout

        async def one_round() -> None:
            nonlocal todo
            todo = await self._publish_round(messages, todo, deadline, stored, errors, tolerate)
            if todo:
                raise NotReady(f"{len(todo)} messages found no stream leader in time")

        try:
            await retry_until(one_round, deadline, _RETRY_PAUSE)
        except NotReady as exc:
            errors.append(str(exc))
        if errors:
            raise BrokerUnavailable(f"{len(errors)} messages not stored, e.g. {errors[0]}")
        return stored

    async def _publish_round(
        self,
        messages: list[tuple[str, bytes, dict[str, str]]],
        todo: list[int],
        deadline: float,
        stored: list[bool],
        errors: list[str],
        tolerate: Collection[int],
    ) -> list[int]:
        """Publish ``todo`` once; the indices to try again (no responders / no leader)."""
        inbox = self.nc.new_inbox()
        left = len(todo)
        again: list[int] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        unavailable = f'"err_code":{JS_UNAVAILABLE}'.encode()
        tolerated = [f'"err_code":{code}'.encode() for code in tolerate]

        async def on_ack(msg: Msg) -> None:
            nonlocal left
            index = int(msg.subject.rsplit(".", 1)[-1])
            status = (msg.headers or {}).get("Status")
            if status == "503" or unavailable in msg.data:
                again.append(index)
            elif b'"error"' in msg.data or status:
                stored[index] = False
                if not any(code in msg.data for code in tolerated):
                    errors.append(f"{messages[index][0]}: {msg.data[:200]!r} {msg.headers}")
            left -= 1
            if left == 0 and not done.done():
                done.set_result(None)

        try:
            sub = await self.nc.subscribe(inbox + ".*", cb=on_ack, pending_msgs_limit=-1)
            try:
                for index in todo:
                    subject, body, headers = messages[index]
                    await self.nc.publish(subject, body, reply=f"{inbox}.{index}", headers=headers)
                await asyncio.wait_for(done, max(0.1, deadline - time.monotonic()))
            finally:
                await sub.unsubscribe()
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"publishing {len(todo)} messages failed: {exc!r}") from exc
        return again

    # -- direct reads -----------------------------------------------------------------------

    async def stored_message(self, stream: str, subject: str, after: int) -> StoredMessage | None:
        """The first message on ``subject`` with sequence > ``after``, or None."""
        request = json.dumps({"next_by_subj": subject, "seq": after + 1}).encode()
        try:
            reply = await self._requests.request(
                f"$JS.API.DIRECT.GET.{stream}", request, None, self.settings.publish_timeout
            )
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"reading {stream} failed: {exc!r}") from exc
        headers = reply.headers or {}
        if reply_status(reply):
            return None
        stamp = headers.get("Nats-Time-Stamp")
        return StoredMessage(
            seq=int(headers["Nats-Sequence"]),
            subject=headers.get("Nats-Subject", subject),
            data=bytes(reply.data),
            headers={k: v for k, v in headers.items() if not k.startswith("Nats-")},
            time=datetime.fromisoformat(stamp) if stamp else datetime.now(UTC),
        )

    async def last_message(self, stream: str, subject: str) -> tuple[bytes, dict[str, str]] | None:
        """Body and headers of the last message on ``subject`` (a direct get), or None."""
        try:
            reply = await self._requests.request(
                f"$JS.API.DIRECT.GET.{stream}.{subject}", b"", None, self.settings.publish_timeout
            )
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"reading {stream}/{subject} failed: {exc!r}") from exc
        headers = reply.headers or {}
        status = reply_status(reply)
        if status == "404":
            return None
        if status:
            raise BrokerUnavailable(f"reading {stream}/{subject} failed: {status} {headers}")
        return bytes(reply.data), headers

    async def delete_message(self, stream: str, seq: int) -> bool:
        """Delete one message by sequence; False if it was already gone."""
        try:
            return bool(await self.js.delete_msg(stream, seq))
        except nats.js.errors.NotFoundError:
            return False
        except nats.js.errors.BadRequestError:
            return False
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"deleting {stream}/{seq} failed: {exc!r}") from exc
