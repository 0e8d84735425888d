"""Runs sync task functions in a pool of threads, returning outcomes to the event loop.

Unlike ``loop.run_in_executor``, finished calls are handed back in batches: one loop wake-up
(``call_soon_threadsafe``) per batch instead of one per call. With many short tasks the
wake-ups were a large share of a worker's CPU time.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any

_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class ThreadPool:
    """``threads`` daemon threads serving calls submitted from one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int) -> None:
        self._loop = loop
        self._calls: queue.SimpleQueue[tuple[asyncio.Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._finished: list[_Outcome] = []
        self._lock = threading.Lock()
        self._wake_pending = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"actors-task-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Call ``fn(*args, **kwargs)`` in a thread, in a copy of the current context."""
        future: asyncio.Future[Any] = self._loop.create_future()
        context = contextvars.copy_context()
        self._calls.put((future, lambda: context.run(fn, *args, **kwargs)))
        return future

    def shutdown(self) -> None:
        """Let the threads exit once the calls already queued are done."""
        for _ in self._threads:
            self._calls.put(None)

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn = call
            try:
                outcome: _Outcome = (future, fn(), None)
            except BaseException as exc:
                outcome = (future, None, exc)
            with self._lock:
                self._finished.append(outcome)
                wake = not self._wake_pending
                self._wake_pending = True
            if wake:
                try:
                    self._loop.call_soon_threadsafe(self._deliver)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return

    def _deliver(self) -> None:
        with self._lock:
            finished, self._finished = self._finished, []
            self._wake_pending = False
        for future, value, error in finished:
            if future.done():
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)
