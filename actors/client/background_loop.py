"""The sync facade: blocking calls that run a coroutine on an event loop in another thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from actors.errors import ActorsError

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop where uvloop is installed (faster I/O and wake-ups), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class BackgroundLoop:
    """The event loop that blocking calls run their coroutines on: the loop's own daemon
    thread, or a running loop lent by a worker (its tasks' sync calls run there)."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._thread: threading.Thread | None = None
        if loop is None:
            loop = new_event_loop()
            self._thread = threading.Thread(
                target=loop.run_forever, name="actors-background-loop", daemon=True
            )
            self._thread.start()
        self.loop = loop

    @property
    def owns_loop(self) -> bool:
        """True when the loop runs in its own thread here (not a lent one)."""
        return self._thread is not None

    def run_blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block the calling thread until it returns."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self.loop:
            coro.close()
            raise ActorsError(
                "a blocking call (delay, apply_async, get, ...) was made inside the event loop "
                "it would wait on; use the async twin instead (adelay, aapply_async, aget, ...)"
            )
        # In a copy of the caller's context: the running task's request (update_state, the
        # children it sends) and its trace context (traceparent) reach the coroutine.
        context = contextvars.copy_context()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def start() -> None:
            task = self.loop.create_task(coro, context=context)
            task.add_done_callback(lambda ended: _settle(ended, done))

        self.loop.call_soon_threadsafe(start)
        return done.result()

    def close(self) -> None:
        """Stop the loop and its thread (a lent loop is left alone)."""
        if self._thread is not None:
            asyncio.run_coroutine_threadsafe(_cancel_others(), self.loop).result(timeout=5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
            self._thread = None


def _settle(task: asyncio.Task[T], done: concurrent.futures.Future[T]) -> None:
    if task.cancelled():
        done.cancel()
    elif (exc := task.exception()) is not None:
        done.set_exception(exc)
    else:
        done.set_result(task.result())


async def _cancel_others() -> None:
    """Cancel what is left on the loop (library housekeeping tasks) so none is destroyed."""
    me = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not me]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
