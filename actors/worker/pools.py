"""Running a task function with its time limits, so that it can also be terminated.

Where a task runs decides what can be enforced (docs/tasks.md "Time limits"):

- ``async def`` tasks run on the worker's loop: the soft limit raises SoftTimeLimitExceeded at
  the task's current ``await``; the hard limit and terminate cancel it.
- sync tasks run in the worker's thread pool: the soft limit (and terminate) raise an
  exception asynchronously in the thread (``PyThreadState_SetAsyncExc``), which Python only
  delivers between bytecodes, so not during a blocking C call. A hard limit cannot stop a
  thread: the worker records TimeLimitExceeded, stops waiting, and leaves the thread to end.
- sync tasks with ``pool="process"`` (the default when the actor sets ``time_limit``) run in a
  child process per task: soft limit = SIGALRM timed by the child from the task's start (raises
  SoftTimeLimitExceeded in the child), hard limit and terminate = SIGKILL.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from actors.actor import Actor
from actors.config import Settings
from actors.errors import Revoked, SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLost
from actors.replace import Replace
from actors.retry import Retry
from actors.wire import topology
from actors.wire.message import TaskMessage, decode, encode
from actors.wire.record import rebuild_exception
from actors.worker.thread_pool import ThreadPool

TERMINATED = "terminated"
TIME_LIMIT = "time_limit"


class RunningTask:
    """One running task: what its limits and ``terminate`` act on."""

    def __init__(
        self,
        task: str,
        soft: float | None,
        hard: float | None,
        message: TaskMessage | None = None,
    ) -> None:
        self.task_name = task
        self.soft = soft
        self.hard = hard
        self.message = message
        """The task's message (``inspect active`` shows its id and arguments)."""
        self.started_at = time.time()
        self.stopped: str | None = None
        self.soft_pending: SoftTimeLimitExceeded | None = None
        self.task: asyncio.Task[Any] | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.in_process = False
        self._thread: int | None = None
        self._thread_done = False
        self._raised = False  # an exception was set for the thread to raise
        self._lock = threading.Lock()

    def stop(self, reason: str) -> None:
        """Stop the task for ``reason`` (TIME_LIMIT or TERMINATED), as far as its pool allows."""
        if self.stopped is not None:
            return
        self.stopped = reason
        if self.process is not None:
            if self.process.returncode is None:
                self.process.kill()
        elif self.task is not None:
            self.task.cancel()
        else:
            self._raise_in_thread(Revoked if reason == TERMINATED else TimeLimitExceeded)

    def soft_expired(self) -> None:
        """The soft limit passed: raise SoftTimeLimitExceeded inside the task."""
        message = f"{self.task_name} ran past its soft_time_limit of {self.soft:g}s"
        if self.in_process:
            return  # the child times its soft limit itself, from the task's start
        if self.task is not None:
            self.soft_pending = SoftTimeLimitExceeded(message)
            self.task.cancel()
        else:
            self._raise_in_thread(SoftTimeLimitExceeded)

    def error(self) -> BaseException:
        """The error to record for a task stopped by :meth:`stop`."""
        if self.stopped == TERMINATED:
            return Revoked(TERMINATED)
        return TimeLimitExceeded(
            f"{self.task_name} ran past its time_limit of {self.hard:g}s and was stopped"
        )

    def enter_thread(self) -> None:
        """Called in the pool thread just before the function runs."""
        with self._lock:
            self._thread = threading.get_ident()
        if self.stopped is not None:  # stopped before the thread got to it
            raise self.error()

    def leave_thread(self) -> None:
        """Called in the pool thread after the function; cancels an exception not yet raised."""
        with self._lock:
            self._thread_done = True
            if self._raised and self._thread is not None:
                _set_async_exc(self._thread, None)

    def _raise_in_thread(self, kind: type[BaseException]) -> None:
        with self._lock:
            if self._thread is not None and not self._thread_done:
                self._raised = True
                _set_async_exc(self._thread, kind)


def _set_async_exc(thread_id: int, kind: type[BaseException] | None) -> None:
    exc = ctypes.py_object(kind) if kind is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), exc)


