"""Actors for task-semantics tests (retries, limits, revoke, dead letters).

Registered at module level too (``tests.apps.semantics:app``), which worker subprocesses and
``pool="process"`` children need.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from actors import App, SoftTimeLimitExceeded
from tests.apps.basic import CustomError


def _busy(seconds: float) -> None:
    """Run Python bytecode (not a C sleep) so asynchronous exceptions are delivered."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(100))


def _mark_started(marker: str | None) -> None:
    """Append ``start`` to ``marker``: the task body is running (in whichever process)."""
    if marker:
        with Path(marker).open("a") as f:
            f.write("start\n")


def register(app: App) -> dict[str, Any]:
    """Register the actors on ``app``; return them by short name."""

    @app.actor(name="sem.flaky", bind=True, max_retries=5)
    def flaky(self: Any, fails: int) -> int:
        if self.request.retries < fails:
            raise self.retry(countdown=0.05, exc=CustomError(f"attempt {self.request.retries}"))
        return int(self.request.retries)

    @app.actor(name="sem.later", bind=True)
    def later(self: Any, countdown: float) -> int:
        if self.request.retries == 0:
            raise self.retry(countdown=countdown)
        return int(self.request.retries)

    @app.actor(name="sem.forever", bind=True, max_retries=2)
    def forever(self: Any, with_exc: bool) -> None:
        raise self.retry(countdown=0, exc=CustomError("gave up") if with_exc else None)

    @app.actor(name="sem.newargs", bind=True)
    async def newargs(self: Any, n: int) -> int:
        if n < 3:
            raise self.retry(args=[n + 1], countdown=0)
        return n

    @app.actor(
        name="sem.auto",
        bind=True,
        autoretry_for=(KeyError,),
        retry_backoff=0.05,
        retry_jitter=False,
        retry_kwargs={"max_retries": 3},
    )
    def auto(self: Any, succeed_at: int) -> int:
        if self.request.retries < succeed_at:
            raise KeyError(f"attempt {self.request.retries}")
        return int(self.request.retries)

    @app.actor(name="sem.expected", throws=(CustomError,))
    def expected() -> None:
        raise CustomError("an expected error")

    @app.actor(name="sem.stamp")
    def stamp(tag: int = 0) -> float:
        return time.time()

    @app.actor(name="sem.asoft", soft_time_limit=0.3)
    async def asoft() -> str:
        try:
            await asyncio.sleep(10)
        except SoftTimeLimitExceeded:
            await asyncio.sleep(0.01)
            return "cleaned up"
        return "not interrupted"

    @app.actor(name="sem.ahard", time_limit=0.3)
    async def ahard() -> str:
        await asyncio.sleep(10)
        return "not stopped"

    @app.actor(name="sem.tsoft", soft_time_limit=0.3)
    def tsoft() -> str:
        try:
            _busy(10)
        except SoftTimeLimitExceeded:
            return "cleaned up"
        return "not interrupted"

    @app.actor(name="sem.busy")
    def busy(seconds: float) -> str:
        _busy(seconds)
        return "done"

    @app.actor(name="sem.phard", time_limit=0.5)
    def phard() -> str:
        time.sleep(10)
        return "not stopped"

    @app.actor(name="sem.psoft", pool="process", soft_time_limit=0.5)
    def psoft() -> list[Any]:
        try:
            time.sleep(10)
        except SoftTimeLimitExceeded:
            return ["cleaned up", os.getpid()]
        return ["not interrupted", os.getpid()]

    @app.actor(name="sem.pboom", pool="process")
    def pboom() -> None:
        raise CustomError("from the child")

    @app.actor(name="sem.along", track_started=True)
    async def along(seconds: float, marker: str | None = None) -> str:
        _mark_started(marker)
        await asyncio.sleep(seconds)
        return "finished"

    @app.actor(name="sem.plong", pool="process", track_started=True)
    def plong(seconds: float, marker: str | None = None) -> str:
        _mark_started(marker)
        time.sleep(seconds)
        return "finished"

    @app.actor(name="sem.tlong", track_started=True)
    def tlong(seconds: float, marker: str | None = None) -> str:
        _mark_started(marker)
        _busy(seconds)
        return "finished"

    @app.actor(name="sem.rated", rate_limit="5/s")
    async def rated() -> float:
        return time.time()

    @app.actor(name="sem.crash", max_deliveries=2)
    def crash(marker: str) -> None:
        with Path(marker).open("a") as f:
            f.write("run\n")
        os._exit(1)

    @app.actor(name="sem.crash_early", acks_late=False)
    def crash_early(marker: str) -> None:
        with Path(marker).open("a") as f:
            f.write("run\n")
        os._exit(1)

    return {f.name.split(".", 1)[1]: f for f in app.registry.values()}


app = App("semantics")
tasks = register(app)
