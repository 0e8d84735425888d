"""One KV bucket: reads, writes, create-only and compare-and-set writes, scans, watches and
``Nats-Incr`` counters.

A bucket is a stream holding one message per key: a KV bucket ``<name>`` is the stream
``KV_<name>`` with the key ``<key>`` on the subject ``$KV.<name>.<key>``; a counter stream
(ACTORS_RATE, ACTORS_CHORD_COUNTERS, :meth:`Bucket.counters`) is one too, its keys being its
subjects. Keys are dot-separated subject tokens. The revision of a key is the stream sequence
of its last write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import api

from actors.errors import BrokerUnavailable
from actors.nats.broker import Broker
from actors.nats.codes import WRONG_LAST_SEQUENCES
from actors.nats.connection import NATS_ERRORS, reply_status
from actors.nats.replies import PublishRefused
from actors.nats.retrying import RETRYABLE, retry_request
from actors.wire import topology

_EXPECTED = "Nats-Expected-Last-Subject-Sequence"
_MSG_ID = "Nats-Msg-Id"
_DELETES = ("DEL", "PURGE")
_SCAN_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Entry:
    """The value of a key and its revision."""

    value: bytes
    revision: int


class Watch:
    """A running watch of a bucket (one ordered push consumer); :meth:`stop` ends it."""

    def __init__(self, sub: Any, loaded: bool) -> None:
        self._sub = sub
        self.loaded = loaded
        """With ``initial``: True once every current value was delivered (in time)."""

    async def stop(self) -> None:
        """Stop watching; nothing to undo when the connection is already gone."""
        with contextlib.suppress(*NATS_ERRORS):
            await self._sub.unsubscribe()


class Bucket:
    """A KV bucket (``Bucket(broker, name)``) or a counter stream (:meth:`counters`)."""

    __slots__ = ("_broker", "_prefix", "name", "stream")

    def __init__(self, broker: Broker, name: str) -> None:
        self._broker = broker
        self.name = name
        self.stream = f"KV_{name}"
        self._prefix = f"$KV.{name}."

    @classmethod
    def counters(cls, broker: Broker, stream: str) -> Bucket:
        """The ``Nats-Incr`` counters of stream ``stream``; their keys are their subjects."""
        bucket = cls(broker, stream)
        bucket.stream = stream
        bucket._prefix = ""
        return bucket

    def _subject(self, key: str) -> str:
        """The subject holding ``key``; ProtocolError when ``key`` is no subject tokens."""
        return self._prefix + topology.subject_tokens(key)

    # -- reads ------------------------------------------------------------------------------

    async def get(self, key: str, *, fresh: bool = False) -> bytes | None:
        """The current value of ``key``, or None when absent or deleted.

        ``fresh``: read from the stream leader, which has every acknowledged write; otherwise
        any replica answers (faster, but one may lag a moment behind).
        """
        last = await self._last(key, fresh)
        return None if last is None or _deleted(last[1]) else last[0]

    async def _last(self, key: str, fresh: bool) -> tuple[bytes, dict[str, str]] | None:
        read = self._broker.leader_message if fresh else self._broker.last_message
        return await read(self.stream, self._subject(key))

    async def entry(self, key: str) -> Entry | None:
        """The current value of ``key`` with its revision, or None when absent or deleted."""
        last = await self._broker.last_message(self.stream, self._subject(key))
        if last is None or _deleted(last[1]):
            return None
        data, headers = last
        return Entry(data, int(headers.get("Nats-Sequence", 0)))

    async def scan(self, prefix: str) -> dict[str, bytes]:
        """Every live key under ``<prefix>.`` with its value, read in batched direct gets."""
        filter_subject = f"{self._subject(prefix)}.>"
        found: dict[str, bytes] = {}
        seq = 1
        while True:
            pending, seq = await self._direct_batch(filter_subject, seq, found)
            if not pending:
                return {subject[len(self._prefix) :]: v for subject, v in found.items()}

    async def _direct_batch(
        self, subject: str, seq: int, into: dict[str, bytes]
    ) -> tuple[int, int]:
        """One batched direct get from ``seq``, re-sent while no replica answers; return
        (messages still pending, next seq)."""
        return await retry_request(
            f"reading {subject}",
            lambda wait: self._direct_batch_once(subject, seq, into, wait),
            self._broker.settings.publish_timeout,
            self._broker.retries,
        )

    async def _direct_batch_once(
        self, subject: str, seq: int, into: dict[str, bytes], wait: float
    ) -> tuple[int, int]:
        nc = self._broker.nc
        inbox = nc.new_inbox()
        done: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        last = seq - 1

        async def on_msg(msg: Msg) -> None:
            nonlocal last
            headers = msg.headers or {}
            status = reply_status(msg)
            if done.done():
                return
            if status is None:
                last = int(headers["Nats-Sequence"])
                if not _deleted(headers):
                    into[headers["Nats-Subject"]] = bytes(msg.data)
            elif status in ("204", "404"):  # end of the batch; nothing (more) found
                pending = int(headers.get("Nats-Num-Pending", "0")) if status == "204" else 0
                done.set_result((pending, last + 1))
            elif status == "503":  # no replica answers (yet): not the end of the keys
                done.set_exception(nats.errors.NoRespondersError())
            else:
                done.set_exception(BrokerUnavailable(f"reading {subject}: {status} {headers}"))

        request = json.dumps({"seq": seq, "next_by_subj": subject, "batch": _SCAN_BATCH}).encode()
        try:
            sub = await nc.subscribe(inbox, cb=on_msg, pending_msgs_limit=-1)
            try:
                await nc.publish(f"$JS.API.DIRECT.GET.{self.stream}", request, reply=inbox)
                return await asyncio.wait_for(done, wait)
            finally:
                await sub.unsubscribe()
        except RETRYABLE:
            raise
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"reading {subject} failed: {exc!r}") from exc

    # -- writes -----------------------------------------------------------------------------

    async def put(self, key: str, value: bytes) -> int:
        """Store ``value`` under ``key``; waits until stored and returns the new revision."""
        return (await self._broker.publish(self._subject(key), value)).seq

    async def create(self, key: str, value: bytes) -> int | None:
        """Store ``value`` under ``key`` only if the key has no value (absent or deleted).

        Returns the new revision, or None when the key has a value.
        """
        return await self._write(self._subject(key), value, 0)

    async def create_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Create-only writes of many keys, pipelined; per key True (stored) or False (the
        key has a value)."""
        writes = [(self._subject(key), value, _conditional(0)) for key, value in items]
        stored = await self._broker.publish_many(writes, tolerate=WRONG_LAST_SEQUENCES)
        for index, (subject, value, headers) in enumerate(writes):
            if not stored[index]:
                refused = await self._refused(subject, value, headers[_MSG_ID], 0)
                stored[index] = refused is not None
        return stored

    async def update(self, key: str, value: bytes, revision: int) -> int | None:
        """Store ``value`` if the key's revision is still ``revision``; the new revision, or
        None when it has changed."""
        return await self._write(self._subject(key), value, revision)

    async def _write(self, subject: str, value: bytes, expected: int) -> int | None:
        """A compare-and-set write (``expected`` 0: create-only); the new revision or None.

        Its ``Nats-Msg-Id`` is unique to this call and the same on each attempt: when an
        attempt was stored but its reply lost, the next is answered as a duplicate (or, where
        the server checks the revision first, refused; see :meth:`_refused`).
        """
        headers = _conditional(expected)
        try:
            ack = await self._broker.publish(subject, value, headers)
        except PublishRefused as exc:
            if exc.code in WRONG_LAST_SEQUENCES:
                return await self._refused(subject, value, headers[_MSG_ID], expected)
            raise
        return ack.seq

    async def _refused(self, subject: str, value: bytes, msg_id: str, expected: int) -> int | None:
        """After a compare-and-set write was refused: the revision it has if an earlier
        attempt of it was stored after all; else, for a create-only write whose key's last
        message is a delete marker, the revision of writing over it; else None.

        A single server checks the revision before the ``Nats-Msg-Id`` and refuses the repeat
        of a stored write (an R3 stream answers it as a duplicate): the key's last message
        then carries this write's id.
        """
        last = await self._broker.last_message(self.stream, subject)
        if last is None:
            return None
        headers = last[1]
        if headers.get(_MSG_ID) == msg_id:
            return int(headers["Nats-Sequence"])
        if expected != 0 or not _deleted(headers):
            return None
        # A create-only write is refused over a delete marker too: the server compares with
        # the key's last message, whatever it is.
        return await self._write(subject, value, int(headers["Nats-Sequence"]))

    async def delete(self, key: str) -> None:
        """Delete ``key`` (a delete marker: watchers see it, reads find nothing)."""
        await self._broker.publish(self._subject(key), b"", {"KV-Operation": "DEL"})

    # -- counters ---------------------------------------------------------------------------

    async def add(self, key: str, amount: int = 1, msg_id: str | None = None) -> int | None:
        """Add to the ``Nats-Incr`` counter ``key``; the new total. With ``msg_id`` the
        addition counts once per id, and a repeat returns None."""
        subject = self._subject(key)
        headers = {"Nats-Incr": f"{amount:+d}", _MSG_ID: msg_id or _unique_id()}
        ack = await self._broker.publish(subject, b"", headers)
        if ack.duplicate:
            # With our own id the repeat is of an attempt of this very call, which counted.
            return None if msg_id is not None else await self.total(key, fresh=True)
        if ack.total is None:
            raise BrokerUnavailable(f"counting on {subject} failed: no total in answer")
        return ack.total

    async def total(self, key: str, *, fresh: bool = False) -> int:
        """The current total of the ``Nats-Incr`` counter ``key`` (0 when it has none);
        ``fresh`` as for :meth:`get`."""
        last = await self._last(key, fresh)
        data = last[0] if last else None
        return int(json.loads(data)["val"]) if data else 0

    # -- watching ---------------------------------------------------------------------------

    async def watch(
        self,
        callback: Callable[[str, bytes | None], Awaitable[None]],
        *,
        prefix: str = "",
        initial: bool = False,
        timeout: float | None = None,
    ) -> Watch:
        """Call ``callback(key, value)`` for every change from now on (value None: deleted).

        ``prefix`` limits the watch to the keys under ``<prefix>.``. With ``initial`` the
        current value of every key is delivered first, and this returns once they all were,
        or after ``timeout`` seconds (default ``publish_timeout``; see ``Watch.loaded``). One
        ordered push consumer: use one per process and bucket, not one per key.
        """
        filter_subject = f"{self._subject(prefix)}.>" if prefix else f"{self._prefix}>"
        start = len(self._prefix)
        loaded = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            value = None if _deleted(msg.headers or {}) else bytes(msg.data)
            await callback(msg.subject[start:], value)
            if initial and not loaded.is_set() and msg.metadata.num_pending == 0:
                loaded.set()

        async def subscribe(wait: float) -> Any:
            js = self._broker.nc.jetstream(timeout=wait)
            try:
                if initial and await _is_empty(js, self.stream, filter_subject if prefix else None):
                    loaded.set()
                return await js.subscribe(
                    filter_subject,
                    stream=self.stream,
                    cb=on_msg,
                    ordered_consumer=True,
                    # Notice a lost consumer (its server died) within seconds and re-create it.
                    idle_heartbeat=2.0,
                    deliver_policy=(
                        api.DeliverPolicy.LAST_PER_SUBJECT if initial else api.DeliverPolicy.NEW
                    ),
                    pending_msgs_limit=-1,
                    pending_bytes_limit=-1,
                )
            except RETRYABLE:
                raise
            except NATS_ERRORS as exc:
                raise BrokerUnavailable(f"cannot watch bucket {self.name}: {exc!r}") from exc

        settings = self._broker.settings
        what = f"watching bucket {self.name}"
        sub = await retry_request(what, subscribe, settings.publish_timeout, self._broker.retries)
        if initial:
            # Keys may expire between the count and the subscription: do not wait for ever.
            wait = settings.publish_timeout if timeout is None else timeout
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loaded.wait(), wait)
        return Watch(sub, loaded.is_set())


async def _is_empty(js: Any, stream: str, subjects: str | None) -> bool:
    """True when ``stream`` (or, given a filter, its subjects matching ``subjects``) has no
    messages."""
    if subjects is None:
        info = await js.stream_info(stream)
        return bool(info.state.messages == 0)
    info = await js.stream_info(stream, subjects_filter=subjects)
    return not info.state.subjects


def _deleted(headers: Mapping[str, str]) -> bool:
    """True for a delete or purge marker, or a server marker of a removed key."""
    return headers.get("KV-Operation") in _DELETES or "Nats-Marker-Reason" in headers


def _conditional(expected: int) -> dict[str, str]:
    """Headers of a compare-and-set write, with a ``Nats-Msg-Id`` unique to it."""
    return {_EXPECTED: str(expected), _MSG_ID: _unique_id()}


def _unique_id() -> str:
    # uuid4, not a counter: forked task processes must not repeat each other's ids.
    return uuid.uuid4().hex
