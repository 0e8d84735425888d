"""Task ids: fresh random ones, and ones derived from a seed so a re-publish repeats them."""

from __future__ import annotations

import os
import threading
import uuid

_DERIVED = uuid.UUID("6f1c5a0e-4b7d-4c4e-9a51-2f1d3c8b7e10")
"""Namespace of derived ids (UUID version 5): part of the protocol, other senders use it too."""


def new_task_id() -> str:
    """A fresh task id: a random UUID (version 4) string, as Celery uses.

    Built from ``os.urandom`` directly (``str(uuid.uuid4())`` costs several times more), 256
    ids' worth at a time: each ``os.urandom`` call releases the GIL, and a sync client's
    loop thread then held it for up to a switch interval (measured: 13% of the client's
    samples in ``delay()`` loops).
    """
    with _POOL_LOCK:
        if not _POOL:
            block = os.urandom(16 * _POOL_SIZE)
            _POOL.extend(block[i : i + 16] for i in range(0, len(block), 16))
        raw = bytearray(_POOL.pop())
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_POOL_SIZE = 256
_POOL: list[bytes] = []
_POOL_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_POOL.clear)  # a child must not repeat its parent's ids


def derived_id(seed: str | None) -> str:
    """The id derived from ``seed`` (the same for the same seed), or a fresh one without.

    A worker derives the ids of what it publishes after a task from that task's id, so a
    redelivered task re-publishes the same ids and the server stores each message once.
    """
    return str(uuid.uuid5(_DERIVED, seed)) if seed else new_task_id()
