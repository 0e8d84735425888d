"""The one retry policy: which errors are retried, how long each attempt waits for a reply,
the pauses between attempts, and the deadline."""

from __future__ import annotations

import asyncio
import time

import nats.errors
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from actors.errors import BrokerUnavailable
from actors.nats.retrying import (
    REQUESTS,
    Backoff,
    NotReady,
    RetryEpisodes,
    retry_request,
    retry_until,
)

FAST = Backoff(first_wait=0.05, first_pause=0.01, max_pause=0.01)


async def test_not_ready_and_unanswered_attempts_are_retried_until_one_succeeds() -> None:
    calls = 0

    async def attempt(wait: float) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise NotReady("no stream leader yet")
        if calls == 2:
            raise nats.errors.NoRespondersError
        if calls == 3:
            raise TimeoutError  # no reply: the leader died with it
        return "stored"

    assert await retry_until(attempt, time.monotonic() + 5, backoff=FAST) == "stored"
    assert calls == 4


async def test_a_first_attempt_made_already_counts_as_the_first() -> None:
    waits: list[float] = []

    async def attempt(wait: float) -> str:
        waits.append(wait)
        return "stored"

    began = time.monotonic()
    deadline = began + 5
    assert await retry_until(attempt, deadline, backoff=FAST, failed=NotReady("x")) == "stored"
    assert waits == [pytest.approx(FAST.wait(1, 5), abs=0.01)]  # the second attempt's wait
    assert time.monotonic() - began >= FAST.pause(0) / 2  # after the first one's pause


async def test_each_attempt_waits_longer_for_its_reply_but_never_past_the_deadline() -> None:
    waits: list[float] = []

    async def attempt(wait: float) -> None:
        waits.append(wait)
        raise TimeoutError

    started = time.monotonic()
    policy = Backoff(first_wait=0.1, first_pause=0.01, max_pause=0.01)
    with pytest.raises(TimeoutError):
        await retry_until(attempt, started + 0.5, backoff=policy)
    assert waits[:2] == [pytest.approx(0.1, abs=0.01), pytest.approx(0.2, abs=0.01)]
    assert len(waits) >= 3
    assert all(wait <= 0.5 for wait in waits)
    assert time.monotonic() - started < 0.5 + 0.2


async def test_the_last_error_propagates_once_no_attempt_fits_before_the_deadline() -> None:
    calls = 0

    async def attempt(wait: float) -> None:
        nonlocal calls
        calls += 1
        raise NotReady(f"attempt {calls}")

    started = time.monotonic()
    with pytest.raises(NotReady, match="attempt"):
        await retry_until(attempt, started + 0.2, backoff=Backoff(first_pause=0.05, max_pause=0.05))
    assert 2 <= calls <= 9
    assert time.monotonic() - started < 0.5


async def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def attempt(wait: float) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await retry_until(attempt, time.monotonic() + 5, backoff=FAST)
    assert calls == 1


async def test_a_request_out_of_time_says_what_got_no_answer() -> None:
    async def attempt(wait: float) -> None:
        raise TimeoutError

    with pytest.raises(BrokerUnavailable, match=r"publish to actors\.t\.x: .* within 0\.2s"):
        await retry_request("publish to actors.t.x", attempt, 0.2)


def test_the_request_policy_fits_several_attempts_in_the_default_publish_timeout() -> None:
    # Waits 1, 2, 4 s, then what is left of 10 s: four replies missed in a row still fit.
    waits, left, n = [], 10.0, 0
    while left > 0:
        waits.append(REQUESTS.wait(n, left))
        left -= waits[-1] + REQUESTS.pause(n)
        n += 1
    assert waits[:3] == [1.0, 2.0, 4.0]
    assert len(waits) == 4
    assert [REQUESTS.pause(n) for n in range(7)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


@given(
    n=st.integers(min_value=0, max_value=10_000),
    left=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_waits_and_pauses_are_bounded(n: int, left: float) -> None:
    assert 0 <= REQUESTS.wait(n, left) <= left
    assert REQUESTS.wait(n, left) >= min(left, REQUESTS.first_wait)
    assert REQUESTS.first_pause <= REQUESTS.pause(n) <= REQUESTS.max_pause


async def test_an_operator_sees_one_line_when_retries_begin_and_one_when_they_end() -> None:
    episodes = RetryEpisodes()
    answered = asyncio.Event()

    async def attempt(wait: float) -> str:
        if not answered.is_set():
            raise nats.errors.NoRespondersError
        return "stored"

    with capture_logs() as logs:
        requests = [
            asyncio.ensure_future(retry_request(f"publish to s.{i}", attempt, 5, episodes))
            for i in range(3)
        ]
        await asyncio.sleep(0.2)
        answered.set()
        assert await asyncio.gather(*requests) == ["stored"] * 3
        await retry_request("publish to s.3", attempt, 5, episodes)  # no retry: no line
    # Only ours: another test's client in this process may log its own connection trouble.
    logs = [e for e in logs if e["event"].startswith("jetstream.")]
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("jetstream.retrying", "warning"),
        ("jetstream.recovered", "info"),
    ]
    assert logs[0]["what"] == "publish to s.0" and "NoRespondersError" in logs[0]["error"]
    assert logs[1]["requests"] == 3 and logs[1]["failed"] == 0 and logs[1]["after_s"] >= 0.1
