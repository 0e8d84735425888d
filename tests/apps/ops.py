"""Test app for the operations tests (``tests.apps.ops:app``): stdlib logging from tasks."""

from __future__ import annotations

import logging
import os

from actors import App, get_task_logger

app = App("ops")
stdlib_log = logging.getLogger("ops.tasks")
app_log = get_task_logger(__name__)


@app.actor(name="ops.stdlib_log")
def log_with_stdlib(who: str) -> str:
    stdlib_log.info("hello %s", who)
    return who


@app.actor(name="ops.long_lines")
def long_lines(index: int, lines: int = 3) -> int:
    """Log ``lines`` lines of about 9 KB each: more than a pipe writes atomically."""
    for line in range(lines):
        fields = {f"field{n}": f"{index}-{line}-" + "x" * 900 for n in range(10)}
        app_log.info("long.line", index=index, line=line, **fields)
    return index


@app.actor(name="ops.process_log", pool="process")
def log_in_a_child(who: str) -> int:
    stdlib_log.info("child says %s", who)
    return os.getpid()