class Executor:
    """Runs task functions for a worker; ``terminate(task_id)`` stops a running one."""

    def __init__(self, settings: Settings, threads: ThreadPool) -> None:
        self.settings = settings
        self.threads = threads
        self.running: dict[str, RunningTask] = {}

    def terminate(self, task_id: str) -> bool:
        """Stop the task ``task_id`` if it runs here; True if it did."""
        run = self.running.get(task_id)
        if run is None:
            return False
        run.stop(TERMINATED)
        return True

    async def call(
        self,
        actor: Actor[Any, Any],
        message: TaskMessage,
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> Any:
        """Run ``actor`` with ``args``/``kwargs`` for ``message``; raise what it raised, or the
        limit's error. (A map message calls this once per item.)"""
        options = actor.options
        soft = options.soft_time_limit or self.settings.soft_time_limit
        hard = options.time_limit or self.settings.time_limit
        call_args = [actor, *args] if options.bind else args
        run = RunningTask(actor.name, soft, hard, message)
        self.running[message.id] = run
        loop = asyncio.get_running_loop()
        timers = []
        if soft:
            timers.append(loop.call_later(soft, run.soft_expired))
        if hard:
            timers.append(loop.call_later(hard, run.stop, TIME_LIMIT))
        try:
            if actor.is_async:
                return await self._on_loop(actor.fn(*call_args, **kwargs), run)
            if uses_process(actor):
                one_call = dataclasses.replace(message, args=args, kwargs=kwargs, map=None)
                return await self._in_process(actor, one_call, run)
            return await self._in_thread(actor.fn, call_args, kwargs, run)
        finally:
            for timer in timers:
                timer.cancel()
            self.running.pop(message.id, None)

    async def _on_loop(self, coro: Coroutine[Any, Any, Any], run: RunningTask) -> Any:
        run.task = task = asyncio.current_task()
        assert task is not None
        try:
            return await (_Interruptible(coro, run) if run.soft else coro)
        except asyncio.CancelledError:
            if run.stopped is None:
                raise
            task.uncancel()
            raise run.error() from None

    async def _in_thread(
        self, fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], run: RunningTask
    ) -> Any:
        def target() -> Any:
            run.enter_thread()
            try:
                return fn(*args, **kwargs)
            finally:
                run.leave_thread()

        future = self.threads.submit(target)  # runs in a copy of this context
        if run.hard is not None:
            done, _ = await asyncio.wait({future}, timeout=run.hard)
            if not done:  # a thread cannot be killed: record the limit, let the thread end
                run.stop(TIME_LIMIT)
                future.add_done_callback(lambda f: f.exception())
                raise run.error()
        try:
            return await future
        except SoftTimeLimitExceeded as exc:
            if not exc.args:
                exc.args = (f"{run.task_name} ran past its soft_time_limit of {run.soft:g}s",)
            raise
        except BaseException:
            if run.stopped is not None:
                raise run.error() from None
            raise

    async def _in_process(
        self, actor: Actor[Any, Any], message: TaskMessage, run: RunningTask
    ) -> Any:
        request = {
            "module": actor.fn.__module__,
            "task": actor.name,
            "message": message.to_wire(),
            "soft": run.soft,
        }
        run.in_process = True
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        run.process = process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "actors.worker.process_child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        if run.stopped is not None:  # stopped while the child was starting
            process.kill()
        try:
            out, _ = await process.communicate(encode(request))
        except asyncio.CancelledError:
            if process.returncode is None:
                process.kill()
            raise
        if run.stopped is not None:
            raise run.error()
        if process.returncode != 0 or not out:
            raise WorkerLost(
                f"the child process running {actor.name} exited with {process.returncode} "
                "before reporting a result"
            )
        reply = decode(out, topology.MSGPACK)
        if "retry" in reply:
            raise Retry.from_wire(reply["retry"])
        if "replace" in reply:
            raise Replace.from_wire(reply["replace"])
        if "error" in reply:
            raise rebuild_exception(reply["error"], reply.get("traceback"))
        return reply.get("result")


def uses_process(actor: Actor[Any, Any]) -> bool:
    """True when a sync actor runs each task in a child process."""
    pool = actor.options.pool
    if actor.is_async:
        return False
    return pool == "process" or (pool is None and actor.options.time_limit is not None)


class _Interruptible:
    """Awaits a coroutine, turning the soft limit's cancellation into SoftTimeLimitExceeded.

    ``Task.cancel()`` makes the task's current ``await`` raise CancelledError; this wrapper sits
    between the task and the coroutine and throws SoftTimeLimitExceeded in its place (and
    withdraws the cancellation), so the task can catch it and clean up.
    """

    def __init__(self, coro: Coroutine[Any, Any, Any], run: RunningTask) -> None:
        self._coro = coro
        self._run = run

    def __await__(self) -> Generator[Any, Any, Any]:
        send: Any = None
        error: BaseException | None = None
        while True:
            try:
                yielded = self._coro.throw(error) if error is not None else self._coro.send(send)
            except StopIteration as stop:
                return stop.value
            try:
                send, error = (yield yielded), None
            except asyncio.CancelledError as exc:
                send, error = None, exc
                pending = self._run.soft_pending
                if pending is not None and self._run.stopped is None and self._run.task:
                    self._run.soft_pending = None
                    self._run.task.uncancel()
                    error = pending
            except BaseException as exc:
                send, error = None, exc
