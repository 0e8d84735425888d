"""The sync client's publish pipeline: ``delay()`` hands its message over and returns, and
the server's answers (PubAcks) are confirmed in the background.

Waiting for each PubAck in ``delay()`` (two thread hops and a round trip, about 0.5 ms) held
the sync path to ~1,650 tasks/s. Here the calling thread encodes the message, puts it in a
queue and wakes the event loop once per batch, not once per call; the loop publishes the
batch and confirms the answers as they come. At most ``publish_window`` publishes are
unconfirmed: ``delay()`` blocks while the window is full (backpressure).

A failed publish never vanishes: the task's ``get()``/``ready()`` and ``app.flush()`` raise
:class:`PublishFailed`, and at exit the pipeline is flushed and every failure not yet raised
is logged (``publish.failed``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from actors.client.events import publish_sent
from actors.errors import ActorsError, BrokerUnavailable, ConfigurationError, PublishFailed
from actors.nats.replies import PublishAck
from actors.wire.message import TaskMessage

if TYPE_CHECKING:
    from actors.client.connection import Connection
    from actors.client.result_waiter import ResultWaiter

log = structlog.get_logger(__name__)

_KEEP_FAILURES = 100_000  # failures remembered for get() and flush(); then the oldest go


@dataclass(slots=True)
class _Outgoing:
    """One message in the pipeline."""

    seq: int
    task_id: str
    subject: str
    body: bytes
    headers: dict[str, str]
    expect_result: bool
    message: TaskMessage  # for the after_publish hooks and task-sent events


class Pipeline:
    """Publishes from any thread through ``connection`` on ``loop`` (the client's own loop,
    run by another thread), with at most ``window`` publishes unconfirmed."""

    def __init__(
        self, connection: Connection, loop: asyncio.AbstractEventLoop, window: int
    ) -> None:
        if window < 1:
            raise ConfigurationError(f"publish_window must be at least 1, not {window}")
        self._connection = connection
        self._loop = loop
        self._loop_thread: int | None = None
        self._queue: deque[_Outgoing] = deque()
        self._wake_pending = False
        self._free = threading.Semaphore(window)
        self._seq = 0
        self._lock = threading.Lock()  # orders seq numbers and the queue across threads
        self._patience = connection.broker.settings.publish_timeout * 3 + 5
        self._events = connection.broker.settings.task_send_sent_event
        # Loop thread only:
        self._inflight: dict[int, _Outgoing] = {}
        self._outbox: deque[_Outgoing] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._sent_events: list[TaskMessage] = []
        self._pending_ids: dict[str, int] = {}
        self._id_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._unreported: list[tuple[int, PublishFailed]] = []
        # Written on the loop thread, read anywhere (single dict operations):
        self._failed: dict[str, PublishFailed] = {}
        loop.call_soon_threadsafe(self._note_thread)

    def _note_thread(self) -> None:
        self._loop_thread = threading.get_ident()

    # -- the calling thread -----------------------------------------------------------------

    def put(self, message: TaskMessage, expect_result: bool) -> None:
        """Hand ``message`` over for publishing; blocks while the window is full.

        Encoding errors and MessageTooLarge are raised here, before anything is queued.
        """
        if threading.get_ident() == self._loop_thread:
            raise ActorsError(
                "a blocking call (delay, apply_async, ...) was made inside the event loop "
                "it would wait on; use the async twin instead (adelay, aapply_async, ...)"
            )
        subject, body, headers = self._connection.wire(message)
        if not self._free.acquire(timeout=self._patience):
            stalled = BrokerUnavailable(
                f"no publish was confirmed for {self._patience:g}s; is NATS reachable?"
            )
            raise PublishFailed(message.id, stalled)
        with self._lock:
            self._seq += 1
            self._queue.append(
                _Outgoing(
                    self._seq,
                    message.id,
                    subject,
                    body,
                    headers,
                    expect_result,
                    message,
                )
            )
            if self._wake_pending:
                return
            self._wake_pending = True
        self._loop.call_soon_threadsafe(self._take)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the pipeline publishes on."""
        return self._loop

    @property
    def results(self) -> ResultWaiter:
        """The result waiter of the pipeline's connection."""
        return self._connection.results

    def failure(self, task_id: str) -> PublishFailed | None:
        """The error the publish of ``task_id`` ended with, if it failed."""
        return self._failed.get(task_id)

    # -- the loop thread --------------------------------------------------------------------

    def _take(self) -> list[_Outgoing]:
        """Move what the callers queued into flight, and start publishing it."""
        with self._lock:
            self._wake_pending = False
            batch = list(self._queue)
            self._queue.clear()
        if not batch:
            return batch
        results = self._connection.results
        for item in batch:
            self._inflight[item.seq] = item
            self._pending_ids[item.task_id] = self._pending_ids.get(item.task_id, 0) + 1
            if item.expect_result:
                results.sent(item.task_id)
        self._outbox.extend(batch)
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._publish())
        return batch

    async def _publish(self) -> None:
        """Publish the outbox in order; the one sender, so that a publish that waits (the
        first one subscribes to the reply inbox) is not overtaken by a later batch."""
        broker = self._connection.broker
        outbox = self._outbox
        while outbox:
            item = outbox.popleft()
            answer = functools.partial(self._finish, item)
            try:
                await broker.publish_started(item.subject, item.body, item.headers, answer)
            except Exception as exc:  # recorded for get() and flush()
                self._finish(item, None, exc)
            if self._events:
                self._sent_events.append(item.message)
            if self._sent_events and not outbox:
                sent, self._sent_events = self._sent_events, []
                await publish_sent(broker, sent)

    def _finish(self, item: _Outgoing, ack: PublishAck | None, error: BaseException | None) -> None:
        del self._inflight[item.seq]
        self._free.release()
        if error is not None:
            failed = PublishFailed(item.task_id, error)
            self._failed[item.task_id] = failed
            if len(self._failed) > _KEEP_FAILURES:
                del self._failed[next(iter(self._failed))]
            self._unreported.append((item.seq, failed))
            if len(self._unreported) > _KEEP_FAILURES:  # nobody asks: log the oldest now
                _, oldest = self._unreported.pop(0)
                log.error("publish.failed", id=oldest.task_id, error=str(oldest.cause))
        else:
            if ack is not None and ack.duplicate and item.expect_result:
                self._connection.results.resent(item.task_id)
            self._connection.hooks.after_publish(item.message, item.subject)
        left = self._pending_ids[item.task_id] - 1
        if left:
            self._pending_ids[item.task_id] = left
        else:
            del self._pending_ids[item.task_id]
            for future in self._id_waiters.pop(item.task_id, ()):
                if not future.done():
                    future.set_result(None)
        if self._flush_waiters:
            self._wake_flushers()

    def _wake_flushers(self) -> None:
        oldest = next(iter(self._inflight), None)
        still = []
        for upto, future in self._flush_waiters:
            if oldest is None or oldest > upto:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((upto, future))
        self._flush_waiters = still

    async def confirmed(self, task_id: str) -> None:
        """Wait until no publish of ``task_id`` is unconfirmed; raise PublishFailed if one
        failed. Runs on the pipeline's loop."""
        self._take()
        if task_id in self._pending_ids:
            future = self._loop.create_future()
            self._id_waiters.setdefault(task_id, []).append(future)
            await future
        failed = self._failed.get(task_id)
        if failed is not None:
            self._report(failed)
            raise failed

    async def flush(self) -> None:
        """Wait until every publish handed over so far is confirmed; raise PublishFailed for
        failures not raised yet (the first sent, noting how many more). Runs on the pipeline's
        loop."""
        await self._settle()
        failures = self.take_unreported()
        if failures:
            first = failures[0]
            if len(failures) > 1:
                first.add_note(f"and {len(failures) - 1} more publishes failed")
            raise first

    async def _settle(self) -> None:
        upto = self._seq
        self._take()
        if self._inflight and next(iter(self._inflight)) <= upto:
            future = self._loop.create_future()
            self._flush_waiters.append((upto, future))
            await future

    def _report(self, failed: PublishFailed) -> None:
        """``failed`` has been raised to the caller: flush() need not raise it again."""
        self._unreported = [(seq, one) for seq, one in self._unreported if one is not failed]

    def take_unreported(self) -> list[PublishFailed]:
        """The failures not raised to anyone yet, in the order they were sent; forgotten from
        now on."""
        failures, self._unreported = self._unreported, []
        return [failed for _, failed in sorted(failures, key=lambda pair: pair[0])]

    def flush_and_log(self, timeout: float) -> None:
        """Flush from any thread but the loop's, logging (not raising) every failure not
        raised yet: at exit and when the client closes."""
        if self._loop.is_closed() or not self._loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(self._flush_quietly(), self._loop)
        try:
            failures = future.result(timeout)
        except TimeoutError:
            log.error("publish.unconfirmed_at_exit", waited_s=timeout, left=len(self._inflight))
            return
        for failed in failures:
            log.error("publish.failed", id=failed.task_id, error=str(failed.cause))

    async def _flush_quietly(self) -> list[PublishFailed]:
        await self._settle()
        return self.take_unreported()
