"""The events stream read into the task index, and the changes live pages wait for.

One reader per monitor process follows ``ACTORS_EVENTS`` from its first stored message, so a
monitor started (or restarted) later knows everything the stream still holds. While the
stream is missing (no worker ran yet) or NATS is away, it tries again every few seconds and
carries on from the time of the last event it saw.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from datetime import UTC, datetime

import structlog

from actors.client.events import read_events
from actors.errors import ActorsError
from actors.monitor.index import TaskIndex
from actors.nats.broker import Broker

log = structlog.get_logger(__name__)

_RETRY = 2.0
_RECENT = 20_000  # (hostname, clock) pairs remembered to skip events read twice after a retry
_CHANGES = 5_000


class EventFeed:
    """Feeds ``index`` from the events stream and tells live pages what changed."""

    def __init__(self, broker: Broker, index: TaskIndex) -> None:
        self.broker = broker
        self.index = index
        self.version = 0
        """Grows by one for every task event applied."""
        self.running = False
        self.error: str | None = None
        self.changes: collections.deque[tuple[int, str]] = collections.deque(maxlen=_CHANGES)
        self._recent: collections.OrderedDict[tuple[str, int], None] = collections.OrderedDict()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start reading in the background."""
        self._task = asyncio.create_task(self._run(), name="monitor-events")

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        since = datetime.fromtimestamp(0, UTC)
        while True:
            try:
                self.running, self.error = True, None
                async for event in read_events(self.broker, since, follow=True):
                    self.apply(event)
            except ActorsError as exc:
                self.error = str(exc)
                log.info("monitor.events_unavailable", error=str(exc), retry_in=_RETRY)
            self.running = False
            if self.index.last_event_at:  # carry on where we were; _recent skips repeats
                since = datetime.fromtimestamp(self.index.last_event_at - 5.0, UTC)
            await asyncio.sleep(_RETRY)

    def apply(self, event: dict[str, object]) -> None:
        """Add one event to the index (once, even when a retry reads it again)."""
        clock = event.get("clock")
        if isinstance(clock, int):
            key = (str(event.get("hostname")), clock)
            if key in self._recent:
                return
            self._recent[key] = None
            if len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        task = self.index.add(event)
        if task is not None:
            self.version += 1
            self.changes.append((self.version, task.id))
            wake, self._wake = self._wake, asyncio.Event()  # wakes every waiter, once
            wake.set()

    def changed_since(self, version: int) -> list[str]:
        """Ids of the tasks changed after ``version`` (as many as are remembered)."""
        seen: dict[str, None] = {}
        for number, task_id in reversed(self.changes):
            if number <= version:
                break
            seen[task_id] = None
        return list(seen)

    async def wait(self, timeout: float) -> None:
        """Return when a task changed, or after ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def lag(self) -> float | None:
        """Seconds since the newest event read (None before the first)."""
        last = self.index.last_event_at
        return None if last is None else max(0.0, time.time() - last)
