"""Actors for workflow tests (``tests.apps.canvas:app``): Celery's user-guide examples and more.

``record`` tasks append a line to a file named by ``marker`` so tests can count how often a
task really ran, across processes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from actors import App


def register(app: App) -> dict[str, Any]:
    """Register the canvas test actors on ``app``; return them by short name."""

    @app.actor(name="canvas.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.actor(name="canvas.mul")
    def mul(x: int, y: int) -> int:
        return x * y

    @app.actor(name="canvas.tsum")
    def tsum(numbers: list[int]) -> int:
        return sum(numbers)

    @app.actor(name="canvas.aadd")
    async def aadd(x: int, y: int) -> int:
        return x + y

    @app.actor(name="canvas.div")
    def div(x: int, y: int) -> float:
        return x / y

    @app.actor(name="canvas.echo")
    def echo(*args: Any) -> list[Any]:
        return list(args)

    @app.actor(name="canvas.record")
    def record(value: Any, marker: str, tag: str = "", sleep: float = 0.0) -> Any:
        """Append ``tag pid value`` to ``marker``, optionally sleep, return ``value``."""
        with Path(marker).open("a") as f:
            f.write(f"{tag} {os.getpid()} {value!r}\n")
        time.sleep(sleep)
        return value

    @app.actor(name="canvas.errback")
    def errback(task_id: str, error: dict[str, Any], traceback: str, marker: str) -> str:
        with Path(marker).open("a") as f:
            f.write(f"{task_id}|{error['type']}|{error['message']}|{'Traceback' in traceback}\n")
        return task_id

    @app.actor(name="canvas.crash_once")
    def crash_once(value: int, marker: str) -> int:
        """Kill this worker process the first time it runs for ``value`` (redelivery test)."""
        flag = Path(f"{marker}.{value}")
        if not flag.exists():
            flag.write_text(str(os.getpid()))
            os._exit(9)
        return value

    @app.actor(name="canvas.retry_once", bind=True, max_retries=3)
    def retry_once(self: Any, value: int, marker: str) -> int:
        """Ask for a retry on the first attempt; append ``retries value`` to ``marker``."""
        with Path(marker).open("a") as f:
            f.write(f"{self.request.retries} {value}\n")
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return value

    return {f.name.split(".", 1)[1]: f for f in app.registry.values()}


app = App("canvas")
tasks = register(app)
