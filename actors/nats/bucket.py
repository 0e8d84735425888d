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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from nats.js import api

from actors.errors import BrokerUnavailable
from actors.nats.broker import Broker, PublishRefused
from actors.nats.codes import WRONG_LAST_SEQUENCES
from actors.nats.connection import NATS_ERRORS, reply_status
from actors.wire import topology

_EXPECTED = "Nats-Expected-Last-Subject-Sequence"
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

    async def get(self, key: str) -> bytes | None:
        """The current value of ``key``, or None when absent or deleted."""
        last = await self._broker.last_message(self.stream, self._subject(key))
        return None if last is None or _deleted(last[1]) else last[0]

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
        """One batched direct get from ``seq``; return (messages still pending, next seq)."""
        nc = self._broker.nc
        inbox = nc.new_inbox()
        done: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        last = seq - 1

        async def on_msg(msg: Msg) -> None:
            nonlocal last
            headers = msg.headers or {}
            status = reply_status(msg)
            if status is None:
                last = int(headers["Nats-Sequence"])
                if not _deleted(headers):
                    into[headers["Nats-Subject"]] = bytes(msg.data)
            elif not done.done():
                pending = int(headers.get("Nats-Num-Pending", "0")) if status == "204" else 0
                done.set_result((pending, last + 1))

        request = json.dumps({"seq": seq, "next_by_subj": subject, "batch": _SCAN_BATCH}).encode()
        try:
            sub = await nc.subscribe(inbox, cb=on_msg, pending_msgs_limit=-1)
            try:
                await nc.publish(f"$JS.API.DIRECT.GET.{self.stream}", request, reply=inbox)
                return await asyncio.wait_for(done, self._broker.settings.publish_timeout)
            finally:
                await sub.unsubscribe()
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
        subject = self._subject(key)
        revision = await self._write(subject, value, 0)
        return await self._create_over_delete(subject, value) if revision is None else revision

    async def _create_over_delete(self, subject: str, value: bytes) -> int | None:
        """Write ``value`` if the key's last message is a delete marker (a create-only write
        is refused then: the server compares with the last message, whatever it is)."""
        last = await self._broker.last_message(self.stream, subject)
        if last is None or not _deleted(last[1]):
            return None
        return await self._write(subject, value, int(last[1]["Nats-Sequence"]))

    async def create_many(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Create-only writes of many keys, pipelined; per key True (stored) or False (the
        key has a value)."""
        writes = [(self._subject(key), value, {_EXPECTED: "0"}) for key, value in items]
        stored = await self._broker.publish_many(writes, tolerate=WRONG_LAST_SEQUENCES)
        for index, (subject, value, _) in enumerate(writes):
            if not stored[index]:
                stored[index] = await self._create_over_delete(subject, value) is not None
        return stored

    async def update(self, key: str, value: bytes, revision: int) -> int | None:
        """Store ``value`` if the key's revision is still ``revision``; the new revision, or
        None when it has changed."""
        return await self._write(self._subject(key), value, revision)

    async def _write(self, subject: str, value: bytes, expected: int) -> int | None:
        try:
            ack = await self._broker.publish(
                subject, value, {_EXPECTED: str(expected)}, retry=False
            )
        except PublishRefused as exc:
            if exc.code in WRONG_LAST_SEQUENCES:
                return None
            raise
        return ack.seq

    async def delete(self, key: str) -> None:
        """Delete ``key`` (a delete marker: watchers see it, reads find nothing)."""
        await self._broker.publish(self._subject(key), b"", {"KV-Operation": "DEL"})

    # -- counters ---------------------------------------------------------------------------

    async def add(self, key: str, amount: int = 1, msg_id: str | None = None) -> int | None:
        """Add to the ``Nats-Incr`` counter ``key``; the new total. With ``msg_id`` the
        addition counts once per id, and a repeat returns None."""
        headers = {"Nats-Incr": f"{amount:+d}"}
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        ack = await self._broker.publish(self._subject(key), b"", headers, retry=False)
        if ack.duplicate:
            return None
        if ack.total is None:
            raise BrokerUnavailable(f"counting on {self._subject(key)} failed: no total in answer")
        return ack.total

    async def total(self, key: str) -> int:
        """The current total of the ``Nats-Incr`` counter ``key`` (0 when it has none)."""
        last = await self._broker.last_message(self.stream, self._subject(key))
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

        js = self._broker.js
        try:
            if initial and await self._is_empty(filter_subject if prefix else None):
                loaded.set()
            sub = await js.subscribe(
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
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot watch bucket {self.name}: {exc!r}") from exc
        if initial:
            # Keys may expire between the count and the subscription: do not wait for ever.
            wait = self._broker.settings.publish_timeout if timeout is None else timeout
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loaded.wait(), wait)
        return Watch(sub, loaded.is_set())

    async def _is_empty(self, subjects: str | None) -> bool:
        """True when the bucket (or, given a filter, its keys matching ``subjects``) has no
        messages."""
        if subjects is None:
            info = await self._broker.js.stream_info(self.stream)
            return bool(info.state.messages == 0)
        info = await self._broker.js.stream_info(self.stream, subjects_filter=subjects)
        return not info.state.subjects


def _deleted(headers: Mapping[str, str]) -> bool:
    """True for a delete or purge marker, or a server marker of a removed key."""
    return headers.get("KV-Operation") in _DELETES or "Nats-Marker-Reason" in headers
