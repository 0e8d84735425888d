"""retry_until: retries only the errors that mean "not ready yet", until the deadline."""

from __future__ import annotations

import time

import nats.errors
import pytest

from actors.nats.retrying import NotReady, retry_until


async def test_not_ready_errors_are_retried_until_the_attempt_succeeds() -> None:
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise NotReady("no stream leader yet")
        if calls == 2:
            raise nats.errors.NoRespondersError
        return "stored"

    assert await retry_until(attempt, time.monotonic() + 5, 0.01) == "stored"
    assert calls == 3


async def test_the_last_error_propagates_once_no_attempt_fits_before_the_deadline() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise NotReady(f"attempt {calls}")

    started = time.monotonic()
    with pytest.raises(NotReady, match="attempt"):
        await retry_until(attempt, started + 0.2, 0.05)
    assert 2 <= calls <= 5
    assert time.monotonic() - started < 0.5


async def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await retry_until(attempt, time.monotonic() + 5, 0.01)
    assert calls == 1
