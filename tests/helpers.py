"""Waiting in tests: poll a condition until it holds, and fail saying what never happened.

Every polling wait in the suite goes through :func:`eventually` (sync tests) or
:func:`aeventually` (async tests), so each has a timeout and a failure names what was awaited
and the last value seen. Tests that check that something did NOT happen first wait for a later
sentinel (a task sent after it, an event logged after it, or :func:`asettled`: every message
to some tasks run and acked), then assert the absence.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import nats

from actors.wire import topology

T = TypeVar("T")


def lines(path: Path) -> list[str]:
    """The lines of a file that test tasks append to; none while it does not exist."""
    return path.read_text().splitlines() if path.exists() else []


def _failure(what: str | Callable[[], str], timeout: float, last: object) -> AssertionError:
    described = what() if callable(what) else what
    seen = repr(last)
    if len(seen) > 2000:  # a whole log or list would bury the message
        seen = seen[:2000] + "..."
    return AssertionError(f"timed out after {timeout:g}s waiting for {described}; last: {seen}")


def eventually(
    condition: Callable[[], T],
    *,
    what: str | Callable[[], str],
    until: Callable[[T], object] = bool,
    timeout: float = 10.0,
    interval: float = 0.02,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``condition`` until its value passes ``until`` (truthy by default); return it.

    what: what is awaited, for the failure message (a callable is asked only on failure, for
    details such as a process's output). until: the test applied to each value, so the value
    reported on failure can be the informative one (a count, a state) rather than False.
    ignore: exceptions that mean "not yet"; the last one is reported as the last value. Any
    other exception propagates at once.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = condition()
        except ignore as exc:
            last = exc
        else:
            if until(value):
                return value
            last = value
        if time.monotonic() > deadline:
            raise _failure(what, timeout, last)
        time.sleep(interval)


async def aeventually(
    condition: Callable[[], T | Awaitable[T]],
    *,
    what: str | Callable[[], str],
    until: Callable[[T], object] = bool,
    timeout: float = 10.0,
    interval: float = 0.02,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Async twin of :func:`eventually`: ``condition`` may be a plain or an async callable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while True:
        try:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
        except ignore as exc:
            last = exc
        else:
            if until(value):
                return value
            last = value
        if loop.time() > deadline:
            raise _failure(what, timeout, last)
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class Backlog:
    """What the consumer of one task holds: not yet delivered, delivered but not acked."""

    task: str
    pending: int
    unacked: int
    redelivered: int


async def asettled(url: str, *tasks: str, timeout: float = 20.0) -> list[Backlog]:
    """Wait until every message sent so far to ``tasks`` has been run and acked.

    The sentinel before asserting that something did NOT run: call it once whatever could
    wrongly publish to ``tasks`` has itself finished (its result seen, or its own task
    settled first). A message published before that is then run, so its effect is visible.
    Returns each consumer's backlog (all zero but ``redelivered``), in the order given.
    """
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()

        async def backlog(task: str) -> Backlog:
            # Acked messages leave the work-queue stream: what is left on the subject waits
            # or runs. The consumer holding the subject serves several actors (docs/routing.md).
            subject = topology.task_subject(task)
            info = await js.stream_info(topology.TASK_STREAM, subjects_filter=subject)
            left = (info.state.subjects or {}).get(subject, 0)
            holder = await consumer_of(js, subject)
            if holder is None:
                return Backlog(task, left, -1, 0)
            consumer = await js.consumer_info(topology.TASK_STREAM, holder)
            unacked = consumer.num_ack_pending if left else 0
            return Backlog(task, left, unacked, consumer.num_redelivered)

        return [
            await aeventually(
                functools.partial(backlog, task),
                until=lambda b: b.pending == 0 and b.unacked == 0,
                what=f"every message to {task} run and acked",
                timeout=timeout,
                interval=0.05,
            )
            for task in tasks
        ]
    finally:
        await nc.close()


async def consumer_of(js: Any, subject: str) -> str | None:
    """The name of the consumer on the task stream whose filters hold ``subject``."""
    offset = 0
    while page := await js.consumers_info(topology.TASK_STREAM, offset=offset):
        for info in page:
            config = info.config
            if subject == config.filter_subject or subject in (config.filter_subjects or ()):
                return str(info.name)
        offset += len(page)
    return None


def settled(url: str, *tasks: str, timeout: float = 20.0) -> list[Backlog]:
    """Sync twin of :func:`asettled`, for tests without a running event loop."""
    return asyncio.run(asettled(url, *tasks, timeout=timeout))
