"""Every JetStream operation actors performs: streams, buckets, consumers, publishing, KV.

Wraps nats-py errors in BrokerUnavailable."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api

from actors.config import Settings
from actors.errors import BrokerUnavailable, ConfigurationError
from actors.nats import connection as nats_connection
from actors.nats.connection import (
    NATS_ERRORS,
    ConnectionEvents,
    ReplyInbox,
    check_size,
    reply_status,
)
from actors.wire import topology

log = structlog.get_logger(__name__)

_RETRY_PAUSE = 0.2
_SETUP_PATIENCE = 30.0  # seconds to wait for JetStream to answer stream set-up
_JS_UNAVAILABLE = 10008  # "JetStream system temporarily unavailable"


@dataclass(frozen=True, slots=True)
class PublishAck:
    """The stream's answer to a publish."""

    seq: int
    duplicate: bool = False
    """True when the server dropped the message as a repeat of its ``Nats-Msg-Id``."""


@dataclass(slots=True)
class StoredMessage:
    """A message read directly from a stream (not through a consumer)."""

    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]
    time: datetime


class Broker:
    """One NATS connection and every NATS operation actors performs over it."""

    def __init__(self, nc: Client, settings: Settings) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=settings.publish_timeout)
        self.settings = settings
        self._topology_ready = False
        self._consumers: set[str] = set()
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

    # -- topology ---------------------------------------------------------------------------

    async def ensure_topology(self, update: bool = True) -> None:
        """Create the streams and KV buckets actors uses, where missing.

        With ``update`` (workers, the CLI) existing ones are also set to this version's
        configuration. Without it (clients) they are only looked up with STREAM.INFO, so a
        connection allowed no stream changes works (docs/deploy.md, "Permissions").
        """
        if self._topology_ready:
            return
        for config in self._stream_configs():
            await self._ensure_stream(config, update)
        self._topology_ready = True

    async def ensure_stream(self, name: str) -> None:
        """Create or update one of the streams ``ensure_topology`` manages."""
        for config in self._stream_configs():
            if config.name == name:
                await self._ensure_stream(config, update=True)

    def _stream_configs(self) -> list[api.StreamConfig]:
        replicas = self.settings.stream_replicas
        ttl = self.settings.result_ttl
        return [
            # Immediate tasks: no schedules and so no rollup headers, so that no publisher
            # can purge the queue with `Nats-Rollup: all`. First, so that an old ACTORS
            # (holding actors.sched.> too) is reported before ACTORS_SCHEDULED collides.
            api.StreamConfig(
                name=topology.TASK_STREAM,
                subjects=[topology.TASK_PREFIX + ">"],
                retention=api.RetentionPolicy.WORK_QUEUE,
                storage=api.StorageType.FILE,
                num_replicas=replicas,
                duplicate_window=120.0,
                allow_rollup_hdrs=False,
                allow_msg_ttl=True,
                allow_direct=True,
                sources=[
                    api.StreamSource(
                        name=topology.SCHEDULED_STREAM,
                        subject_transforms=[
                            api.SubjectTransform(
                                src=topology.DUE_PREFIX + ">", dest=topology.TASK_PREFIX + ">"
                            )
                        ],
                    )
                ],
            ),
            # Delayed tasks: schedules on actors.sched.<id> fire into actors.due.<task> here
            # (a schedule's target must be in its own stream). Work-queue retention: the
            # source consumer of ACTORS removes each fired message as it copies it.
            api.StreamConfig(
                name=topology.SCHEDULED_STREAM,
                subjects=[topology.SCHEDULE_PREFIX + ">", topology.DUE_PREFIX + ">"],
                retention=api.RetentionPolicy.WORK_QUEUE,
                storage=api.StorageType.FILE,
                num_replicas=replicas,
                duplicate_window=120.0,
                allow_msg_schedules=True,
            ),
            api.StreamConfig(
                name=topology.DEAD_STREAM,
                subjects=[topology.DEAD_PREFIX + ">"],
                retention=api.RetentionPolicy.LIMITS,
                storage=api.StorageType.FILE,
                num_replicas=replicas,
                duplicate_window=120.0,
                allow_direct=True,
            ),
            api.StreamConfig(
                name=topology.RATE_STREAM,
                subjects=[topology.RATE_PREFIX + ">"],
                storage=api.StorageType.FILE,
                num_replicas=replicas,
                allow_msg_counter=True,
                max_msgs_per_subject=1,
                max_age=2 * 3600.0,  # longest rate-limit window is an hour
            ),
            self._bucket_config(topology.RESULTS_BUCKET, ttl),
            self._bucket_config(topology.REVOKED_BUCKET, ttl),
            self._bucket_config(topology.CHORDS_BUCKET, ttl),
            api.StreamConfig(
                name=topology.CHORD_COUNTER_STREAM,
                subjects=[topology.CHORD_COUNTER_PREFIX + ">"],
                allow_msg_counter=True,
                allow_direct=True,
                max_msgs_per_subject=1,
                max_age=ttl,
                num_replicas=replicas,
                storage=api.StorageType.FILE,
                duplicate_window=120.0,
            ),
        ]

    async def _ensure_stream(self, config: api.StreamConfig, update: bool) -> None:
        # A cluster that has just started (or lost its meta leader) answers JetStream API
        # requests late or not at all for a while: keep trying for a bounded time.
        deadline = time.monotonic() + _SETUP_PATIENCE
        while True:
            try:
                await self._create_or_update_stream(config, update)
                return
            except (
                TimeoutError,
                nats.errors.NoRespondersError,
                nats.js.errors.ServiceUnavailableError,
            ) as exc:
                if time.monotonic() >= deadline:
                    raise BrokerUnavailable(
                        f"cannot create stream {config.name}: JetStream did not answer for "
                        f"{_SETUP_PATIENCE:g}s ({exc!r}); is JetStream enabled, does the "
                        "cluster have a meta leader, and may this user create streams?"
                    ) from exc
                await asyncio.sleep(1.0)
            except NATS_ERRORS as exc:
                raise BrokerUnavailable(f"cannot create stream {config.name}: {exc!r}") from exc

    async def _create_or_update_stream(self, config: api.StreamConfig, update: bool) -> None:
        name = str(config.name)
        try:
            current = (await self.js.stream_info(name)).config
        except nats.js.errors.NotFoundError:
            try:
                await self.js.add_stream(config)
                return
            except nats.js.errors.BadRequestError as exc:
                if exc.err_code != 10058:  # 10058: made meanwhile with another configuration
                    raise BrokerUnavailable(f"cannot create stream {name}: {exc}") from exc
            except TimeoutError as exc:
                if update:
                    raise
                # JetStream answered the lookup, so silence here is a permission refusal.
                raise BrokerUnavailable(
                    f"stream {name} does not exist and this connection may not create it "
                    "(no answer): start a worker, or run `actors migrate` as an operator, "
                    "to create the streams"
                ) from exc
            current = (await self.js.stream_info(name)).config
        if name == topology.TASK_STREAM and current.allow_msg_schedules:
            # The server cannot switch schedules (and with them rollup headers) off again.
            raise ConfigurationError(
                f"stream {name} was made by an older actors with message schedules, which "
                "lets any publisher purge every queued task with a Nats-Rollup header; stop "
                "all workers and run `actors migrate` to move its messages to the current "
                "streams (docs/deploy.md, 'Upgrading from a single task stream')"
            )
        if not update:
            return
        # Never scale an existing stream down: one process left at the default of one
        # replica must not undo a cluster's R3.
        config.num_replicas = max(config.num_replicas or 1, current.num_replicas or 1)
        await self.js.update_stream(config)

    def _bucket_config(self, bucket: str, ttl: float) -> api.StreamConfig:
        return api.StreamConfig(
            name=f"KV_{bucket}",
            subjects=[f"$KV.{bucket}.>"],
            allow_direct=True,
            allow_rollup_hdrs=True,
            allow_msg_ttl=True,
            deny_delete=True,
            discard=api.DiscardPolicy.NEW,
            duplicate_window=min(120.0, ttl),
            max_age=ttl,
            max_msgs_per_subject=1,
            num_replicas=self.settings.stream_replicas,
            storage=api.StorageType.FILE,
        )

    async def ensure_consumer(self, task_name: str, max_ack_pending: int = 20_000) -> str:
        """Create or update the durable consumer of an actor; return its name."""
        durable = topology.consumer_name(task_name)
        if durable in self._consumers:
            return durable
        config = api.ConsumerConfig(
            durable_name=durable,
            filter_subject=topology.task_subject(task_name),
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=self.settings.ack_wait,
            max_ack_pending=max_ack_pending,
            max_waiting=1024,
        )
        try:
            # Creating an existing durable with a new config updates it (ack_wait etc.).
            await self.js.add_consumer(topology.TASK_STREAM, config)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot create consumer {durable}: {exc!r}") from exc
        self._consumers.add(durable)
        return durable

    async def served_subjects(self) -> set[str]:
        """The filter subjects of the consumers on the task stream, as configured."""
        try:
            infos = await self.js.consumers_info(topology.TASK_STREAM)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot list consumers: {exc!r}") from exc
        served: set[str] = set()
        for info in infos:
            config = info.config
            if config.filter_subject:
                served.add(config.filter_subject)
            served.update(config.filter_subjects or ())
        return served

    async def task_subject_counts(self) -> dict[str, int]:
        """Messages waiting per task subject."""
        try:
            info = await self.js.stream_info(
                topology.TASK_STREAM, subjects_filter=topology.TASK_PREFIX + ">"
            )
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot read stream info: {exc!r}") from exc
        return dict(info.state.subjects or {})

    # -- publishing -------------------------------------------------------------------------

    async def publish(
        self, subject: str, body: bytes, headers: dict[str, str] | None = None
    ) -> PublishAck:
        """Publish to JetStream and wait for the server to store it; return its answer.

        While a stream has no leader (an election after a node died) the server answers "no
        responders": retried until ``publish_timeout``. Our messages carry a ``Nats-Msg-Id``
        or are idempotent writes, so a retry never stores twice. A message larger than the
        server's ``max_payload`` (headers counted) raises MessageTooLarge; nothing is sent.
        """
        deadline = time.monotonic() + self.settings.publish_timeout
        while True:
            try:
                reply = await self._requests.request(
                    subject, body, headers, max(0.1, deadline - time.monotonic())
                )
            except nats.errors.NoRespondersError as exc:
                if time.monotonic() + _RETRY_PAUSE >= deadline:
                    raise BrokerUnavailable(f"publish to {subject}: no stream answers") from exc
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            except NATS_ERRORS as exc:
                raise BrokerUnavailable(f"publish to {subject} failed: {exc!r}") from exc
            ack = json.loads(reply.data)
            error = ack.get("error")
            if error and error.get("err_code") == _JS_UNAVAILABLE and time.monotonic() < deadline:
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            if error:
                raise BrokerUnavailable(f"publish to {subject} refused: {error.get('description')}")
            return PublishAck(int(ack["seq"]), bool(ack.get("duplicate")))

    async def publish_many(
        self, messages: list[tuple[str, bytes, dict[str, str]]], tolerate: int | None = None
    ) -> list[bool]:
        """Publish many messages to JetStream pipelined, and wait until all are answered.

        One reply subscription for the batch instead of a request per message: several times
        faster than awaiting each publish. Returns per message True (stored) or False (refused
        with JetStream error code ``tolerate``, e.g. 10071 for a create-only KV key that
        exists); any other refusal raises BrokerUnavailable.
        """
        for subject, body, headers in messages:  # refuse the batch before sending any of it
            check_size(self.nc, subject, body, headers)
        stored = [True] * len(messages)
        errors: list[str] = []
        todo = list(range(len(messages)))
        deadline = time.monotonic() + self.settings.publish_timeout
        while todo:
            again = await self._publish_round(messages, todo, deadline, stored, errors, tolerate)
            if again and time.monotonic() + _RETRY_PAUSE < deadline:
                await asyncio.sleep(_RETRY_PAUSE)  # no stream leader yet: try those again
            elif again:
                errors.append(f"{len(again)} messages found no stream leader in time")
                again = []
            todo = again
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
        tolerate: int | None,
    ) -> list[int]:
        """Publish ``todo`` once; the indices to try again (no responders / no leader)."""
        inbox = self.nc.new_inbox()
        left = len(todo)
        again: list[int] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_ack(msg: Msg) -> None:
            nonlocal left
            index = int(msg.subject.rsplit(".", 1)[-1])
            status = (msg.headers or {}).get("Status")
            if status == "503" or f'"err_code":{_JS_UNAVAILABLE}'.encode() in msg.data:
                again.append(index)
            elif b'"error"' in msg.data or status:
                stored[index] = False
                if tolerate is None or f'"err_code":{tolerate}'.encode() not in msg.data:
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

    async def publish_core(self, subject: str, body: bytes) -> None:
        """Publish on core NATS (no storage): events and control replies."""
        check_size(self.nc, subject, body, None)
        try:
            await self.nc.publish(subject, body)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"publish to {subject} failed: {exc!r}") from exc

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
        stamp = headers.get("Nats-Time-Stamp", "")
        return StoredMessage(
            seq=int(headers["Nats-Sequence"]),
            subject=headers.get("Nats-Subject", subject),
            data=bytes(reply.data),
            headers={k: v for k, v in headers.items() if not k.startswith("Nats-")},
            time=_parse_nats_time(stamp),
        )

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

    # -- key/value --------------------------------------------------------------------------

    async def kv_put(self, bucket: str, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``; waits until stored."""
        await self.publish(topology.kv_subject(bucket, key), value)

    async def kv_get(self, bucket: str, key: str) -> bytes | None:
        """The current value of ``key`` by direct get, or None when absent or deleted."""
        subject = f"$JS.API.DIRECT.GET.KV_{bucket}.{topology.kv_subject(bucket, key)}"
        try:
            reply = await self._requests.request(subject, b"", None, self.settings.publish_timeout)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"reading {bucket}/{key} failed: {exc!r}") from exc
        headers = reply.headers or {}
        status = reply_status(reply)
        if status == "404":
            return None
        if status:
            raise BrokerUnavailable(f"reading {bucket}/{key} failed: {status} {headers}")
        if headers.get("KV-Operation") in ("DEL", "PURGE"):
            return None
        return bytes(reply.data)

    async def kv_create(self, bucket: str, key: str, value: bytes) -> bool:
        """Store ``value`` under ``key`` only if the key does not exist; False if it does."""
        headers = {"Nats-Expected-Last-Subject-Sequence": "0"}
        check_size(self.nc, f"$KV.{bucket}.{key}", value, headers)
        try:
            await self.js.publish(topology.kv_subject(bucket, key), value, headers=headers)
        except nats.js.errors.APIError as exc:
            if exc.err_code == 10071:  # wrong last sequence: the key exists
                return False
            raise BrokerUnavailable(f"creating {bucket}/{key} failed: {exc!r}") from exc
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"creating {bucket}/{key} failed: {exc!r}") from exc
        return True

    async def kv_scan(self, bucket: str, prefix: str) -> dict[str, bytes]:
        """Every live key under ``<prefix>.`` with its value, read in batched direct gets."""
        filter_subject = f"{topology.kv_subject(bucket, prefix)}.>"
        found: dict[str, bytes] = {}
        seq = 1
        while True:
            pending, seq = await self._direct_batch(f"KV_{bucket}", filter_subject, seq, found)
            if not pending:
                return {k[len(bucket) + 5 :]: v for k, v in found.items()}

    async def _direct_batch(
        self, stream: str, subject: str, seq: int, into: dict[str, bytes]
    ) -> tuple[int, int]:
        """One batched direct get from ``seq``; return (messages still pending, next seq)."""
        inbox = self.nc.new_inbox()
        done: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        last = seq - 1

        async def on_msg(msg: Msg) -> None:
            nonlocal last
            headers = msg.headers or {}
            status = reply_status(msg)
            if status is None:
                last = int(headers["Nats-Sequence"])
                if headers.get("KV-Operation") not in ("DEL", "PURGE"):
                    into[headers["Nats-Subject"]] = bytes(msg.data)
            elif not done.done():
                pending = int(headers.get("Nats-Num-Pending", "0")) if status == "204" else 0
                done.set_result((pending, last + 1))

        request = json.dumps({"seq": seq, "next_by_subj": subject, "batch": 10_000}).encode()
        try:
            sub = await self.nc.subscribe(inbox, cb=on_msg, pending_msgs_limit=-1)
            try:
                await self.nc.publish(f"$JS.API.DIRECT.GET.{stream}", request, reply=inbox)
                return await asyncio.wait_for(done, self.settings.publish_timeout)
            finally:
                await sub.unsubscribe()
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"reading {subject} failed: {exc!r}") from exc

    async def counter_add(
        self, subject: str, amount: int = 1, msg_id: str | None = None
    ) -> int | None:
        """Add to a ``Nats-Incr`` counter; the new total. With ``msg_id`` the addition counts
        once per id, and a repeat returns None."""
        headers = {"Nats-Incr": f"{amount:+d}"}
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        try:
            reply = await self._requests.request(
                subject, b"", headers, self.settings.publish_timeout
            )
            answer = json.loads(reply.data)
        except (*NATS_ERRORS, ValueError) as exc:
            raise BrokerUnavailable(f"counting on {subject} failed: {exc!r}") from exc
        if "error" in answer:
            raise BrokerUnavailable(f"counting on {subject} failed: {answer['error']}")
        return None if answer.get("duplicate") else int(answer["val"])

    async def counter_value(self, stream: str, subject: str) -> int:
        """The current total of a ``Nats-Incr`` counter (0 when it has none)."""
        data = await self._direct_last(stream, subject)
        return int(json.loads(data)["val"]) if data else 0

    async def _direct_last(self, stream: str, subject: str) -> bytes | None:
        try:
            reply = await self._requests.request(
                f"$JS.API.DIRECT.GET.{stream}.{subject}", b"", None, self.settings.publish_timeout
            )
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"reading {stream}/{subject} failed: {exc!r}") from exc
        status = reply_status(reply)
        if status == "404":
            return None
        if status:
            raise BrokerUnavailable(f"reading {stream}/{subject} failed: {status}")
        return bytes(reply.data)

    async def kv_watch(
        self,
        bucket: str,
        callback: Callable[[str, bytes | None], Awaitable[None]],
        initial: bool = False,
    ) -> Callable[[], Awaitable[None]]:
        """Call ``callback(key, value)`` for every change from now on; return a stop function.

        With ``initial`` the current value of every key is delivered first, and this returns
        once they all were. One ordered push consumer on the whole bucket: use one per
        process, not one per key.
        """
        prefix = f"$KV.{bucket}."
        caught_up = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            op = (msg.headers or {}).get("KV-Operation")
            value = None if op in ("DEL", "PURGE") else bytes(msg.data)
            await callback(msg.subject[len(prefix) :], value)
            if initial and not caught_up.is_set() and msg.metadata.num_pending == 0:
                caught_up.set()

        try:
            if initial and (await self.js.stream_info(f"KV_{bucket}")).state.messages == 0:
                caught_up.set()
            sub = await self.js.subscribe(
                prefix + ">",
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
            raise BrokerUnavailable(f"cannot watch bucket {bucket}: {exc!r}") from exc
        if initial:
            # Keys may expire between the count and the subscription: do not wait for ever.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(caught_up.wait(), self.settings.publish_timeout)
        return sub.unsubscribe

    async def purge_stream(self, stream: str) -> None:
        """Remove every message of ``stream``."""
        try:
            await self.js.purge_stream(stream)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"purging {stream} failed: {exc!r}") from exc

    # -- consuming --------------------------------------------------------------------------


def _parse_nats_time(stamp: str) -> datetime:
    # RFC 3339 with nanoseconds; Python parses at most microseconds.
    if not stamp:
        return datetime.now(UTC)
    head, _, fraction = stamp.partition(".")
    digits = "".join(ch for ch in fraction if ch.isdigit())[:6]
    return datetime.fromisoformat(f"{head}.{digits or '0'}+00:00")
