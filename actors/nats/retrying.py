"""Retrying until a deadline while JetStream cannot serve yet, and which errors mean that.

A cluster that has just started, or lost a stream or meta leader, answers for a while with
"no responders" or "JetStream temporarily unavailable": the operation is not done, so trying
again is safe. :data:`NOT_READY` is the one list of those errors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
import nats.js.errors

from actors.errors import BrokerUnavailable

T = TypeVar("T")


class NotReady(BrokerUnavailable):
    """JetStream answered that it cannot store the message yet (no stream leader)."""


NOT_READY: tuple[type[BaseException], ...] = (
    NotReady,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
)
"""Errors after which nothing was done and a retry may succeed once a leader is elected."""


async def retry_until(
    attempt: Callable[[], Awaitable[T]],
    deadline: float,
    pause: float,
    retry_on: tuple[type[BaseException], ...] = NOT_READY,
) -> T:
    """``await attempt()`` until it returns, pausing ``pause`` seconds after an error in
    ``retry_on`` while another attempt can start before ``deadline`` (``time.monotonic()``).

    Other errors, and the last retried one, propagate.
    """
    while True:
        try:
            return await attempt()
        except retry_on:
            if time.monotonic() + pause >= deadline:
                raise
        await asyncio.sleep(pause)
