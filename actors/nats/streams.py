"""Stream, bucket and consumer set-up: the configurations and creating or updating them."""

from __future__ import annotations

import functools
import time
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.js import api

from actors.config import Settings
from actors.errors import BrokerUnavailable, ConfigurationError
from actors.nats.codes import (
    CONSUMER_NOT_UNIQUE,
    MAX_CONSUMERS,
    NO_SUITABLE_PEERS,
    STREAM_NAME_IN_USE,
)
from actors.nats.connection import NATS_ERRORS
from actors.nats.retrying import RETRYABLE, Backoff, NotReady, retry_until
from actors.wire import routing, topology

log = structlog.get_logger(__name__)

_SETUP_PATIENCE = 30.0  # seconds to wait for JetStream to answer stream set-up
# Set-up waits out a meta leader election: nats-py's own timeout per attempt, then a second.
_SETUP_BACKOFF = Backoff(first_pause=1.0, max_pause=1.0)


def stream_configs(settings: Settings) -> list[api.StreamConfig]:
    """The streams and KV buckets ``Streams.ensure_topology`` creates, in that order."""
    replicas = settings.stream_replicas
    ttl = settings.result_ttl
    return [
        # Immediate tasks: no schedules and so no rollup headers, so that no publisher
        # can purge the queue with `Nats-Rollup: all`. First, so that an old ACTORS
        # (holding actors.sched.> too) is reported before ACTORS_SCHEDULED collides.
        api.StreamConfig(
            name=topology.TASK_STREAM,
            subjects=[topology.TASK_PREFIX + ">", routing.QUEUE_PREFIX + ">"],
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
                        ),
                        api.SubjectTransform(
                            src=routing.DUE_QUEUE_PREFIX + ">", dest=routing.QUEUE_PREFIX + ">"
                        ),
                    ],
                )
            ],
        ),
        # Delayed tasks: schedules on actors.sched.<id> fire into actors.due.<task> here
        # (a schedule's target must be in its own stream). Work-queue retention: the
        # source consumer of ACTORS removes each fired message as it copies it.
        api.StreamConfig(
            name=topology.SCHEDULED_STREAM,
            subjects=[
                topology.SCHEDULE_PREFIX + ">",
                topology.DUE_PREFIX + ">",
                routing.DUE_QUEUE_PREFIX + ">",
            ],
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
        bucket_config(topology.RESULTS_BUCKET, replicas, ttl),
        bucket_config(topology.REVOKED_BUCKET, replicas, ttl),
        bucket_config(topology.CHORDS_BUCKET, replicas, ttl),
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
        # Events: bounded by age and bytes, oldest dropped first, so that a monitor started
        # later replays recent history and the stream never fills the disk.
        api.StreamConfig(
            name=topology.EVENTS_STREAM,
            subjects=[topology.EVENT_PREFIX + ">"],
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            storage=api.StorageType.FILE,
            num_replicas=replicas,
            max_age=settings.events_max_age,
            max_bytes=settings.events_max_bytes,
            allow_direct=True,
        ),
        # A worker's record lives three heartbeats unless refreshed (docs/protocol.md).
        bucket_config(topology.WORKERS_BUCKET, replicas, 3 * settings.worker_heartbeat),
    ]


def bucket_config(bucket: str, replicas: int, ttl: float | None) -> api.StreamConfig:
    """The stream of KV bucket ``bucket``, as nats-py's ``create_key_value`` makes it.

    ``ttl`` (seconds) is how long keys live; None keeps them until deleted.
    """
    return api.StreamConfig(
        name=f"KV_{bucket}",
        subjects=[f"$KV.{bucket}.>"],
        allow_direct=True,
        allow_rollup_hdrs=True,
        allow_msg_ttl=True,
        deny_delete=True,
        discard=api.DiscardPolicy.NEW,
        duplicate_window=120.0 if ttl is None else min(120.0, ttl),
        max_age=ttl,
        max_msgs_per_subject=1,
        num_replicas=replicas,
        storage=api.StorageType.FILE,
    )


