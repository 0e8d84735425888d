"""The one retry policy for JetStream requests: ride out a leader election until a deadline.

While a stream or KV bucket elects a leader (a node died, a cluster starts) a request is
answered "no responders" or "JetStream temporarily unavailable", or not at all: the leader
that took it may have died with the reply. Every request actors makes (publishes, KV writes
and reads, counters, acks) is therefore re-sent until ``publish_timeout``: each attempt waits
for its reply a short while that grows (1 s, 2 s, 4 s...), and pauses between attempts grow
too (50 ms doubling to 1 s), so several attempts fit in the deadline.

Re-sending is safe only because every request is idempotent: a task message carries its task
id as ``Nats-Msg-Id``; a create-only write, a compare-and-set and a counter increment carry a
``Nats-Msg-Id`` unique to the call and the same on each of its attempts (actors.nats.bucket);
a plain KV put writes the same value again; a read reads again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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

RETRYABLE: tuple[type[BaseException], ...] = (*NOT_READY, TimeoutError)
"""NOT_READY, and no reply in time (nats-py's and our own timeouts are TimeoutErrors): the
request may or may not have been done, so only idempotent requests may be retried on it."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long attempt ``n`` (from 0) waits for its reply, and the pause after it fails."""

    first_wait: float = 1.0
    first_pause: float = 0.05
    factor: float = 2.0
    max_pause: float = 1.0

    def wait(self, n: int, left: float) -> float:
        """Seconds attempt ``n`` waits for a reply, never past the ``left`` seconds."""
        return max(0.0, min(self.first_wait * self.factor ** min(n, 30), left))

    def pause(self, n: int) -> float:
        """Seconds to pause after attempt ``n`` failed, before jitter."""
        return min(self.max_pause, self.first_pause * self.factor ** min(n, 30))


REQUESTS = Backoff()
"""The policy of every JetStream request. Measured on a 3-node cluster on one 2-core machine:
a new stream leader answers 4-9 s after the old one is SIGKILLed, so with the default
``publish_timeout`` of 10 s a request is tried about 8 times."""


async def retry_until(
    attempt: Callable[[float], Awaitable[T]],
    deadline: float,
    retry_on: tuple[type[BaseException], ...] = RETRYABLE,
    backoff: Backoff = REQUESTS,
) -> T:
    """``await attempt(wait)`` until it returns, ``wait`` being the seconds it may wait for a
    reply; after an error in ``retry_on``, pause and try again while another attempt can
    start before ``deadline`` (``time.monotonic()``).

    Other errors, and the last retried one, propagate. Pauses are jittered (half to all of
    ``backoff.pause``) so that many clients retrying after one election do not stay in step.
    """
    n = 0
    while True:
        try:
            return await attempt(backoff.wait(n, deadline - time.monotonic()))
        except retry_on:
            pause = backoff.pause(n) * random.uniform(0.5, 1.0)
            if time.monotonic() + pause >= deadline:
                raise
        n += 1
        await asyncio.sleep(pause)


async def retry_request(what: str, attempt: Callable[[float], Awaitable[T]], timeout: float) -> T:
    """:func:`retry_until` for ``timeout`` seconds with the request policy; once out of time,
    BrokerUnavailable saying that ``what`` (e.g. "publish to <subject>") got no answer."""
    try:
        return await retry_until(attempt, time.monotonic() + timeout)
    except RETRYABLE as exc:
        cause = "no reply" if isinstance(exc, TimeoutError) else repr(exc)
        raise BrokerUnavailable(
            f"{what}: JetStream did not answer within {timeout:g}s (last attempt: {cause}); "
            "is a stream leader elected? Raise publish_timeout to wait longer"
        ) from exc
