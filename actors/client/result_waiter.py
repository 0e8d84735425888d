"""Waiting for results: one KV watch per connection, dispatched to futures by task id."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from actors.errors import BrokerUnavailable, ProtocolError, ResultTimeout
from actors.nats.bucket import Bucket, Watch
from actors.nats.retrying import RETRYABLE, Backoff, retry_until
from actors.nats.timeout_heap import TimeoutHeap, fail_with_timeout
from actors.wire import topology
from actors.wire.record import ResultRecord

if TYPE_CHECKING:
    from actors.nats.broker import Broker

log = structlog.get_logger(__name__)

_REREAD_PATIENCE = 60.0  # seconds to keep trying the re-read after a reconnect
_REREAD_BACKOFF = Backoff(first_pause=1.0, max_pause=1.0)


class ResultWaiter:
    """Waits for results with one KV watch per connection, dispatching to futures by task id.

    The watch starts on the first wait. Results of tasks sent through this connection after
    that arrive through the watch and are kept until waited for (up to ``keep`` of them), so
    waiting on them needs no read from the server. Whenever the watch may have missed a record
    (a reconnect, a re-send the server dropped as a duplicate) the ids concerned are read again.
    """

    def __init__(self, broker: Broker, keep: int = 200_000) -> None:
        self._results = Bucket(broker, topology.RESULTS_BUCKET)
        self._keep = keep
        self._waiting: dict[str, list[asyncio.Future[ResultRecord]]] = {}
        self._expected: dict[str, ResultRecord | None] = {}
        self._watch: asyncio.Future[Watch] | None = None
        self._live = False
        self._taken: deque[str] = deque()  # ids take_arrived() handed out, to forget here
        self._deadlines: TimeoutHeap[asyncio.Future[Any]] = TimeoutHeap(fail_with_timeout)
        self._rereads: set[asyncio.Task[None]] = set()
        self._listeners: dict[str, list[Callable[[ResultRecord], None]]] = {}
        broker.on_reconnected(self._on_reconnected)

    def sent(self, task_id: str) -> None:
        """Note a task sent through this connection whose result will be stored."""
        # setdefault: a record that already arrived (a re-send of the same id) must stay.
        if not self._live:
            return
        while self._taken:
            self._expected.pop(self._taken.popleft(), None)
        self._expected.setdefault(task_id, None)
        if len(self._expected) > self._keep:
            del self._expected[next(iter(self._expected))]

    def take_arrived(self, task_id: str) -> ResultRecord | None:
        """The ready record of ``task_id`` if it already came through the watch, else None.

        Callable from any thread (the sync path's ``get()`` skips its hop to the loop): it
        only reads the dict, and leaves the removal to the loop's thread.
        """
        record = self._expected.get(task_id)
        if record is not None:
            self._taken.append(task_id)
        return record

    def resent(self, task_id: str) -> None:
        """Note that the server dropped a send of ``task_id`` as a duplicate.

        Its record may have been stored before the watch began (or already handed out), so it
        is read from the server rather than expected through the watch.
        """
        self._reread([task_id])

    def _on_reconnected(self) -> None:
        # Records stored while the connection was down reach the watch only once its consumer
        # is re-created: expect nothing through it, and read every id waited on now.
        self._expected = {k: v for k, v in self._expected.items() if v is not None}
        self._reread(list(self._waiting))

    def _reread(self, task_ids: list[str]) -> None:
        """Stop expecting ``task_ids`` through the watch; read those being waited on."""
        for task_id in task_ids:
            if task_id in self._expected and self._expected[task_id] is None:
                del self._expected[task_id]
        waited = [task_id for task_id in task_ids if task_id in self._waiting]
        if waited:
            task = asyncio.ensure_future(self._read_waited(waited))
            self._rereads.add(task)
            task.add_done_callback(self._rereads.discard)

    async def _read_waited(self, task_ids: list[str]) -> None:
        async def read_all() -> None:
            nonlocal task_ids
            outcomes = await asyncio.gather(
                *(self._read_one(task_id) for task_id in task_ids), return_exceptions=True
            )
            failed = [(i, o) for i, o in zip(task_ids, outcomes, strict=True) if o is not None]
            task_ids = [task_id for task_id, _ in failed]
            if failed:
                raise failed[0][1]

        # JetStream may answer a little after the reconnect: try those again for a while.
        deadline = time.monotonic() + _REREAD_PATIENCE
        try:
            await retry_until(
                lambda _wait: read_all(), deadline, retry_on=(Exception,), backoff=_REREAD_BACKOFF
            )
        except Exception as exc:
            log.warning("results.reread_failed", ids=len(task_ids), error=str(exc))

    async def _read_one(self, task_id: str) -> None:
        try:
            record = await self.fetch(task_id)
        except ProtocolError as exc:
            self._settle(task_id, exc)
            return
        if record is not None and record.ready:
            self._settle(task_id, record)

    def _settle(self, task_id: str, outcome: ResultRecord | ProtocolError) -> None:
        """Hand a ready record (or the error of a malformed one) to everyone waiting on it."""
        for future in self._waiting.get(task_id, ()):
            if future.done():
                continue
            if isinstance(outcome, ProtocolError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def fetch(self, task_id: str, *, fresh: bool = False) -> ResultRecord | None:
        """The stored record, or None when there is none (PENDING); ``fresh``: read from the
        stream leader, not from a replica that may lag (Bucket.get)."""
        data = await self._results.get(task_id, fresh=fresh)
        return ResultRecord.from_bytes(data) if data is not None else None

    async def fetch_many(self, task_ids: Sequence[str]) -> list[ResultRecord | None]:
        """The stored records of several tasks (None where there is none), in order."""
        return list(await asyncio.gather(*(self.fetch(task_id) for task_id in task_ids)))

    async def _start_watch(self) -> None:
        watch = self._watch
        if watch is None or (watch.done() and (watch.cancelled() or watch.exception())):
            # First wait, or the watch could not start (JetStream did not answer): start it.
            watch = self._watch = asyncio.ensure_future(self._results.watch(self._on_change))
        await asyncio.shield(watch)
        self._live = True

    async def start_watch(self, timeout: float | None) -> None:
        """Start the watch if it is not live, trying again while JetStream does not answer
        (a leader election can outlast ``publish_timeout``) for up to ``timeout`` seconds."""
        if not self._live:
            await self._start_watch_within(timeout)

    async def _start_watch_within(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            try:
                await self._start_watch()
                return
            except BrokerUnavailable as exc:
                unanswered = isinstance(exc.__cause__, RETRYABLE)
                if not unanswered or (deadline is not None and loop.time() >= deadline):
                    raise
                log.warning("results.watch_retrying", error=str(exc))

    async def wait(self, task_id: str, timeout: float | None) -> ResultRecord:
        """The record once it is ready; ResultTimeout after ``timeout`` seconds."""
        arrived = self._expected.get(task_id)
        if arrived is not None:  # the common case after a burst of sends: no future to set up
            del self._expected[task_id]
            return arrived
        return (await self.wait_many([task_id], timeout))[0]

    async def wait_many(self, task_ids: Sequence[str], timeout: float | None) -> list[ResultRecord]:
        """The records of all ``task_ids`` once all are ready, in order, on the one watch.

        Raises ResultTimeout after ``timeout`` seconds.
        """
        await self.start_watch(timeout)
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[ResultRecord]] = {}
        unknown: list[str] = []
        for task_id in task_ids:
            if task_id in futures:
                continue
            future: asyncio.Future[ResultRecord] = loop.create_future()
            futures[task_id] = future
            if task_id in self._expected:  # sent here after the watch began: no read needed
                arrived = self._expected[task_id]
                if arrived is not None:
                    del self._expected[task_id]
                    future.set_result(arrived)
                    continue
            else:
                unknown.append(task_id)
            self._waiting.setdefault(task_id, []).append(future)
            if timeout is not None:
                self._deadlines.add(future, timeout)
        try:
            if unknown:
                # The watch is live, so a record stored from now on reaches its future; one
                # stored earlier is found by this read. Nothing falls in between.
                for task_id, record in zip(unknown, await self.fetch_many(unknown), strict=True):
                    if record is not None and record.ready and not futures[task_id].done():
                        futures[task_id].set_result(record)
            if len(futures) == 1:
                await next(iter(futures.values()))  # the common case: no gather to set up
            else:
                await asyncio.gather(*futures.values())
        except TimeoutError:
            missing = [task_id for task_id, future in futures.items() if not future.done()]
            missing = missing or [next(iter(futures))]
            raise ResultTimeout(
                f"result of task {missing[0]} not ready after {timeout}s"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + "; is a worker serving the task running?"
            ) from None
        finally:
            for task_id, future in futures.items():
                if not future.done():
                    future.cancel()  # so its deadline does not fail it unobserved later
                elif not future.cancelled():
                    future.exception()  # seen, even when another one's error ended the wait
                waiting = self._waiting.get(task_id)
                if waiting is None:
                    continue
                if future in waiting:
                    waiting.remove(future)
                if not waiting:
                    del self._waiting[task_id]
        return [futures[task_id].result() for task_id in task_ids]

    def listen(self, task_id: str, callback: Callable[[ResultRecord], None]) -> Callable[[], None]:
        """Call ``callback`` with each record of ``task_id`` that arrives through the watch
        (PROGRESS, STARTED, RETRY ... and the final one); returns the function that stops it.

        Start the watch first (:meth:`start_watch`), then read the current record: an update
        stored between the two is then not missed. A failing callback is logged and ignored.
        """
        self._listeners.setdefault(task_id, []).append(callback)

        def stop() -> None:
            listeners = self._listeners.get(task_id, [])
            if callback in listeners:
                listeners.remove(callback)
            if not listeners:
                self._listeners.pop(task_id, None)

        return stop

    def _tell(self, key: str, record: ResultRecord) -> None:
        for callback in list(self._listeners.get(key, ())):
            try:
                callback(record)
            except Exception as exc:
                log.error("results.on_message_failed", id=key, error=repr(exc), exc_info=exc)

    async def _on_change(self, key: str, value: bytes | None) -> None:
        futures = self._waiting.get(key)
        if (not futures and key not in self._expected and key not in self._listeners) or (
            value is None
        ):
            return
        try:
            record = ResultRecord.from_bytes(value)
        except ProtocolError as exc:
            # Whoever waits on it learns now, not at its timeout; a later wait reads it again.
            self._expected.pop(key, None)
            log.warning("results.malformed_record", id=key, error=str(exc))
            self._settle(key, exc)
            return
        if key in self._listeners:
            self._tell(key, record)
        if not record.ready:
            return
        if futures:
            self._expected.pop(key, None)
            self._settle(key, record)
        else:
            self._expected[key] = record