class Streams:
    """Creates and updates the streams, KV buckets and consumers actors uses."""

    def __init__(self, js: Any, settings: Settings) -> None:
        self._js = js
        self._settings = settings
        self._topology_ready = False
        self._consumers: set[str] = set()
        self._ack_waits: dict[str, float | None] = {}

    async def ensure_topology(self, update: bool = True) -> None:
        """Create the streams and KV buckets actors uses, where missing.

        With ``update`` (workers, the CLI) existing ones are also set to this version's
        configuration. Without it (clients) they are only looked up with STREAM.INFO, so a
        connection allowed no stream changes works (docs/deploy.md, "Permissions").
        """
        if self._topology_ready:
            return
        for config in stream_configs(self._settings):
            await self._ensure_stream(config, update)
        self._topology_ready = True

    async def ensure_stream(self, name: str) -> None:
        """Create or update one of the streams ``ensure_topology`` manages."""
        for config in stream_configs(self._settings):
            if config.name == name:
                await self._ensure_stream(config, update=True)

    async def ensure_bucket(self, bucket: str) -> None:
        """Create KV bucket ``bucket`` (keys kept until deleted) unless it exists.

        An existing bucket is left as it is, whatever its configuration.
        """
        config = bucket_config(bucket, self._settings.stream_replicas, None)

        async def create(_wait: float) -> None:
            try:
                await self._js.add_stream(config)
            except nats.js.errors.BadRequestError as exc:  # exists with another configuration
                _raise_if_not_placed(str(config.name), exc)
                await self._js.stream_info(config.name)

        try:
            await retry_until(
                create,
                time.monotonic() + _SETUP_PATIENCE,
                backoff=_SETUP_BACKOFF,
                on_retry=functools.partial(_retrying, str(config.name)),
            )
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot open bucket {bucket}: {exc!r}") from exc

    async def _ensure_stream(self, config: api.StreamConfig, update: bool) -> None:
        # A cluster that has just started (or lost its meta leader) answers JetStream API
        # requests late or not at all for a while: keep trying for a bounded time.
        try:
            await retry_until(
                lambda _wait: self._create_or_update_stream(config, update),
                time.monotonic() + _SETUP_PATIENCE,
                backoff=_SETUP_BACKOFF,
                on_retry=functools.partial(_retrying, str(config.name)),
            )
        except RETRYABLE as exc:
            raise BrokerUnavailable(
                f"cannot create stream {config.name}: JetStream did not answer for "
                f"{_SETUP_PATIENCE:g}s ({exc!r}); is JetStream enabled, does the "
                "cluster have a meta leader, and may this user create streams?"
            ) from exc
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot create stream {config.name}: {exc!r}") from exc

    async def _create_or_update_stream(self, config: api.StreamConfig, update: bool) -> None:
        name = str(config.name)
        try:
            current = (await self._js.stream_info(name)).config
        except nats.js.errors.NotFoundError:
            try:
                await self._js.add_stream(config)
                return
            except nats.js.errors.BadRequestError as exc:
                _raise_if_not_placed(name, exc)
                if exc.err_code != STREAM_NAME_IN_USE:  # made meanwhile with another config
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
            current = (await self._js.stream_info(name)).config
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
        await self._js.update_stream(config)

    async def ensure_consumer(self, task_name: str, max_ack_pending: int = 20_000) -> str:
        """Create or update the durable consumer of an actor; return its name."""
        durable = topology.consumer_name(task_name)
        if durable in self._consumers:
            return durable
        config = self._consumer_config(durable, max_ack_pending)
        config.filter_subject = topology.task_subject(task_name)
        try:
            # Creating an existing durable with a new config updates it (ack_wait etc.).
            await self._js.add_consumer(topology.TASK_STREAM, config)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot create consumer {durable}: {exc!r}") from exc
        self._consumers.add(durable)
        return durable

    def _consumer_config(self, durable: str, max_ack_pending: int) -> api.ConsumerConfig:
        """A task consumer's settings, without its subject filter."""
        return api.ConsumerConfig(
            durable_name=durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=self._settings.ack_wait,
            max_ack_pending=max_ack_pending,
            max_waiting=1024,
        )

    async def ensure_group_consumer(
        self, durable: str, subjects: list[str], max_ack_pending: int = 20_000
    ) -> str:
        """Create or update a durable consumer filtering ``subjects`` (one queue and band of
        a worker, docs/routing.md); return its name.

        Raises ConfigurationError when the server refuses it for a reason the operator must
        fix: the consumer cap of the stream, or a subject another consumer holds.
        """
        if durable in self._consumers:
            return durable
        config = self._consumer_config(durable, max_ack_pending)
        config.filter_subjects = subjects
        try:
            await self._js.add_consumer(topology.TASK_STREAM, config)
        except nats.js.errors.BadRequestError as exc:
            raise _consumer_refused(durable, exc) from exc
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot create consumer {durable}: {exc!r}") from exc
        self._consumers.add(durable)
        return durable

    async def consumer_filters(self) -> dict[str, list[str]]:
        """Every consumer on the task stream with its filter subjects (all pages)."""
        filters: dict[str, list[str]] = {}
        offset = 0
        try:
            while True:
                # Count the pages' items, not the names seen: a consumer created meanwhile
                # shifts the list, and a repeated name must not make the same page come back.
                page = await self._js.consumers_info(topology.TASK_STREAM, offset=offset)
                offset += len(page)
                for info in page:
                    config = info.config
                    subjects = list(config.filter_subjects or ())
                    if config.filter_subject:
                        subjects.append(config.filter_subject)
                    filters[str(info.name)] = subjects
                    self._ack_waits[str(info.name)] = config.ack_wait
                if not page:
                    return filters
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot list consumers: {exc!r}") from exc

    def up_to_date(self, durable: str) -> bool:
        """Whether a consumer listed by :meth:`consumer_filters` has this ``ack_wait``."""
        return self._ack_waits.get(durable) == self._settings.ack_wait

    async def served_subjects(self) -> set[str]:
        """The filter subjects of the consumers on the task stream, as configured."""
        return {s for subjects in (await self.consumer_filters()).values() for s in subjects}

    async def task_subject_counts(self) -> dict[str, int]:
        """Messages waiting per task subject (``actors.task.>`` and ``actors.queue.>``)."""
        try:
            info = await self._js.stream_info(topology.TASK_STREAM, subjects_filter=">")
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot read stream info: {exc!r}") from exc
        return dict(info.state.subjects or {})

    async def purge(self, stream: str) -> None:
        """Remove every message of ``stream``."""
        try:
            await self._js.purge_stream(stream)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"purging {stream} failed: {exc!r}") from exc


