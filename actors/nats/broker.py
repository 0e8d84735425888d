"""The Broker: one NATS connection, publishing to JetStream, and direct reads of streams.

Set-up of streams and consumers is in :mod:`actors.nats.streams` (``broker.streams``), KV
buckets and counters in :mod:`actors.nats.bucket`, JetStream's answers read from the wire in
:mod:`actors.nats.replies`. Wraps nats-py errors in BrokerUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime

import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from actors.config import Settings
from actors.errors import BrokerUnavailable
from actors.nats import connection as nats_connection
from actors.nats.codes import JS_UNAVAILABLE, NO_MESSAGE_FOUND
from actors.nats.connection import (
    NATS_ERRORS,
    ConnectionEvents,
    ReplyInbox,
    check_size,
    reply_status,
)
from actors.nats.replies import PublishAck, StoredMessage, read_ack, stream_message
from actors.nats.retrying import REQUESTS, RETRYABLE, NotReady, RetryEpisodes, retry_request
from actors.nats.streams import Streams


class Broker:
    """One NATS connection: publishing, direct reads, and the streams set up over it."""

    def __init__(self, nc: Client, settings: Settings) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=settings.publish_timeout)
        self.settings = settings
        self.streams = Streams(self.js, settings)
        self._requests = ReplyInbox(nc)
        self._events = ConnectionEvents()
        self.retries = RetryEpisodes()
        """Logs when requests on this connection start and stop being re-sent."""

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
        # With the server gone, nats-py's close still tries to write what it buffered and
        # fails (ConnectionResetError; RuntimeError on uvloop): the connection is closed then.
        with contextlib.suppress(*NATS_ERRORS, RuntimeError):
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
        self, subject: str, body: bytes, headers: dict[str, str] | None = None
    ) -> PublishAck:
        """Publish to JetStream and wait for the server to store it; return its answer.

        Rides out a leader election (actors.nats.retrying): re-sent on "no responders", "no
        leader" or no reply until ``publish_timeout``, then BrokerUnavailable. A re-send
        stores nothing twice: our messages carry a ``Nats-Msg-Id`` (the server answers a
        repeat as a duplicate) or are writes of the same value. A message larger than the
        server's ``max_payload`` (headers counted) raises MessageTooLarge; nothing is sent.
        A refusal raises PublishRefused.
        """
        return await retry_request(
            f"publish to {subject}",
            lambda wait: self._publish_once(subject, body, headers, wait),
            self.settings.publish_timeout,
            self.retries,
        )

    async def _publish_once(
        self, subject: str, body: bytes, headers: dict[str, str] | None, wait: float
    ) -> PublishAck:
        reply = await self._request(f"publish to {subject}", subject, body, headers, wait)
        return read_ack(subject, reply)

    async def publish_started(
        self,
        subject: str,
        body: bytes,
        headers: dict[str, str] | None,
        on_answer: Callable[[PublishAck | None, BaseException | None], None],
    ) -> None:
        """Send a publish without waiting for its answer; ``on_answer(ack, None)`` or
        ``on_answer(None, error)`` is called once it is answered.

        Many publishes are in flight at once (the sync client's pipeline); each ends as
        :meth:`publish` would: the first attempt waits for its answer as long as the first
        attempt of :meth:`publish`, and on "no responders", "no leader" or no answer the
        message is re-sent by :meth:`publish` (same headers, so the same ``Nats-Msg-Id``: a
        re-send is stored once). MessageTooLarge is raised here, before anything is sent; a
        lost connection raises BrokerUnavailable. A callback, not a future: a future's
        callbacks cost a loop turn each, per message.
        """
        loop = asyncio.get_running_loop()
        wait = REQUESTS.wait(0, self.settings.publish_timeout)
        try:
            reply = await self._requests.send(subject, body, headers, wait)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"publish to {subject} failed: {exc!r}") from exc

        def answered(reply: asyncio.Future[Msg]) -> None:
            if reply.cancelled():  # the loop is closing
                on_answer(None, BrokerUnavailable(_CLOSED))
                return
            try:
                ack = read_ack(subject, reply.result())
            except RETRYABLE:
                again = loop.create_task(self.publish(subject, body, headers))
                again.add_done_callback(functools.partial(_answer_from, on_answer))
                return
            except BaseException as exc:
                on_answer(None, exc)
                return
            on_answer(ack, None)

        reply.add_done_callback(answered)

    async def publish_many(
        self,
        messages: list[tuple[str, bytes, dict[str, str]]],
        tolerate: Collection[int] = (),
    ) -> list[bool]:
        """Publish many messages to JetStream pipelined, and wait until all are answered.

        One reply subscription for the batch instead of a request per message: several times
        faster than awaiting each publish. Messages without an answer ("no responders", no
        leader, no reply) are re-sent as :meth:`publish` does; each must carry a
        ``Nats-Msg-Id`` or be a write of the same value, so a re-send stores nothing twice.
        Returns per message True (stored, or a duplicate of a stored one) or False (refused
        with a JetStream error code in ``tolerate``, e.g. WRONG_LAST_SEQUENCES for a
        create-only KV key that exists); any other refusal raises BrokerUnavailable.
        """
        for subject, body, headers in messages:  # refuse the batch before sending any of it
            check_size(self.nc, subject, body, headers)
        stored = [True] * len(messages)
        errors: list[str] = []
        todo = list(range(len(messages)))

        async def one_round(wait: float) -> None:
            nonlocal todo
            todo = await self._publish_round(messages, todo, wait, stored, errors, tolerate)
            if todo:
                raise NotReady(f"{len(todo)} of {len(messages)} messages not stored yet")

        what = f"publishing {len(messages)} messages"
        await retry_request(what, one_round, self.settings.publish_timeout, self.retries)
        if errors:
            raise BrokerUnavailable(f"{len(errors)} messages not stored, e.g. {errors[0]}")
        return stored

    async def _publish_round(
        self,
        messages: list[tuple[str, bytes, dict[str, str]]],
        todo: list[int],
        wait: float,
        stored: list[bool],
        errors: list[str],
        tolerate: Collection[int],
    ) -> list[int]:
        """Publish ``todo`` once and wait up to ``wait`` seconds for the answers; return the
        indices to send again (no responders, no leader, or no answer in time)."""
        inbox = self.nc.new_inbox()
        unanswered = set(todo)
        again: list[int] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        unavailable = f'"err_code":{JS_UNAVAILABLE}'.encode()
        tolerated = [f'"err_code":{code}'.encode() for code in tolerate]

        async def on_ack(msg: Msg) -> None:
            index = int(msg.subject.rsplit(".", 1)[-1])
            if index not in unanswered:
                return
            unanswered.discard(index)
            status = (msg.headers or {}).get("Status")
            if status == "503" or unavailable in msg.data:
                again.append(index)
            elif b'"error"' in msg.data or status:
                stored[index] = False
                if not any(code in msg.data for code in tolerated):
                    errors.append(f"{messages[index][0]}: {msg.data[:200]!r} {msg.headers}")
            if not unanswered and not done.done():
                done.set_result(None)

        try:
            sub = await self.nc.subscribe(inbox + ".*", cb=on_ack, pending_msgs_limit=-1)
            try:
                for index in todo:
                    subject, body, headers = messages[index]
                    await self.nc.publish(subject, body, reply=f"{inbox}.{index}", headers=headers)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done, wait)
            finally:
                await sub.unsubscribe()
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"publishing {len(todo)} messages failed: {exc!r}") from exc
        return again + sorted(unanswered)

    # -- direct reads -----------------------------------------------------------------------

    async def stored_message(self, stream: str, subject: str, after: int) -> StoredMessage | None:
        """The first message on ``subject`` with sequence > ``after``, or None."""
        request = json.dumps({"next_by_subj": subject, "seq": after + 1}).encode()
        reply = await self._direct_get(f"reading {stream}", f"$JS.API.DIRECT.GET.{stream}", request)
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
        what = f"reading {stream}/{subject}"
        reply = await self._direct_get(what, f"$JS.API.DIRECT.GET.{stream}.{subject}", b"")
        headers = reply.headers or {}
        status = reply_status(reply)
        if status == "404":
            return None
        if status:
            raise BrokerUnavailable(f"{what} failed: {status} {headers}")
        return bytes(reply.data), headers

    async def leader_message(
        self, stream: str, subject: str
    ) -> tuple[bytes, dict[str, str]] | None:
        """Like :meth:`last_message`, but answered by the stream's leader.

        A direct get may be answered by any replica, and a replica may lag behind the writes
        the leader acknowledged (one just restarted, or one outside the quorum). Read from the
        leader where a decision needs every acknowledged write: the chord join's.
        """
        what = f"reading {stream}/{subject} from its leader"
        request = json.dumps({"last_by_subj": subject}).encode()
        return await retry_request(
            what,
            lambda wait: self._leader_get_once(what, stream, request, wait),
            self.settings.publish_timeout,
            self.retries,
        )

    async def _leader_get_once(
        self, what: str, stream: str, request: bytes, wait: float
    ) -> tuple[bytes, dict[str, str]] | None:
        reply = await self._request(what, f"$JS.API.STREAM.MSG.GET.{stream}", request, None, wait)
        if reply_status(reply) == "503":
            raise NotReady(f"{what}: no responders")
        answer = json.loads(reply.data)
        error = answer.get("error")
        if error:
            if error.get("err_code") == NO_MESSAGE_FOUND:
                return None
            if error.get("err_code") == JS_UNAVAILABLE:
                raise NotReady(f"{what}: {error.get('description')}")
            raise BrokerUnavailable(f"{what} failed: {error.get('description')}")
        return stream_message(answer["message"])

    async def _direct_get(self, what: str, subject: str, request: bytes) -> Msg:
        """A direct get, re-sent like a publish while no replica answers."""
        return await retry_request(
            what,
            lambda wait: self._request(what, subject, request, None, wait),
            self.settings.publish_timeout,
            self.retries,
        )

    async def _request(
        self, what: str, subject: str, payload: bytes, headers: dict[str, str] | None, wait: float
    ) -> Msg:
        """One request over the reply inbox; RETRYABLE errors as they are, others wrapped."""
        try:
            return await self._requests.request(subject, payload, headers, wait)
        except RETRYABLE:
            raise
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"{what} failed: {exc!r}") from exc

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


_CLOSED = "the connection was closed before the publish was answered"


def _answer_from(
    on_answer: Callable[[PublishAck | None, BaseException | None], None],
    done: asyncio.Future[PublishAck],
) -> None:
    if done.cancelled():
        on_answer(None, BrokerUnavailable(_CLOSED))
    elif (error := done.exception()) is not None:
        on_answer(None, error)
    else:
        on_answer(done.result(), None)
