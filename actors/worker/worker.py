"""The worker: pulls messages for its actors, runs them, stores results, acks."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from actors.actor import Actor, Request, current_request
from actors.app import App
from actors.client.results import (
    FAILURE,
    REVOKED,
    STARTED,
    SUCCESS,
    ResultRecord,
    rebuild_exception,
)
from actors.config import redact_url
from actors.errors import (
    ActorsError,
    BrokerUnavailable,
    MessageTooLarge,
    ProtocolError,
    Revoked,
    WorkerLost,
)
from actors.nats.broker import Broker
from actors.nats.consumer import Delivery, PullConsumer
from actors.retry import Retry, autoretry, next_message, retry_msg_id, retry_record
from actors.wire.message import TaskMessage, clip_text, decode
from actors.worker import continuations as routing
from actors.worker.dead_letter_writer import dead_letter, message_id, sweep_unrouted
from actors.worker.pools import Executor
from actors.worker.rate_limits import RateLimiter
from actors.worker.revocations import Revocations
from actors.worker.thread_pool import ThreadRunner

log = structlog.get_logger(__name__)


class Worker:
    """Serves the actors of an app in this process, on the running event loop.

    ``actor_names`` limits which actors are served (default: all registered). ``concurrency``
    bounds tasks running at once; each actor may also hold up to that many fetched messages.
    """

    def __init__(
        self,
        app: App,
        actor_names: Sequence[str] | None = None,
        concurrency: int | None = None,
        hostname: str | None = None,
    ) -> None:
        self.app = app
        self.settings = app.conf
        names = list(actor_names) if actor_names else sorted(app.registry)
        self.actors = [app.get_actor(name) for name in names]
        if not self.actors:
            raise ActorsError(f"app {app.name!r} has no actors to serve")
        self.concurrency = concurrency or self.settings.concurrency
        self.hostname = hostname or f"{os.getpid()}@{socket.gethostname()}"
        self.stopping = False
        self._broker: Broker | None = None
        self._consumers: dict[str, PullConsumer] = {}
        self._slots = asyncio.Semaphore(self.concurrency)
        self._in_hand: dict[int, tuple[Delivery, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: Executor | None = None
        self._revocations: Revocations | None = None
        self._rates: RateLimiter | None = None
        self._background: list[asyncio.Task[None]] = []
        self._sweep_cursors: dict[str, int] = {}
        self._lost = asyncio.Event()
        self.lost_reason: str | None = None
        """Why the connection to NATS was lost for good, once it was (see max_disconnected)."""
        self.processed = 0
        self._last_seq = 0  # highest stream sequence run here
        self._replay_mark = 0  # after a reconnect: _last_seq at that moment
        self._running: dict[int, asyncio.Event] = {}  # stream sequence -> set when it ends

    @property
    def broker(self) -> Broker:
        """The worker's connection (after :meth:`start`)."""
        if self._broker is None:
            raise ActorsError("worker not started")
        return self._broker

    async def start(self) -> None:
        """Connect, create the actors' consumers and begin pulling."""
        threads = ThreadRunner(asyncio.get_running_loop(), self.concurrency)
        self._executor = Executor(self.settings, threads)
        self._broker = await Broker.connect(self.settings, name=f"actors-worker:{self.hostname}")
        self._broker.on_reconnected(self._mark_replay)
        await self._broker.ensure_topology()
        self.app.client.lend(asyncio.get_running_loop(), self._broker)
        self._revocations = Revocations(
            self._broker, self._executor.terminate, self.settings.result_ttl
        )
        await self._revocations.start()
        self._rates = RateLimiter(self._broker)
        for actor in self.actors:
            await self._broker.ensure_consumer(actor.name)
            consumer = PullConsumer(
                self._broker, actor.name, self._dispatcher(actor), self.concurrency
            )
            self._consumers[actor.name] = consumer
        for consumer in self._consumers.values():
            await consumer.start()
        self._background = [
            asyncio.create_task(self._heartbeat(), name="heartbeat"),
            asyncio.create_task(self._sweep(), name="sweep-unrouted"),
            asyncio.create_task(self._watch_connection(), name="watch-connection"),
        ]
        log.info(
            "worker.started",
            nats=redact_url(",".join(self.settings.nats_servers)),
            actors=[a.name for a in self.actors],
            concurrency=self.concurrency,
            hostname=self.hostname,
        )

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
        for consumer in self._consumers.values():
            await consumer.stop()
        if self._tasks:
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.warning("worker.abandoned", tasks=len(unfinished))
                await asyncio.wait(unfinished, timeout=1)
        for task in self._background:
            task.cancel()
        if self._revocations is not None:
            await self._revocations.stop()
        if self._executor is not None:
            self._executor.threads.shutdown()
        if self._broker is not None:
            await self._broker.close()
        log.info("worker.stopped", processed=self.processed)

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
        """Return once ``stop`` is set or the connection is lost for good (then ``stop`` is set)."""
        waits = {
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._lost.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if self.lost_reason:
            stop.set()

    # -- per message ------------------------------------------------------------------------

    def _dispatcher(self, actor: Actor[Any, Any]) -> Callable[[Delivery], None]:
        def on_delivery(delivery: Delivery) -> None:
            task = asyncio.create_task(self._handle(actor, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return on_delivery

    async def _handle(self, actor: Actor[Any, Any], d: Delivery) -> None:
        self._in_hand[d.stream_seq] = (d, time.monotonic())
        try:
            if actor.options.rate_limit and self._rates is not None:
                await self._rates.acquire(actor.name, actor.options.rate_limit)
            async with self._slots:
                if self.stopping:
                    await d.nak()  # not started: hand it to another worker now
                    return
                await self._process(actor, d)
        except asyncio.CancelledError:
            raise
        except BrokerUnavailable as exc:  # transient: the message is delivered again
            log.warning("task.not_acked", task=actor.name, seq=d.stream_seq, error=str(exc))
        except Exception as exc:
            await self._internal_error(actor, d, exc)
        finally:
            self._in_hand.pop(d.stream_seq, None)
            self._consumers[actor.name].done()

    async def _process(self, actor: Actor[Any, Any], d: Delivery) -> None:
        content_type = d.headers.get("Content-Type")
        # Checked before anything else, so even a message that crashes us while being read
        # ends in the dead-letter stream instead of looping.
        max_deliveries = actor.options.max_deliveries or self.settings.max_deliveries
        if d.delivered > max_deliveries:
            reason = (
                f"delivered {d.delivered} times without finishing (max_deliveries="
                f"{max_deliveries}); the task may crash its worker"
            )
            task_id = message_id(d.data, content_type)
            await self._reject(d, actor.name, reason, task_id, WorkerLost)
            return
        if len(d.data) > self.settings.max_message_bytes:
            reason = f"message is {len(d.data)} bytes, over max_message_bytes"
            await self._reject(d, actor.name, reason, message_id(d.data, content_type))
            return
        try:
            message = TaskMessage.from_wire(decode(d.data, content_type))
        except ProtocolError as exc:
            reason = f"malformed message: {exc}"
            await self._reject(d, actor.name, reason, message_id(d.data, content_type))
            return
        if message.task != actor.name:
            reason = f"message names task {message.task!r} but came on {d.subject}"
            await self._reject(d, actor.name, reason, message.id)
            return
        try:
            routing.check_arguments(actor, message)
        except TypeError as exc:
            reason = f"arguments do not fit {actor.name}{actor.call_signature}: {exc}"
            await routing.failed(self.app.client, message, ProtocolError(reason))
            await self._reject(d, actor.name, reason, message.id)
            return
        await self._run(actor, message, d)

    async def _run(self, actor: Actor[Any, Any], message: TaskMessage, d: Delivery) -> None:
        store = not (
            actor.ignore_result if message.ignore_result is None else message.ignore_result
        )
        structlog.contextvars.bind_contextvars(
            task=actor.name, task_id=message.id, retries=message.retries
        )
        if await self._done_before(message, d):
            return
        assert self._revocations is not None
        skip = self._revocations.skip_reason(message)
        if skip is not None:
            log.info("task.revoked", reason=skip)
            await self._store_revoked(message, skip, store)
            await d.ack()
            return
        if not actor.options.acks_late:
            # At most once: the server confirmed the ack before the task starts, so a crash
            # from here on loses the task rather than running it twice.
            await d.ack_confirmed(self.settings.publish_timeout)
            self._in_hand.pop(d.stream_seq, None)
        request = Request.from_message(
            message,
            {"subject": d.subject, "stream_seq": d.stream_seq, "delivered": d.delivered},
        )
        current_request.set(request)
        if store and actor.track_started:
            await ResultRecord(id=message.id, task=actor.name, status=STARTED).store(self.broker)
        began = time.perf_counter()
        try:
            value = await self._call(actor, message)
        except Retry as requested:
            await self._retry(message, requested, store)
        except Exception as exc:
            runtime_ms = round((time.perf_counter() - began) * 1000, 3)
            again = autoretry(actor, message.retries, exc)
            if again is not None:
                await self._retry(message, again, store)
            elif isinstance(exc, Revoked):
                log.warning("task.revoked", reason=str(exc), runtime_ms=runtime_ms)
            elif isinstance(exc, actor.options.throws):  # expected: no traceback
                log.info("task.failed", runtime_ms=runtime_ms, error=repr(exc), expected=True)
            else:
                log.error("task.failed", runtime_ms=runtime_ms, error=repr(exc), exc_info=exc)
            if again is None:
                await self._failed(actor, message, exc, store)
        else:
            runtime_ms = round((time.perf_counter() - began) * 1000, 3)
            log.info("task.succeeded", runtime_ms=runtime_ms)
            await self._succeeded(actor, message, value, store)
        if actor.options.acks_late:
            await d.ack()
        self.processed += 1

    def _mark_replay(self) -> None:
        self._replay_mark = self._last_seq

    async def _done_before(self, message: TaskMessage, d: Delivery) -> bool:
        """True when this delivery repeats a run that already finished (see _already_done).

        Checked for redeliveries, and for any message older than a reconnect: a server that
        was killed may have lost acks and delivery counts and hands finished or running
        messages out again as first deliveries (64 of 3,000 after a SIGKILL, measured). A
        copy of one still running here waits for that run to end first.
        """
        running = self._running.get(d.stream_seq)
        self._claim(d.stream_seq)
        self._last_seq = max(self._last_seq, d.stream_seq)
        if running is not None:
            await running.wait()
        elif d.delivered == 1 and d.stream_seq > self._replay_mark:
            return False
        return await self._already_done(message, d)

    def _claim(self, seq: int) -> None:
        """Note that message ``seq`` runs here until the current asyncio task ends."""
        ended = asyncio.Event()
        self._running[seq] = ended

        def release(_: object) -> None:
            if self._running.get(seq) is ended:
                del self._running[seq]
            ended.set()

        task = asyncio.current_task()
        assert task is not None
        task.add_done_callback(release)

    async def _already_done(self, message: TaskMessage, d: Delivery) -> bool:
        """Finish a redelivered message whose run already stored its final record (the worker
        or the server died before the ack): redo what follows the task from that record, ack,
        and do not run the task again. Links, chain steps and chord joins are idempotent."""
        connection = await self.app.client.connection()
        try:
            record = await connection.results.fetch(message.id)
        except ProtocolError:
            return False  # a malformed record proves nothing: run the task
        if record is None or not record.ready or record.retries != message.retries:
            return False
        log.info("task.already_done", status=record.status, delivered=d.delivered)
        if record.status == SUCCESS:
            await routing.succeeded(self.app.client, message, record.result)
        else:
            error = record.error or {"type": "actors.errors.TaskFailed", "message": record.status}
            await routing.failed(
                self.app.client, message, rebuild_exception(error, record.traceback)
            )
        await d.ack()
        self.processed += 1
        return True

    async def _succeeded(
        self, actor: Actor[Any, Any], message: TaskMessage, value: Any, store: bool
    ) -> None:
        """Store the result of a task that returned (callbacks and workflows hook in here)."""
        if store:
            record = ResultRecord.success(message.id, actor.name, value, retries=message.retries)
            await self._store(record)
        await routing.succeeded(self.app.client, message, value)

    async def _failed(
        self, actor: Actor[Any, Any], message: TaskMessage, exc: Exception, store: bool
    ) -> None:
        """Store the failure of a task that raised (errbacks hook in here)."""
        if store:
            status = REVOKED if isinstance(exc, Revoked) else FAILURE
            record = ResultRecord.failure(
                message.id, actor.name, exc, status=status, retries=message.retries
            )
            await self._store(record)
        await routing.failed(self.app.client, message, exc)

    async def _call(self, actor: Actor[Any, Any], message: TaskMessage) -> Any:
        assert self._executor is not None
        if message.map is not None:
            return await routing.run_map(actor, message, self._invoke)
        return await self._executor.call(actor, message, message.args, message.kwargs)

    async def _invoke(self, actor: Actor[Any, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        """One call of a map/starmap item, under the same limits as a task."""
        assert self._executor is not None
        message = current_request.get()
        assert message is not None and message.message is not None
        return await self._executor.call(actor, message.message, args, kwargs)

    async def _retry(self, message: TaskMessage, signal: Retry, store: bool) -> None:
        """Store RETRY, then publish the next attempt (same id, retries + 1; see retry.py)."""
        log.info("task.retry", eta=signal.when, error=repr(signal.exc) if signal.exc else None)
        if store:
            await self._store(retry_record(message, signal))
        following = next_message(message, signal)
        connection = await self.app.client.connection()
        await connection.send(following, retry_msg_id(following))

    async def _store_revoked(self, message: TaskMessage, reason: str, store: bool) -> None:
        if store:
            record = ResultRecord.failure(message.id, message.task, Revoked(reason), status=REVOKED)
            await self._store(record)

    async def _internal_error(self, actor: Actor[Any, Any], d: Delivery, exc: Exception) -> None:
        """Dead-letter a message whose handling failed in the worker's own code.

        Such a failure repeats on every delivery: running the message again would only repeat
        it up to ``max_deliveries`` times. A result the task already stored is kept.
        """
        error = clip_text(repr(exc), one_line=True)
        log.error(
            "worker.internal_error", task=actor.name, seq=d.stream_seq, error=error, exc_info=exc
        )
        if d.acked:  # acked before it ran (acks_late=False): it will not come back
            return
        try:
            task_id = message_id(d.data, d.headers.get("Content-Type"))
            if task_id is not None and await self._finished(task_id):
                task_id = None
            await self._reject(d, actor.name, f"internal error: {error}", task_id, ActorsError)
        except Exception as again:  # the message is delivered again; max_deliveries ends it
            log.warning("task.not_acked", task=actor.name, seq=d.stream_seq, error=repr(again))

    async def _finished(self, task_id: str) -> bool:
        """True if a final result (SUCCESS, FAILURE, REVOKED) is stored under ``task_id``."""
        connection = await self.app.client.connection()
        try:
            record = await connection.results.fetch(task_id)
        except ProtocolError:  # a forged or broken record is no final result
            return False
        return record is not None and record.ready

    async def _store(self, record: ResultRecord) -> None:
        try:
            await record.store(self.broker)
        except MessageTooLarge as exc:  # raised before anything is sent
            too_large = MessageTooLarge(
                f"result too large: the record of {record.task} is {exc.size} bytes, over the "
                f"server's max_payload of {exc.limit} bytes; return a reference (a key, a URL) "
                "instead of the data",
                exc.size,
                exc.limit,
            )
            log.error("task.result_too_large", size=exc.size, limit=exc.limit)
            await ResultRecord.failure(record.id, record.task, too_large).store(self.broker)
        except BrokerUnavailable as exc:
            # A reply lost with a killed server says nothing about whether the record was
            # stored, and a put is idempotent: try once more rather than run the task again.
            log.warning("task.store_retried", error=str(exc))
            await record.store(self.broker)
        except (TypeError, ValueError, OverflowError) as exc:  # raised before anything is sent
            error = TypeError(f"result of {record.task} cannot be stored as msgpack: {exc}")
            log.error("task.result_unencodable", error=str(error))
            await ResultRecord.failure(record.id, record.task, error).store(self.broker)

    async def _reject(
        self,
        d: Delivery,
        task: str,
        reason: str,
        task_id: str | None,
        error: type[ActorsError] = ProtocolError,
    ) -> None:
        """Dead-letter a message that cannot run, fail its result, and ack it."""
        reason = clip_text(reason, one_line=True)
        await dead_letter(
            self.broker,
            subject=d.subject,
            data=d.data,
            headers=d.headers,
            seq=d.stream_seq,
            reason=reason,
            task=task,
        )
        if task_id is not None:
            await ResultRecord.failure(task_id, task, error(reason)).store(self.broker)
        await d.ack()

    # -- background -------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Keep messages in hand from being redelivered while their tasks run."""
        interval = max(0.1, self.settings.ack_wait / 3)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for delivery, since in list(self._in_hand.values()):
                if now - since >= interval:
                    try:
                        await delivery.in_progress()
                    except Exception as exc:
                        log.warning("task.heartbeat_failed", error=repr(exc))

    async def _watch_connection(self) -> None:
        """Notice a connection lost for good (closed, or down past ``max_disconnected``)."""
        patience = self.settings.max_disconnected
        interval = min(1.0, max(0.05, patience / 4))
        while (reason := self.broker.connection_lost(patience)) is None:
            await asyncio.sleep(interval)
        self.lost_reason = reason
        log.error("worker.connection_lost", reason=reason, hostname=self.hostname)
        self._lost.set()

    async def _sweep(self) -> None:
        """Periodically fail messages for tasks no worker serves (see sweep_unrouted)."""
        interval = min(30.0, max(0.5, self.settings.unrouted_grace / 2))
        while True:
            await asyncio.sleep(interval)
            try:
                await sweep_unrouted(self.broker, self.settings.unrouted_grace, self._sweep_cursors)
            except Exception as exc:  # keep sweeping: a bad message must not end the loop
                log.warning("sweep.failed", error=repr(exc))
