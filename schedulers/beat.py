"""The beat actor: publishes the task messages of periodic entries on time, exactly once.

Every replica runs the same loop per entry (no leader): read the entry's tick state from KV,
ask :func:`schedulers.policy.next_action` what to do, and to publish a tick first claim it
with a compare-and-set on the state, then publish with a message id derived from the entry
and the tick, then confirm. docs/periodic.md explains why this publishes each tick once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from actors.actor import Actor
from actors.app import App
from actors.errors import ActorsError, BrokerUnavailable
from actors.options import ActorOptions
from actors.wire.message import format_time
from schedulers.entries import Entry, Override, check_timezone, effective_entries, parse_entry
from schedulers.policy import Fire, Policy, TickState, Uptime, Wait, abandoned, next_action
from schedulers.state import BeatBucket

log = structlog.get_logger(__name__)

_MAX_SLEEP = 30.0  # re-read the clock and the state at least this often
_STANDBY = 0.025
"""Seconds a replica that did not publish the last tick waits past the next one. The replica
that did usually claims it first; waking the others together only makes them compete for the
CPU and the claim. If that replica is gone, a standby publishes this much later."""
_PULSE = 0.25  # seconds between the pulses that tell a running replica from a paused one


def tick_task_id(name: str, tick: datetime) -> str:
    """The task id (and ``Nats-Msg-Id``) of entry ``name``'s message for ``tick``.

    ``uuid5(NAMESPACE_URL, "actors:beat/<name>/<tick in RFC 3339 UTC>")``: every replica
    derives the same id for the same tick, so JetStream stores one copy.
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"actors:beat/{name}/{format_time(tick)}"))


def code_entries(app: App) -> dict[str, Entry]:
    """The entries of ``app.conf.beat_schedule``, validated (ConfigurationError if not)."""
    check_timezone(app.conf.timezone, "app.conf.timezone: ")
    return {
        name: parse_entry(name, spec, app.conf.timezone)
        for name, spec in app.conf.beat_schedule.items()
    }


def _now() -> datetime:
    return datetime.now(UTC)


