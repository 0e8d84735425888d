"""Timeouts for many futures at once: one heap and one task, not a timer per future.

A timer handle per wait (``call_later``/``wait_for``) was a tenth of a client's CPU time when
thousands of results were awaited at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any

_TICK = 0.05  # how soon a newly added, earlier deadline is noticed


class TimeoutHeap:
    """Fails futures with TimeoutError once their deadline (loop time) has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[Any]]] = []
        self._order = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def add(self, future: asyncio.Future[Any], timeout: float) -> None:
        """Fail ``future`` with TimeoutError after ``timeout`` seconds unless done by then."""
        loop = asyncio.get_running_loop()
        heapq.heappush(self._heap, (loop.time() + timeout, next(self._order), future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._expire())

    async def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        while self._heap:
            when, _, future = self._heap[0]
            now = loop.time()
            if when <= now:
                heapq.heappop(self._heap)
                if not future.done():
                    future.set_exception(TimeoutError())
                continue
            await asyncio.sleep(min(when - now, _TICK))

    def close(self) -> None:
        """Stop watching (pending futures are left alone)."""
        if self._task is not None:
            self._task.cancel()
        self._heap.clear()
