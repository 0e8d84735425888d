"""Example actors: ``actors run examples.tasks:app``."""

from __future__ import annotations

import asyncio
import hashlib

from actors import App, get_task_logger

app = App("examples")
log = get_task_logger(__name__)


@app.actor
def add(x: int, y: int) -> int:
    """Add two numbers (a sync actor: runs in the worker's thread pool)."""
    log.info("adding", x=x, y=y)
    return x + y


@app.actor
async def fetch_length(text: str) -> int:
    """Pretend to do I/O (an async actor: runs on the worker's event loop)."""
    await asyncio.sleep(0.01)
    return len(text)


@app.actor(bind=True)
def digest(self, data: str, rounds: int = 1000) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """CPU work that reports which task and delivery it ran as."""
    value = data.encode()
    for _ in range(rounds):
        value = hashlib.sha256(value).digest()
    return {"task_id": self.request.id, "digest": value.hex()[:16]}
