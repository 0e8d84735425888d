"""Cron fields: reading the text of one field (``*/15``, ``1-5``, ``mon``) and cron's macros.

Pure logic for :class:`schedulers.schedules.crontab`; see docs/schedules.md for the syntax.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable

from actors.errors import ConfigurationError

_MONTH_NAMES = {
    name: number
    for number in range(1, 13)
    for name in (calendar.month_abbr[number].lower(), calendar.month_name[number].lower())
}
_DOW_NAMES = {
    name: (number + 1) % 7  # calendar counts from Monday=0; cron counts from Sunday=0
    for number in range(7)
    for name in (calendar.day_abbr[number].lower(), calendar.day_name[number].lower())
}
FIELDS: dict[str, tuple[int, int, int, dict[str, int]]] = {
    "minute": (0, 59, 59, {}),
    "hour": (0, 23, 23, {}),
    "day_of_week": (0, 7, 6, _DOW_NAMES),  # 7 is Sunday too
    "day_of_month": (1, 31, 31, {}),
    "month_of_year": (1, 12, 12, _MONTH_NAMES),
}
"""The five fields in crontab's argument order: (lowest, highest accepted, highest meant by
``*``, names accepted for numbers)."""
LONGEST_MONTH = {m: 29 if m == 2 else calendar.monthrange(2001, m)[1] for m in range(1, 13)}
"""The most days each month can have (February: 29)."""
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""Cron's shorthands and the five fields each stands for."""


def field_text(name: str, spec: object) -> str:
    """Turn a field given as int, str or iterable of ints into its cron text."""
    if isinstance(spec, str):
        return ",".join(part.strip() for part in spec.strip().lower().split(","))
    if isinstance(spec, bool):
        raise ConfigurationError(f"crontab field {name}: expected int, str or ints, got {spec!r}")
    if isinstance(spec, int):
        return str(spec)
    if isinstance(spec, Iterable):
        values = list(spec)
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ConfigurationError(
                f"crontab field {name}: expected a non-empty list of ints, got {spec!r}"
            )
        return ",".join(str(v) for v in sorted(set(values)))
    raise ConfigurationError(f"crontab field {name}: expected int, str or ints, got {spec!r}")


def parse_field(name: str, text: str) -> frozenset[int]:
    """Expand cron text (``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``, ``a/n``, lists) to values."""
    low, high, star_high, names = FIELDS[name]

    def bad(reason: str) -> ConfigurationError:
        return ConfigurationError(f"crontab field {name}={text!r}: {reason}")

    def number(token: str) -> int:
        if token.isascii() and token.isdigit():
            value = int(token)
        elif token in names:
            value = names[token]
        else:
            raise bad(f"invalid value {token!r}")
        if not low <= value <= high:
            raise bad(f"{value} is out of range {low}-{high}")
        return value

    values: set[int] = set()
    for part in text.split(","):
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
                raise bad(f"invalid step in {part!r}")
            step = int(step_text)
        if body == "*":
            first, last = low, star_high
        elif "-" in body:
            start, _, end = body.partition("-")
            first, last = number(start), number(end)
            if last < first:
                if name != "day_of_week":  # weeks are cyclic: "fri-mon" is meaningful
                    raise bad(f"range {part!r} runs backwards")
                last += 7
        else:
            first = number(body)
            last = star_high if slash else first
        values.update(range(first, last + 1, step))
    if name == "day_of_week":
        return frozenset(v % 7 for v in values)
    return frozenset(values)


def days_restricted(day_of_month: str, day_of_week: str) -> bool:
    """Cron's test for "both day fields restricted": neither starts with ``*``."""
    return not (day_of_month.startswith("*") or day_of_week.startswith("*"))