class SubjectTaken(ConfigurationError):
    """Another consumer on the task stream already filters one of the subjects."""


def _consumer_refused(durable: str, exc: nats.js.errors.BadRequestError) -> Exception:
    if exc.err_code == MAX_CONSUMERS:
        return ConfigurationError(
            f"cannot create consumer {durable}: the stream {topology.TASK_STREAM} has reached "
            "nats-server's consumer cap (max_consumers, 1,000 per stream by default). Workers "
            "need one consumer per queue, band and set of actors served, so this is usually "
            "left-over per-actor consumers of an older actors (delete them, docs/routing.md "
            "'Upgrading') or many workers serving different --actors on one queue; or raise "
            "the cap (jetstream { limits { max_consumers: N } } or the account's limit)"
        )
    if exc.err_code == CONSUMER_NOT_UNIQUE:
        return SubjectTaken(
            f"cannot create consumer {durable}: another consumer on {topology.TASK_STREAM} "
            "already filters one of its subjects (a work-queue stream allows one consumer per "
            "subject); list them with `nats consumer ls ACTORS` and remove the stale one"
        )
    return BrokerUnavailable(f"cannot create consumer {durable}: {exc!r}")


def _raise_if_not_placed(stream: str, exc: nats.js.errors.BadRequestError) -> None:
    """NotReady (retried during set-up) when the server could not place the stream's replicas
    yet: a node of a cluster that just started or restarted is not current."""
    if exc.err_code == NO_SUITABLE_PEERS:
        raise NotReady(f"cannot place stream {stream} yet: {exc.description}") from exc


def _retrying(stream: str, error: BaseException) -> None:
    log.warning("streams.setup_retrying", stream=stream, error=str(error) or repr(error))
