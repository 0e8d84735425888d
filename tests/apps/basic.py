"""A test app served by worker subprocesses (``tests.apps.basic:app``) and in-process workers."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path
from typing import Any

from actors import App, get_task_logger

log = get_task_logger(__name__)


class CustomError(Exception):
    """An importable exception type, rebuilt on the client side."""


def register(app: App) -> dict[str, Any]:
    """Register the test actors on ``app``; return them by short name."""

    @app.actor(name="basic.add")
    def add(x: int, y: int) -> int:
        log.info("adding", x=x, y=y)
        return x + y

    @app.actor(name="basic.aadd")
    async def aadd(x: int, y: int) -> int:
        await asyncio.sleep(0)
        return x + y

    @app.actor(name="basic.ctx", bind=True)
    async def ctx(self: Any, x: int) -> dict[str, Any]:
        request = self.request
        return {
            "id": request.id,
            "args": request.args,
            "kwargs": request.kwargs,
            "retries": request.retries,
            "delivered": request.delivery_info["delivered"],
            "subject": request.delivery_info["subject"],
        }

    @app.actor(name="basic.boom")
    def boom(message: str) -> None:
        raise CustomError(message)

    @app.actor(name="basic.local_boom")
    def local_boom() -> None:
        class LocalError(Exception):
            pass

        raise LocalError("not importable")

    @app.actor(name="basic.sleep")
    def sleep(seconds: float, marker: str | None = None) -> float:
        """Sleep, appending the pid to ``marker`` at start and 'done' at the end."""
        if marker:
            with Path(marker).open("a") as f:
                f.write(f"start {os.getpid()}\n")
        time.sleep(seconds)
        if marker:
            with Path(marker).open("a") as f:
                f.write(f"done {os.getpid()}\n")
        return seconds

    @app.actor(name="basic.asleep")
    async def asleep(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    @app.actor(name="basic.pid")
    def pid() -> int:
        time.sleep(0.001)
        return os.getpid()

    @app.actor(name="basic.gc_state")
    def gc_state() -> dict[str, Any]:
        return {"threshold": list(gc.get_threshold()), "frozen": gc.get_freeze_count()}

    @app.actor(name="basic.noresult", ignore_result=True)
    def noresult(marker: str) -> str:
        Path(marker).write_text("ran")
        return "ignored"

    @app.actor(name="basic.unencodable")
    def unencodable() -> object:
        return object()

    return {f.name.split(".", 1)[1]: f for f in app.registry.values()}


app = App("basic")
tasks = register(app)
