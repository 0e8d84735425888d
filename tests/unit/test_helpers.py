"""The shared wait helpers: they return what they waited for, and fail saying what it was."""

from __future__ import annotations

import itertools

import pytest

from tests.helpers import aeventually, eventually


def test_eventually_returns_the_first_value_that_passes() -> None:
    counter = itertools.count()
    assert eventually(lambda: next(counter), until=lambda n: n >= 3, what="three") == 3
    assert eventually(lambda: "ready", what="a truthy value") == "ready"


def test_eventually_fails_naming_what_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"waiting for the moon; last: 'cheese'") as caught:
        eventually(lambda: "cheese", until=lambda v: v == "moon", what="the moon", timeout=0.1)
    assert "0.1s" in str(caught.value)


def test_eventually_ignores_only_the_exceptions_it_is_told_to() -> None:
    attempts = itertools.count()

    def flaky() -> int:
        if next(attempts) < 2:
            raise ConnectionError("not yet")
        return 7

    assert eventually(flaky, what="a connection", ignore=(ConnectionError,)) == 7
    with pytest.raises(AssertionError, match=r"last: ConnectionError\('down'\)"):
        eventually(_raise, what="a connection", timeout=0.1, ignore=(ConnectionError,))
    with pytest.raises(ConnectionError):
        eventually(_raise, what="a connection", timeout=5)


def _raise() -> None:
    raise ConnectionError("down")


async def test_aeventually_awaits_async_conditions_and_takes_plain_ones() -> None:
    counter = itertools.count()

    async def probe() -> int:
        return next(counter)

    assert await aeventually(probe, until=lambda n: n == 2, what="two") == 2
    assert await aeventually(lambda: [1], what="a list") == [1]
    with pytest.raises(AssertionError, match=r"waiting for a state; last: 'PENDING'"):
        await aeventually(lambda: "PENDING", until=lambda s: s == "OK", what="a state", timeout=0.1)
