"""Retry delay math and rate-limit parsing (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import ConfigurationError
from actors.backoff import Rate, parse_rate, retry_delay


def test_without_backoff_the_default_delay_applies() -> None:
    assert retry_delay(0, default=180) == 180
    assert retry_delay(7, default=2.5, backoff=False) == 2.5


def test_exponential_backoff_doubles_until_the_cap() -> None:
    delays = [retry_delay(n, default=0, backoff=True, jitter=False) for n in range(12)]
    assert delays[:5] == [1, 2, 4, 8, 16]
    assert delays[-1] == 600
    assert retry_delay(3, default=0, backoff=0.5, backoff_max=3, jitter=False) == 3
    assert retry_delay(2, default=0, backoff=0.5, jitter=False) == 2


@given(
    retries=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=1000),
    cap=st.floats(min_value=0, max_value=1e6),
)
def test_backoff_with_jitter_stays_within_zero_and_the_cap(
    retries: int, base: float, cap: float
) -> None:
    delay = retry_delay(retries, default=0, backoff=base, backoff_max=cap, jitter=True)
    assert 0 <= delay <= min(cap, base * 2.0 ** min(retries, 64))


def test_jitter_draws_from_zero_to_the_delay() -> None:
    seen: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        seen.append((low, high))
        return high / 2

    assert retry_delay(3, default=0, backoff=True, uniform=uniform) == 4
    assert seen == [(0.0, 8.0)]


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/s", Rate(100, 1.0)),
        ("10/m", Rate(10, 60.0)),
        ("1000/h", Rate(1000, 3600.0)),
        (" 5 / sec ", Rate(5, 1.0)),
        ("7/min", Rate(7, 60.0)),
        ("20", Rate(20, 1.0)),
        (3, Rate(3, 1.0)),
    ],
)
def test_rates_parse(text: str | int, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    "text", ["", "fast", "10/d", "0/s", "-1/s", "1.5/s", "/s", True, "\u00b2", "\u0663/s"]
)
def test_bad_rates_say_what_to_write(text: object) -> None:
    with pytest.raises(ConfigurationError, match="rate_limit"):
        parse_rate(text)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=10**9), st.sampled_from(["s", "m", "h"]))
def test_rate_round_trips_through_its_text(count: int, unit: str) -> None:
    rate = parse_rate(f"{count}/{unit}")
    assert parse_rate(str(rate)) == rate


@given(st.text(max_size=20))
def test_parse_rate_never_fails_with_anything_but_configuration_error(text: str) -> None:
    try:
        rate = parse_rate(text)
    except ConfigurationError:
        return
    assert rate.count >= 1 and rate.per > 0