class Beat:
    """Publishes the periodic entries of ``app`` (code and stored) on the running loop.

    Run as many replicas as you like: each tick is published once. ``lease`` and ``grace``
    are the :class:`~schedulers.policy.Policy` timings and must match across replicas.
    """

    def __init__(
        self, app: App, *, lease: float = 1.5, grace: float = 2.0, replica: str | None = None
    ) -> None:
        self.app = app
        self.policy = Policy(lease=lease, grace=grace)
        self.replica = replica or f"{os.getpid()}@{socket.gethostname()}"
        self.code = code_entries(app)
        self.entries: dict[str, Entry] = {}
        """The enabled entries being driven, by name."""
        self.published = 0
        self._overrides: dict[str, Override] = {}
        self._problems: set[str] = set()
        self._drivers: dict[str, asyncio.Task[None]] = {}
        self._firing: set[asyncio.Task[None]] = set()
        self._senders: dict[str, Actor[Any, Any]] = {}
        self._bucket: BeatBucket | None = None
        self._stop_watch: Callable[[], Any] | None = None
        self._started = False
        self._uptime = Uptime(_now(), self.policy.pause)
        self._pulse: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the bucket, load stored entries, start one loop per enabled entry."""
        self._bucket = await BeatBucket.open(self.app)
        self._stop_watch = await self._bucket.watch(self._on_change)
        self._started = True
        self._uptime = Uptime(_now(), self.policy.pause)
        self._pulse = asyncio.create_task(self._keep_pulse(), name="beat:pulse")
        self._apply()
        self.app.client.hooks.beat_init(self)
        log.info(
            "beat.started",
            replica=self.replica,
            entries=sorted(self.entries),
            lease_s=self.policy.lease,
            grace_s=self.policy.grace,
        )

    async def stop(self) -> None:
        """Stop the loops (a publish under way is finished first) and the watch."""
        self._started = False
        drivers = list(self._drivers.values())
        self._drivers.clear()
        # Cancel until they end: on Python 3.11 a cancellation that comes with the reply that
        # nats-py's wait_for awaits is lost (bpo-42130), and the loop would go on publishing.
        while pending := [driver for driver in drivers if not driver.done()]:
            for driver in pending:
                driver.cancel()
            await asyncio.wait(pending, timeout=0.1)
        if self._firing:
            await asyncio.wait(set(self._firing), timeout=self.policy.lease)
        if self._stop_watch is not None:
            await self._stop_watch()
            self._stop_watch = None
        if self._pulse is not None:
            self._pulse.cancel()
            self._pulse = None
        log.info("beat.stopped", replica=self.replica, published=self.published)

    async def run(self, stop: asyncio.Event) -> None:
        """Start, publish until ``stop`` is set, then stop."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- entries -----------------------------------------------------------------------------

    def _on_change(self, key: str, record: Override | None) -> None:
        if record is None:
            self._overrides.pop(key, None)
        else:
            self._overrides[key] = record
        if self._started:
            self._apply()

    def _apply(self) -> None:
        """Start, restart or stop entry loops to match code + stored entries."""
        merged, problems = effective_entries(self.code, self._overrides, self.app.conf.timezone)
        for problem in sorted(set(problems) - self._problems):
            log.warning("beat.entry_ignored", reason=problem)
        self._problems = set(problems)
        wanted = {name: entry for name, entry in merged.items() if entry.enabled}
        for name, driver in list(self._drivers.items()):
            if self.entries.get(name) != wanted.get(name):
                driver.cancel()
                del self._drivers[name]
                log.info("beat.entry_stopped", entry=name)
        for name, entry in wanted.items():
            if name not in self._drivers:
                self._drivers[name] = asyncio.create_task(self._drive(entry), name=f"beat:{name}")
                log.info("beat.entry_started", entry=name, schedule=entry.schedule.describe())
        self.entries = wanted

    # -- one entry ---------------------------------------------------------------------------

    async def _drive(self, entry: Entry) -> None:
        while self._drivers.get(entry.name) is asyncio.current_task():  # not stopped/replaced
            try:
                await self._step(entry)
            except asyncio.CancelledError:
                raise
            except BrokerUnavailable as exc:
                self._uptime.cut_off()
                log.warning("beat.unavailable", entry=entry.name, error=str(exc))
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("beat.error", entry=entry.name)
                await asyncio.sleep(1.0)

    async def _step(self, entry: Entry) -> None:
        bucket = self._require_bucket()
        state, revision = await bucket.tick_state(entry.key)
        now = _now()
        if state is None:
            state = TickState(since=entry.created_at or now)
            created = await bucket.put_tick_state(entry.key, state, revision)
            if created is None:
                return  # another replica created it first: read it again
            revision = created
        up_since = self._uptime.reached(now)
        action = next_action(entry.schedule, state, now, self.policy, entry.enabled_at, up_since)
        if isinstance(action, Wait):
            delay = (action.until - _now()).total_seconds()
            if state.owner and state.owner != self.replica:
                delay += _STANDBY
            if delay > 0:
                await asyncio.sleep(min(delay, _MAX_SLEEP))
            return
        if abandoned(state, now, self.policy):
            log.warning(
                "beat.claim_abandoned",
                entry=entry.name,
                tick=format_time(state.tick) if state.tick else None,
                owner=state.owner,
                reason="claimed but never confirmed, too long ago to publish again safely",
            )
        firing = asyncio.ensure_future(self._fire(entry, state, revision, action))
        self._firing.add(firing)
        firing.add_done_callback(self._firing.discard)
        await asyncio.shield(firing)  # a claimed tick is published even if the loop stops

    async def _fire(self, entry: Entry, state: TickState, revision: int, action: Fire) -> None:
        bucket = self._require_bucket()
        started = time.monotonic()
        claim = state.claim(action.tick, self.replica, _now())
        claimed = await bucket.put_tick_state(entry.key, claim, revision)
        if claimed is None:
            # Another replica claimed it first, or took over our claim while this process was
            # frozen with the write in flight (its reply then timed out, and the retried
            # compare-and-set read back a claim that is not ours).
            log.info("beat.claim_lost", entry=entry.name, tick=format_time(action.tick))
            return
        connection = await self.app.client.connection()
        # Publish only while the claim is fresh: another replica may take the tick over after
        # `lease`, and both copies must reach the server inside the dedupe window.
        if time.monotonic() - started > self.policy.lease / 2 or not connection.broker.connected:
            log.warning("beat.claim_stale", entry=entry.name, tick=format_time(action.tick))
            return
        task_id = tick_task_id(entry.name, action.tick)
        try:
            await asyncio.wait_for(
                self._publish(entry, action.tick, task_id), timeout=self.policy.lease / 2
            )
        except (BrokerUnavailable, TimeoutError) as exc:
            log.warning(
                "beat.publish_failed",
                entry=entry.name,
                tick=format_time(action.tick),
                error=str(exc),
            )
            return  # the claim stays unconfirmed: retried with the same id after the lease
        late_ms = (_now() - action.tick).total_seconds() * 1000
        self.published += 1
        confirmed = await bucket.put_tick_state(entry.key, claim.confirm(), claimed)
        log.info(
            "beat.published",
            entry=entry.name,
            task=entry.task,
            id=task_id,
            tick=format_time(action.tick),
            late_ms=round(late_ms, 3),
            missed=action.missed,
            retry=action.retry,
            replica=self.replica,
        )
        if confirmed is None:
            log.warning("beat.confirm_lost", entry=entry.name, tick=format_time(action.tick))

    async def _keep_pulse(self) -> None:
        while True:
            self._uptime.pulse(_now())
            await asyncio.sleep(_PULSE)

    async def _publish(self, entry: Entry, tick: datetime, task_id: str) -> None:
        options = dict(entry.options)
        headers = {
            **(options.pop("headers", None) or {}),
            "beat_entry": entry.name,
            "beat_tick": format_time(tick),
        }
        sender = self._sender(entry.task)
        await sender.aapply_async(
            entry.args, entry.kwargs, task_id=task_id, headers=headers, **options
        )

    def _sender(self, task: str) -> Actor[Any, Any]:
        """The registered actor, or a stand-in that can only send (beat need not import it)."""
        registered = self.app.registry.get(task)
        if registered is not None:
            return registered
        sender = self._senders.get(task)
        if sender is None:
            sender = self._senders[task] = Actor(self.app, _not_here, task, ActorOptions())
        return sender

    def _require_bucket(self) -> BeatBucket:
        if self._bucket is None:
            raise ActorsError("beat not started")
        return self._bucket


def _not_here(*args: Any, **kwargs: Any) -> None:
    raise ActorsError("this task is not registered in the beat process; it runs on workers")


async def serve(app: App, stop: asyncio.Event) -> None:
    """Run a Beat for ``app`` until ``stop`` is set (``actors run --beat`` calls this)."""
    await Beat(app).run(stop)
