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
import structlog

from actors.errors import BrokerUnavailable

T = TypeVar("T")

log = structlog.get_logger(__name__)


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
a new stream leader answers 4-9 s after the old one is SIGKILLed. Within the default
``publish_timeout`` of 10 s a request refused at once ("no responders") is tried 13-17
times, one that gets no reply 4 times (waits of 1, 2 and 4 s, then the 3 s left)."""


class RetryEpisodes:
    """What an operator sees of the retries on one connection: ``jetstream.retrying`` (warning)
    when a request is first re-sent, and ``jetstream.recovered`` once no request is being
    re-sent any more, with how many were and for how long; not a line per request."""

    def __init__(self) -> None:
        self._retrying = 0
        self._since = 0.0
        self._requests = 0
        self._failed = 0

    def begin(self, what: str, error: BaseException) -> None:
        """A request (``what``) failed with ``error`` and is being re-sent."""
        if self._retrying == 0:
            self._since, self._requests, self._failed = time.monotonic(), 0, 0
            log.warning("jetstream.retrying", what=what, error=_cause(error))
        self._retrying += 1
        self._requests += 1

    def end(self, ok: bool) -> None:
        """A request being re-sent was answered (``ok``) or ran out of time."""
        self._retrying -= 1
        self._failed += not ok
        if self._retrying == 0:
            (log.warning if self._failed else log.info)(
                "jetstream.recovered",
                requests=self._requests,
                failed=self._failed,
                after_s=round(time.monotonic() - self._since, 1),
            )


def _cause(error: BaseException) -> str:
    return "no reply" if isinstance(error, TimeoutError) else repr(error)


async def retry_until(
    attempt: Callable[[float], Awaitable[T]],
    deadline: float,
    retry_on: tuple[type[BaseException], ...] = RETRYABLE,
    backoff: Backoff = REQUESTS,
    on_retry: Callable[[BaseException], None] | None = None,
    failed: BaseException | None = None,
) -> T:
    """``await attempt(wait)`` until it returns, ``wait`` being the seconds it may wait for a
    reply; after an error in ``retry_on``, pause and try again while another attempt can
    start before ``deadline`` (``time.monotonic()``). ``on_retry(error)`` is called before
    the first re-send.

    ``failed``: the first attempt was made already and raised this error (in ``retry_on``).
    Other errors, and the last retried one, propagate. Pauses are jittered (half to all of
    ``backoff.pause``) so that many clients retrying after one election do not stay in step.
    """
    n, error = 0, failed
    while True:
        if error is None:
            try:
                return await attempt(backoff.wait(n, deadline - time.monotonic()))
            except retry_on as exc:
                error = exc
        pause = backoff.pause(n) * random.uniform(0.5, 1.0)
        if time.monotonic() + pause >= deadline:
            raise error
        if n == 0 and on_retry is not None:
            on_retry(error)
        n, error = n + 1, None
        await asyncio.sleep(pause)


async def retry_request(
    what: str,
    attempt: Callable[[float], Awaitable[T]],
    timeout: float,
    episodes: RetryEpisodes | None = None,
) -> T:
    """:func:`retry_until` for ``timeout`` seconds with the request policy; once out of time,
    BrokerUnavailable saying that ``what`` (e.g. "publish to <subject>") got no answer.
    ``episodes`` (the connection's) logs when requests start and stop being re-sent."""
    deadline = time.monotonic() + timeout
    try:  # the first attempt outside the retry loop: nearly every request ends here
        return await attempt(REQUESTS.wait(0, timeout))
    except RETRYABLE as exc:
        failed = exc
    retried = False

    def begin(error: BaseException) -> None:
        nonlocal retried
        retried = True
        if episodes is not None:
            episodes.begin(what, error)

    ok = False
    try:
        result = await retry_until(attempt, deadline, on_retry=begin, failed=failed)
        ok = True
        return result
    except RETRYABLE as exc:
        raise BrokerUnavailable(
            f"{what}: JetStream did not answer within {timeout:g}s (last attempt: "
            f"{_cause(exc)}); is a stream leader elected? Raise publish_timeout to wait longer"
        ) from exc
    finally:
        if retried and episodes is not None:
            episodes.end(ok)
