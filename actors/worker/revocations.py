"""Revocations as a worker sees them: a local set fed by one watch on ``actors_revoked``.

A revocation is a key (the task id) in the KV bucket ``actors_revoked``, kept for
``result_ttl``. Every worker loads the bucket at start and watches it, so a task revoked
before any worker started is still skipped. ``terminate`` revocations also stop the task if
it is running in this worker at that moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from actors.nats.broker import Broker
from actors.nats.bucket import Bucket, Watch
from actors.wire import topology
from actors.wire.message import TaskMessage
from actors.wire.revocation import asks_to_terminate

log = structlog.get_logger(__name__)

REVOKED = "revoked"
EXPIRED = "expired"


class Revocations:
    """The revoked task ids, kept current by one KV watch; calls ``on_terminate(task_id)``."""

    def __init__(self, broker: Broker, on_terminate: Callable[[str], Any], ttl: float) -> None:
        self._bucket = Bucket(broker, topology.REVOKED_BUCKET)
        self._on_terminate = on_terminate
        self._ttl = ttl
        self._revoked: dict[str, float] = {}
        self._watch: Watch | None = None

    async def start(self) -> None:
        """Load the current revocations and follow new ones."""
        self._watch = await self._bucket.watch(self._on_change, initial=True)
        log.debug("revocations.loaded", count=len(self._revoked))

    async def stop(self) -> None:
        """Stop watching."""
        watch, self._watch = self._watch, None
        if watch is None:
            return
        try:
            await watch.stop()
        except Exception as exc:  # the connection may already be gone; nothing to undo then
            log.debug("revocations.unwatch_failed", error=repr(exc))
        await asyncio.sleep(0)  # let the watch's cancelled helper tasks finish

    def skip_reason(self, message: TaskMessage) -> str | None:
        """Why ``message`` must not run (``"revoked"``, ``"expired"``), or None."""
        if message.id in self._revoked:
            return REVOKED
        expires = message.expires_datetime()
        if expires is not None and expires <= datetime.now(UTC):
            return EXPIRED
        return None

    async def _on_change(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._revoked.pop(key, None)
            return
        self._revoked[key] = time.monotonic()
        if len(self._revoked) % 1024 == 0:
            self._forget_expired()
        if asks_to_terminate(value):
            self._on_terminate(key)

    def _forget_expired(self) -> None:
        # The bucket drops keys after its max_age without telling watchers; do the same here.
        cutoff = time.monotonic() - self._ttl
        for key in [k for k, since in self._revoked.items() if since < cutoff]:
            del self._revoked[key]
