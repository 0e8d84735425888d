"""The worker: pulls messages for its actors, runs them, stores results, acks."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from actors import builtins
from actors.actor import Actor, Request, current_request
from actors.app import App
from actors.client import children
from actors.config import redact_url
from actors.errors import ActorsError, BrokerUnavailable, ProtocolError, Revoked
from actors.nats.broker import Broker
from actors.nats.consumer import Delivery, PullConsumer
from actors.replace import IGNORED, Replace
from actors.retry import Retry
from actors.wire import routing
from actors.wire.message import TaskMessage
from actors.wire.record import FAILURE, RETRY, REVOKED, STARTED, SUCCESS, ResultRecord
from actors.wire.registry import WorkerRecord
from actors.worker import continuations
from actors.worker.events import TaskEvents
from actors.worker.housekeeping import connection_lost, keep_in_hand, sweep_periodically
from actors.worker.message_checks import Rejection, check_message, map_calls
from actors.worker.outcomes import Outcomes
from actors.worker.pools import Executor
from actors.worker.presence import Presence
from actors.worker.queues import QueueConsumers, Target
from actors.worker.rate_limits import RateLimiter
from actors.worker.recycling import Recycler
from actors.worker.remote_control import RemoteControl
from actors.worker.retries import autoretry
from actors.worker.revocations import Revocations
from actors.worker.thread_pool import ThreadPool

log = structlog.get_logger(__name__)

_HAND_BACK = 1.0
"""Seconds before a task this worker does not serve is delivered again (to any worker of its
queue), until ``unrouted_grace`` has passed since it was sent."""


class Worker:
    """Serves the actors of an app in this process, on the running event loop.

    ``actor_names`` limits which actors are served (default: all registered). ``queues`` maps
    the queues served to their own number of slots, or None to share ``concurrency`` slots
    (default: the default queue only, as ``actors run`` without ``-Q``). Each consumer may
    hold up to its queue's slots times ``prefetch_multiplier`` in fetched messages.
    """

    def __init__(
        self,
        app: App,
        actor_names: Sequence[str] | None = None,
        concurrency: int | None = None,
        hostname: str | None = None,
        queues: Mapping[str, int | None] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings = app.conf
        names = list(actor_names) if actor_names else sorted(app.registry)
        self.actors = [app.get_actor(name) for name in names]
        if all(a.name.startswith(builtins.PREFIX) for a in self.actors):
            raise ActorsError(f"app {app.name!r} has no actors to serve")
        self.queues = QueueConsumers(
            queues or {routing.DEFAULT_QUEUE: None},
            concurrency or self.settings.concurrency,
            self.settings.prefetch_multiplier,
        )
        self.concurrency = self.queues.slots
        self.prefetch = self.concurrency * self.settings.prefetch_multiplier
        """Fetched messages the worker may hold at most (Celery's prefetch): each consumer
        holds up to its queue's slots times ``prefetch_multiplier``."""
        self.hostname = hostname or f"{os.getpid()}@{socket.gethostname()}"
        self.stopping = False
        self._broker: Broker | None = None
        self._outcomes: Outcomes | None = None
        self._in_hand: dict[int, tuple[Delivery, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: Executor | None = None
        self._revocations: Revocations | None = None
        self._rates: RateLimiter | None = None
        self._background: list[asyncio.Task[None]] = []
        self._sweep_cursors: dict[str, int] = {}
        self._lost = asyncio.Event()
        self.recycler = Recycler(settings.max_tasks_per_child, settings.max_memory_per_child)
        """Its ``reason`` says why this worker stopped to be replaced, once it did."""
        self.lost_reason: str | None = None
        """Why the connection to NATS was lost for good, once it was (see max_disconnected)."""
        self.processed = 0
        self.remote_control = RemoteControl(self)
        self.failed = 0
        self._active = 0
        # The one observer: events, and the middleware hooks (signals, task class handlers).
        self.events = TaskEvents(
            self.hostname, self.settings.events, app.client.hooks, app.registry.get
        )
        self.presence = Presence.of(
            self.hostname,
            [a.name for a in self.actors],
            self.concurrency,
            self.settings.worker_heartbeat,
            self._snapshot,
            self.events,
        )
        self.events.hooks.worker_init(self)

    @property
    def active(self) -> int:
        """Tasks running now."""
        return self._active

    @property
    def consumers(self) -> dict[str, PullConsumer]:
        """The pull loops of the served queues and bands, by consumer name."""
        return self.queues.consumers

    def _snapshot(self, record: WorkerRecord) -> None:
        record.active, record.processed, record.failed = self.active, self.processed, self.failed

    @property
    def broker(self) -> Broker:
        """The worker's connection (after :meth:`start`)."""
        if self._broker is None:
            raise ActorsError("worker not started")
        return self._broker

    @property
    def outcomes(self) -> Outcomes:
        """Where the worker stores what became of each message (after :meth:`start`)."""
        if self._outcomes is None:
            raise ActorsError("worker not started")
        return self._outcomes

    async def start(self) -> None:
        """Connect, create the actors' consumers and begin pulling."""
        settings = self.settings
        threads = ThreadPool(asyncio.get_running_loop(), self.concurrency)
        self._executor = Executor(settings, threads)
        self._broker = await Broker.connect(settings, name=f"actors-worker:{self.hostname}")
        self._outcomes = Outcomes(self.app.client, self._broker)
        self._broker.on_reconnected(self._outcomes.mark_replay)
        await self._broker.streams.ensure_topology()
        self.app.client.lend(asyncio.get_running_loop(), self._broker)
        self._revocations = Revocations(self._broker, self._executor.terminate, settings.result_ttl)
        await self._revocations.start()
        self._rates = RateLimiter(self._broker)
        self.app.client.router.rules()  # a bad task_routes fails here, not at the first send
        await self.queues.start(self._broker, self.actors, self._dispatch)
        await self.remote_control.start()
        self._background = [
            asyncio.create_task(keep_in_hand(self._in_hand, settings.ack_wait), name="heartbeat"),
            asyncio.create_task(
                sweep_periodically(self._broker, settings.unrouted_grace, self._sweep_cursors),
                name="sweep-unrouted",
            ),
            asyncio.create_task(self._watch_connection(), name="watch-connection"),
            asyncio.create_task(self.presence.run(self._broker), name="presence"),
        ]
        if self.events.enabled:
            interval = settings.events_flush_interval
            self._background.append(asyncio.create_task(self.events.run(self._broker, interval)))
        log.info(
            "worker.started",
            nats=redact_url(",".join(settings.nats_servers)),
            actors=[a.name for a in self.actors],
            queues={q: gate.slots for q, gate in self.queues.gates.items()},
            consumers=len(self.queues.consumers),
            concurrency=self.concurrency,
            hostname=self.hostname,
        )
        self.events.hooks.worker_ready(self)

    async def stop(self, grace: float | None = None) -> None:
        """Stop fetching, let in-flight tasks finish for ``grace`` seconds, then close.

        Unfinished messages are not acked, so NATS redelivers them to another worker. The
        default grace is ``shutdown_grace``, or none once the connection is lost for good:
        the tasks could neither store their results nor ack.
        """
        if self.stopping:
            return
        self.stopping = True
        if grace is None:
            grace = 0.0 if self.lost_reason else self.settings.shutdown_grace
        log.info("worker.stopping", in_flight=len(self._tasks), grace_s=grace)
        await self.queues.stop()
        if self._tasks:
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.warning("worker.abandoned", tasks=len(unfinished))
                await asyncio.wait(unfinished, timeout=1)
        for task in self._background:
            task.cancel()
        await self.remote_control.stop()
        if self._broker is not None and self._broker.connected:
            await self.presence.leave(self._broker)
        if self._revocations is not None:
            await self._revocations.stop()
        if self._executor is not None:
            self._executor.threads.shutdown()
        if self._broker is not None:
            await self._broker.close()
        log.info("worker.stopped", processed=self.processed)
        self.events.hooks.worker_shutdown(self)

    async def run(self, stop: asyncio.Event, grace: float | None = None) -> None:
        """Start, serve until ``stop`` is set, then stop gracefully.

        Raises BrokerUnavailable when the connection to NATS is lost for good (closed, or down
        longer than ``max_disconnected``): a worker that cannot reach NATS must not sit idle.
        """
        await self.start()
        try:
            await self.wait_stopped(stop)
        finally:
            await self.stop(grace)
        if self.lost_reason:
            raise BrokerUnavailable(f"connection to NATS lost: {self.lost_reason}")

    async def wait_stopped(self, stop: asyncio.Event) -> None:
        """Return once ``stop`` is set, the connection is lost for good, or a recycling limit
        is passed (then ``stop`` is set)."""
        waits = {
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._lost.wait()),
            asyncio.ensure_future(self.recycler.due.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if self.lost_reason or self.recycler.reason:
            stop.set()

    # -- per message ------------------------------------------------------------------------

    def _dispatch(self, target: Target | None, delivery: Delivery, consumer: PullConsumer) -> None:
        task = asyncio.create_task(self._handle(target, delivery, consumer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, target: Target | None, d: Delivery, consumer: PullConsumer) -> None:
        self._in_hand[d.stream_seq] = (d, time.monotonic())
        try:
            if target is None:  # a task of a named queue that this worker does not serve
                await self.outcomes.unserved(d, self.settings.unrouted_grace, _HAND_BACK)
                return
            actor = target.actor
            if actor.options.rate_limit and self._rates is not None:
                await self._rates.acquire(actor.name, actor.options.rate_limit)
            await target.gate.acquire(target.rank)
            try:
                if self.stopping:
                    await d.nak()  # not started: hand it to another worker now
                    return
                await self._process(target, d)
            finally:
                target.gate.release()
        except asyncio.CancelledError:
            raise
        except BrokerUnavailable as exc:  # transient: the message is delivered again
            log.warning("task.not_acked", subject=d.subject, seq=d.stream_seq, error=str(exc))
        except Exception as exc:
            if target is not None:
                await self.outcomes.internal_error(target.actor, d, exc)
        finally:
            self._in_hand.pop(d.stream_seq, None)
            if not (self.stopping or self.recycler.reason):  # stopping: pull nothing more
                consumer.done()

    async def _process(self, target: Target, d: Delivery) -> None:
        settings, actor = self.settings, target.actor
        checked = check_message(actor, d, settings.max_deliveries, settings.max_message_bytes)
        if isinstance(checked, Rejection):
            if checked.message is not None:  # its errbacks, chain and chord fail as well
                message, reason = checked.message, checked.reason
                await continuations.failed(self.app.client, message, ProtocolError(reason))
            self.events.rejected(actor.name, checked.task_id, checked.reason, checked.unknown)
            await self.outcomes.reject(
                d, actor.name, checked.reason, checked.task_id, checked.error
            )
            return
        # A retry goes back to the queue and band the message came from.
        checked.queue = None if target.queue == routing.DEFAULT_QUEUE else target.queue
        if routing.band_of(checked.priority) != target.band:
            checked.priority = None if target.band == routing.NORMAL else target.priority
        self.events.received(checked)
        await self._run(actor, checked, d)

    async def _run(self, actor: Actor[Any, Any], message: TaskMessage, d: Delivery) -> None:
        store = not (
            actor.ignore_result if message.ignore_result is None else message.ignore_result
        )
        structlog.contextvars.bind_contextvars(
            task=actor.name, task_id=message.id, retries=message.retries
        )
        if await self.outcomes.done_before(message, d):
            self.processed += 1
            return
        assert self._revocations is not None
        skip = self._revocations.skip_reason(message)
        if skip is not None:
            log.info("task.revoked", reason=skip)
            self.events.revoked(message, skip)
            await self.outcomes.revoked(message, skip, store)
            await d.ack()
            return
        if not actor.options.acks_late:
            # At most once: the server confirmed the ack before the task starts, so a crash
            # from here on loses the task rather than running it twice.
            await d.ack_confirmed(self.settings.publish_timeout)
            self._in_hand.pop(d.stream_seq, None)
        info = {"subject": d.subject, "stream_seq": d.stream_seq, "delivered": d.delivered}
        info.update(queue=message.queue or routing.DEFAULT_QUEUE, priority=message.priority)
        request = Request.from_message(message, info)
        current_request.set(request)
        children.begin()  # the tasks it sends are stored as its children
        if store and actor.track_started:
            await self.outcomes.put(ResultRecord(id=message.id, task=actor.name, status=STARTED))
        began = time.perf_counter()
        self.events.started(message)
        self._active += 1
        ended: tuple[str, Any]  # state and return value or exception, for after_return
        try:
            value = await self._call(actor, message)
        except Retry as requested:
            ended = (RETRY, requested.exc or requested)
            self.events.retried(message, requested.exc, requested.when, requested)
            await self.outcomes.retry(message, requested, store, d.stream_seq)
        except Replace as replaced:
            ended = (IGNORED, replaced)
            await self.outcomes.replaced(message, replaced, store, d.stream_seq)
        except Exception as exc:
            runtime_ms = round((time.perf_counter() - began) * 1000, 3)
            again = autoretry(actor, message.retries, exc)
            self._task_failed(message, runtime_ms / 1000, exc, again)
            ended = (RETRY if again else REVOKED if isinstance(exc, Revoked) else FAILURE, exc)
            if again is not None:
                await self.outcomes.retry(message, again, store, d.stream_seq)
            elif isinstance(exc, Revoked):
                log.warning("task.revoked", reason=str(exc), runtime_ms=runtime_ms)
            elif isinstance(exc, actor.options.throws):  # expected: no traceback
                log.info("task.failed", runtime_ms=runtime_ms, error=repr(exc), expected=True)
            else:
                log.error("task.failed", runtime_ms=runtime_ms, error=repr(exc), exc_info=exc)
            if again is None:
                await self.outcomes.failed(actor, message, exc, store)
        else:
            runtime_ms = round((time.perf_counter() - began) * 1000, 3)
            log.info("task.succeeded", runtime_ms=runtime_ms)
            self.events.succeeded(message, runtime_ms / 1000, value)
            await self.outcomes.succeeded(actor, message, value, store)
            ended = (SUCCESS, value)
        finally:
            self._active -= 1
        self.events.finished(message, *ended)
        if actor.options.acks_late:
            await d.ack()
        self.processed += 1
        self.recycler.task_done(self.processed)  # past a limit, wait_stopped returns

    def _task_failed(
        self, message: TaskMessage, runtime: float, exc: Exception, again: Retry | None
    ) -> None:
        """Count and record a run that raised: retried, revoked or failed."""
        if again is not None:
            self.events.retried(message, exc, again.when)
        elif isinstance(exc, Revoked):
            self.events.revoked(message, str(exc))
        else:
            self.failed += 1
            self.events.failed(message, runtime, exc)

    async def _call(self, actor: Actor[Any, Any], message: TaskMessage) -> Any:
        assert self._executor is not None
        if message.map is not None:  # one call per item, in order; the list of results
            return [await self._invoke(actor, a, kw) for a, kw in map_calls(message)]
        return await self._executor.call(actor, message, message.args, message.kwargs)

    async def _invoke(self, actor: Actor[Any, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        """One call of a map/starmap item, under the same limits as a task."""
        assert self._executor is not None
        message = current_request.get()
        assert message is not None and message.message is not None
        return await self._executor.call(actor, message.message, args, kwargs)

    async def _watch_connection(self) -> None:
        """Notice a connection lost for good (closed, or down past ``max_disconnected``)."""
        self.lost_reason = await connection_lost(self.broker, self.settings.max_disconnected)
        log.error("worker.connection_lost", reason=self.lost_reason, hostname=self.hostname)
        self._lost.set()
