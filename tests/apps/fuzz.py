"""The app the hostile-input fuzz suite runs in a worker subprocess (``tests.apps.fuzz:app``).

Every run of ``fuzz.echo`` appends ``<task id> <delivery count>`` to the file named by
``FUZZ_RUNS_FILE``, so the test can tell which messages ran, and how often.
"""

from __future__ import annotations

import os
from typing import Any

from actors import App

app = App("fuzz")


def _record(task_id: str, delivered: int) -> None:
    path = os.environ.get("FUZZ_RUNS_FILE")
    if path:
        # One write() per line with O_APPEND: lines from concurrent threads never interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{task_id} {delivered}\n".encode())
        finally:
            os.close(fd)


@app.actor(name="fuzz.echo", bind=True)
def echo(self: Any, *args: Any, **kwargs: Any) -> int:
    """Accepts any arguments; returns how many it got."""
    _record(self.request.id, self.request.delivery_info["delivered"])
    return len(args) + len(kwargs)


@app.actor(name="fuzz.ping")
def ping() -> str:
    """The sentinel: answers when the worker still serves."""
    return "pong"
