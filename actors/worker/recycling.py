"""Replacing a worker process after many tasks or once it holds too much memory (Celery's
``--max-tasks-per-child`` and ``--max-memory-per-child``), against leaks in task code.

The worker asks after each task; once a limit is passed it stops as on SIGTERM (no new
messages, in-flight tasks finish) and exits with :data:`EXIT_RECYCLE`, and its supervisor
(``actors run``) starts a fresh process in its place.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys

import structlog

log = structlog.get_logger(__name__)

EXIT_RECYCLE = 5
"""Exit status of a worker process that stopped to be replaced (a limit was passed)."""


def resident_kib() -> int:
    """This process's resident memory now, in KiB (Linux ``/proc``; else the peak)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


class Recycler:
    """Decides when a worker process should be replaced; None limits never do.

    Once one is passed, ``reason`` says which and the event ``due`` is set.
    """

    def __init__(self, max_tasks: int | None, max_memory_kib: int | None) -> None:
        self.max_tasks = max_tasks
        self.max_memory_kib = max_memory_kib
        self.reason: str | None = None
        self.due = asyncio.Event()

    def task_done(self, processed: int) -> None:
        """Called after each task, ``processed`` tasks in all: sets ``due`` past a limit."""
        if self.enabled and self.reason is None:
            self.reason = self.check(processed)
            if self.reason is not None:
                log.info("worker.recycling", reason=self.reason)
                self.due.set()

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return bool(self.max_tasks or self.max_memory_kib)

    def check(self, processed: int) -> str | None:
        """Why the process should be replaced after ``processed`` tasks, or None."""
        if self.max_tasks and processed >= self.max_tasks:
            return f"ran {processed} tasks (max_tasks_per_child={self.max_tasks})"
        if self.max_memory_kib:
            used = resident_kib()
            if used > self.max_memory_kib:
                return f"holds {used} KiB (max_memory_per_child={self.max_memory_kib})"
        return None
