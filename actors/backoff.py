"""Retry delays and rate-limit strings: pure functions, no I/O."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from actors.errors import ConfigurationError


def retry_delay(
    retries: int,
    *,
    default: float,
    backoff: bool | float = False,
    backoff_max: float = 600.0,
    jitter: bool = True,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait before retry number ``retries + 1`` (``retries`` done so far).

    Without ``backoff`` the delay is ``default``. With it, the delay is
    ``min(backoff_max, base * 2**retries)`` where ``base`` is 1 s for ``True`` or the number
    given; ``jitter`` then draws uniformly from ``[0, delay]`` (full jitter, as Celery does) so
    that many tasks failing together do not retry together.
    """
    if backoff is False or backoff is None:
        return max(0.0, float(default))
    base = 1.0 if backoff is True else float(backoff)
    exponent = min(max(retries, 0), 64)  # 2**64 s is already far past any backoff_max
    delay = min(float(backoff_max), base * 2.0**exponent)
    if jitter:
        delay = uniform(0.0, delay)
    return max(0.0, delay)


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` task starts per ``per`` seconds."""

    count: int
    per: float

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}.get(self.per, f"{self.per:g}s")
        return f"{self.count}/{unit}"


_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*([0-9]+)\s*(?:/\s*([a-z]+))?\s*$", re.ASCII)


def parse_rate(text: str | int | float) -> Rate:
    """Parse ``"100/s"``, ``"10/m"``, ``"1000/h"`` (a bare number means per second)."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ConfigurationError(f"rate_limit must be like '100/s', got {text!r}")
    if isinstance(text, int | float):
        count, per = int(text), 1.0
    else:
        match = _RATE.match(text.lower())
        if match is None or (match.group(2) or "s") not in _UNITS:
            raise ConfigurationError(
                f"rate_limit {text!r} is not a rate: use '<count>/s', '<count>/m' or '<count>/h'"
            )
        count, per = int(match.group(1)), _UNITS[match.group(2) or "s"]
    if count < 1:
        raise ConfigurationError(f"rate_limit {text!r} must allow at least 1 task per window")
    return Rate(count, per)
