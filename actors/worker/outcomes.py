"""What became of each delivered message: the records the worker stores and the repeat check.

A task's outcome is stored as a result record (SUCCESS, FAILURE, RETRY, REVOKED) and handed to
the continuations (links, chain steps, chords, errbacks). A message that cannot run is
dead-lettered with its failure stored. A redelivered message whose run already stored its
final record is finished from that record instead of being run again.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import structlog

from actors.actor import Actor
from actors.client import children
from actors.client.client import Client
from actors.errors import ActorsError, BrokerUnavailable, MessageTooLarge, ProtocolError, Revoked
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.nats.consumer import Delivery
from actors.replace import Replace, replacement_messages
from actors.retry import Retry
from actors.signature import send_all
from actors.wire import routing, topology
from actors.wire.message import TaskMessage, clip_text
from actors.wire.record import FAILURE, REVOKED, SUCCESS, ResultRecord, rebuild_exception
from actors.worker import continuations
from actors.worker.dead_letters import dead_letter
from actors.worker.message_checks import check_unserved, message_id
from actors.worker.retries import next_message, retry_msg_id, retry_record

log = structlog.get_logger(__name__)


class Outcomes:
    """Stores the outcomes of the tasks one worker runs, on its connection ``broker``."""

    def __init__(self, client: Client, broker: Broker) -> None:
        self.client = client
        self.broker = broker
        self.results = Bucket(broker, topology.RESULTS_BUCKET)
        self._last_seq = 0  # highest stream sequence run here
        self._replay_mark = 0  # after a reconnect: _last_seq at that moment
        self._running: dict[int, asyncio.Future[Any]] = {}  # stream sequence -> its run

    # -- outcomes of a run -----------------------------------------------------------------

    async def succeeded(
        self, actor: Actor[Any, Any], message: TaskMessage, value: Any, store: bool
    ) -> None:
        """Store the result of a task that returned (callbacks and workflows hook in here).

        The next chain step and the links are sent first and while the result is being
        stored, not after: a hop of a chain waits for one PubAck, not two. A redelivery after
        a crash between the two sends them again (same ids, stored once; see done_before). A
        chord member stores first: the last one to join reads every member's result.
        """
        if not store:
            await continuations.succeeded(self.client, message, value)
            return
        record = ResultRecord.success(message.id, actor.name, value, retries=message.retries)
        try:
            following = continuations.next_messages(message, value)
        except Exception:  # a step that cannot be built fails when it is sent, below
            following = None
        record.children = [*children.sent(), *(m.id for m in following or ())]
        if message.chord or not following:
            await self.store(record)
            await continuations.succeeded(self.client, message, value, following)
            return
        sending = continuations.succeeded(self.client, message, value, following)
        await asyncio.gather(sending, self.store(record))

    async def failed(
        self, actor: Actor[Any, Any], message: TaskMessage, exc: Exception, store: bool
    ) -> None:
        """Store the failure of a task that raised (errbacks hook in here)."""
        if store:
            status = REVOKED if isinstance(exc, Revoked) else FAILURE
            record = ResultRecord.failure(
                message.id, actor.name, exc, status=status, retries=message.retries
            )
            record.children = children.sent()
            await self.store(record)
        await continuations.failed(self.client, message, exc)

    async def retry(
        self, message: TaskMessage, signal: Retry, store: bool, delivery_seq: int
    ) -> None:
        """Store RETRY, then publish the next attempt (same id, retries + 1; see retries.py)."""
        log.info("task.retry", eta=signal.when, error=repr(signal.exc) if signal.exc else None)
        if store:
            await self.store(retry_record(message, signal))
        following = next_message(message, signal)
        connection = await self.client.connection()
        await connection.send(following, retry_msg_id(following, delivery_seq))

    async def replaced(
        self, message: TaskMessage, signal: Replace, store: bool, delivery_seq: int
    ) -> None:
        """Publish the replacement of a task that called ``self.replace(sig)``; the task
        itself stores nothing (the replacement stores its result under the same id)."""
        log.info("task.replaced", by=repr(signal.sig))
        connection = await self.client.connection()
        await send_all(connection, replacement_messages(message, signal, store, delivery_seq))

    async def revoked(self, message: TaskMessage, reason: str, store: bool) -> None:
        """Store REVOKED for a message skipped because its task was revoked."""
        if store:
            record = ResultRecord.failure(message.id, message.task, Revoked(reason), status=REVOKED)
            await self.store(record)

    async def put(self, record: ResultRecord) -> None:
        """Write ``record`` to the results bucket (TypeError, MessageTooLarge before any I/O)."""
        await self.results.put(record.id, record.to_bytes())

    async def store(self, record: ResultRecord) -> None:
        """Store ``record``; a result that cannot be stored is stored as the failure saying why."""
        try:
            await self.put(record)
        except MessageTooLarge as exc:  # raised before anything is sent
            too_large = MessageTooLarge(
                f"result too large: the record of {record.task} is {exc.size} bytes, over the "
                f"server's max_payload of {exc.limit} bytes; return a reference (a key, a URL) "
                "instead of the data",
                exc.size,
                exc.limit,
            )
            log.error("task.result_too_large", size=exc.size, limit=exc.limit)
            await self.put(ResultRecord.failure(record.id, record.task, too_large))
        except BrokerUnavailable as exc:
            # A reply lost with a killed server says nothing about whether the record was
            # stored, and a put is idempotent: try once more rather than run the task again.
            log.warning("task.store_retried", error=str(exc))
            await self.put(record)
        except (TypeError, ValueError, OverflowError) as exc:  # raised before anything is sent
            error = TypeError(f"result of {record.task} cannot be stored as msgpack: {exc}")
            log.error("task.result_unencodable", error=str(error))
            await self.put(ResultRecord.failure(record.id, record.task, error))

    # -- messages that cannot run ------------------------------------------------------------

    async def unserved(self, d: Delivery, grace: float, hand_back: float) -> None:
        """A task of a named queue that this worker does not serve: nak it for another worker
        of the queue (redelivered after ``hand_back`` seconds) until it is ``grace`` seconds
        old, then dead-letter it with TaskNotRegistered (docs/routing.md)."""
        refused = check_unserved(d, time.time() - d.published, grace)
        if refused is None:
            await d.nak(delay=hand_back)
            return
        route = routing.parse_subject(d.subject)
        task = route.task if route is not None else "_unknown"
        await self.reject(d, task, refused.reason, refused.task_id, refused.error)

    async def reject(
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
            await self.put(ResultRecord.failure(task_id, task, error(reason)))
        await d.ack()

    async def internal_error(self, actor: Actor[Any, Any], d: Delivery, exc: Exception) -> None:
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
            await self.reject(d, actor.name, f"internal error: {error}", task_id, ActorsError)
        except Exception as again:  # the message is delivered again; max_deliveries ends it
            log.warning("task.not_acked", task=actor.name, seq=d.stream_seq, error=repr(again))

    async def _finished(self, task_id: str) -> bool:
        """True if a final result (SUCCESS, FAILURE, REVOKED) is stored under ``task_id``."""
        connection = await self.client.connection()
        try:
            record = await connection.results.fetch(task_id)
        except ProtocolError:  # a forged or broken record is no final result
            return False
        return record is not None and record.ready

    # -- runs that already finished ----------------------------------------------------------

    def mark_replay(self) -> None:
        """After a reconnect: messages up to the last one run here may come again as new."""
        self._replay_mark = self._last_seq

    async def done_before(self, message: TaskMessage, d: Delivery) -> bool:
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
            await asyncio.wait((running,))
        elif d.delivered == 1 and d.stream_seq > self._replay_mark:
            return False
        return await self._already_done(message, d)

    def _claim(self, seq: int) -> None:
        """Note that message ``seq`` runs here until the current asyncio task ends (the task
        itself is what a copy waits on: no Event and closure per message)."""
        task = asyncio.current_task()
        assert task is not None
        self._running[seq] = task
        task.add_done_callback(functools.partial(self._release, seq))

    def _release(self, seq: int, task: asyncio.Future[Any]) -> None:
        if self._running.get(seq) is task:
            del self._running[seq]

    async def _already_done(self, message: TaskMessage, d: Delivery) -> bool:
        """Finish a redelivered message whose run already stored its final record (the worker
        or the server died before the ack): redo what follows the task from that record, ack,
        and do not run the task again. Links, chain steps and chord joins are idempotent."""
        connection = await self.client.connection()
        try:
            # From the leader: a lagging replica's "no record" would run a finished task again.
            record = await connection.results.fetch(message.id, fresh=True)
        except ProtocolError:
            return False  # a malformed record proves nothing: run the task
        if record is None or not record.ready or record.retries != message.retries:
            return False
        log.info("task.already_done", status=record.status, delivered=d.delivered)
        if record.status == SUCCESS:
            await continuations.succeeded(self.client, message, record.result)
        else:
            error = record.error or {"type": "actors.errors.TaskFailed", "message": record.status}
            await continuations.failed(
                self.client, message, rebuild_exception(error, record.traceback)
            )
        await d.ack()
        return True
