"""Timeouts for many waits at once: one heap and one task, not a timer per wait.

A timer handle per wait (``call_later``/``wait_for``) was a tenth of a client's CPU time when
thousands of results were awaited at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

K = TypeVar("K")

_TICK = 0.05  # how soon a newly added, earlier deadline is noticed


def fail_with_timeout(future: asyncio.Future[Any]) -> None:
    """Fail ``future`` with TimeoutError unless it is done."""
    if not future.done():
        future.set_exception(TimeoutError())


class TimeoutHeap(Generic[K]):
    """Calls ``on_expire(key)`` for each key added once its deadline (loop time) has passed
    (e.g. :func:`fail_with_timeout` with futures as keys)."""

    def __init__(self, on_expire: Callable[[K], None]) -> None:
        self._on_expire = on_expire
        self._heap: list[tuple[float, int, K]] = []
        self._order = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def add(self, key: K, timeout: float) -> None:
        """Expire ``key`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        heapq.heappush(self._heap, (loop.time() + timeout, next(self._order), key))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._expire())

    async def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        while self._heap:
            when, _, key = self._heap[0]
            now = loop.time()
            if when <= now:
                heapq.heappop(self._heap)
                self._on_expire(key)
                continue
            await asyncio.sleep(min(when - now, _TICK))

    def close(self) -> None:
        """Stop watching (keys not expired yet are left alone)."""
        if self._task is not None:
            self._task.cancel()
        self._heap.clear()
