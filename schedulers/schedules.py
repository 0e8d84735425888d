"""Periodic schedules for beat: fixed intervals and cron-style ``crontab``.

Pure logic, no I/O. Every public method takes and returns timezone-aware datetimes; fire times
are returned in UTC. See docs/schedules.md for the rules (day matching, time zones, DST).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from actors.errors import ConfigurationError, ConfigurationTypeError
from schedulers.cron_fields import (
    FIELDS,
    LONGEST_MONTH,
    MACROS,
    days_restricted,
    field_text,
    parse_field,
)

__all__ = [
    "Interval",
    "Schedule",
    "crontab",
    "parse_schedule",
    "schedule_from_dict",
    "ticks_between",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_S = 1_000_000

DayRule = Literal["and", "or"]
FieldSpec = int | str | Iterable[int]


@runtime_checkable
class Schedule(Protocol):
    """What beat needs from a schedule."""

    def next_after(self, after: datetime) -> datetime:
        """Return the first fire time strictly after ``after`` (aware), in UTC."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Return plain data (JSON/msgpack-safe); ``schedule_from_dict`` rebuilds the schedule."""
        ...

    def describe(self) -> str:
        """Return a short human description."""
        ...


def _offset(value: datetime) -> timedelta:
    return value.utcoffset() or timedelta(0)


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigurationError(
            f"expected a timezone-aware datetime, got naive {value.isoformat()}"
        )


@dataclass(frozen=True, slots=True)
class Interval:
    """Fire every ``every`` seconds, on ticks anchored to the Unix epoch.

    Fire times are exactly ``k * every`` seconds after 1970-01-01T00:00:00Z (computed in
    integer microseconds), so independent beat replicas agree on every tick.
    """

    every: float
    _step_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        every: object = self.every
        if isinstance(every, bool) or not isinstance(every, int | float):
            raise ConfigurationTypeError(f"interval must be a number of seconds, got {every!r}")
        seconds = float(every)
        if not math.isfinite(seconds) or seconds <= 0:
            raise ConfigurationError(
                f"interval must be a positive number of seconds, got {every!r}"
            )
        step = round(seconds * _US_PER_S)
        if step < 1:
            raise ConfigurationError(f"interval must be at least 1 microsecond, got {every!r}")
        object.__setattr__(self, "every", seconds)
        object.__setattr__(self, "_step_us", step)

    def next_after(self, after: datetime) -> datetime:
        """Return the first epoch-anchored tick strictly after ``after``, in UTC."""
        _require_aware(after)
        delta = after - _EPOCH
        elapsed_us = (delta.days * 86_400 + delta.seconds) * _US_PER_S + delta.microseconds
        ticks = elapsed_us // self._step_us + 1
        return _EPOCH + timedelta(microseconds=ticks * self._step_us)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"type": "interval", "every": seconds}``."""
        return {"type": "interval", "every": self.every}

    def describe(self) -> str:
        """Return e.g. ``"every 30 seconds"``."""
        seconds = int(self.every) if self.every.is_integer() else self.every
        return f"every {seconds} seconds"


def load_zone(tz: object) -> ZoneInfo:
    """The IANA time zone named ``tz``; ValueError, saying what to give, for anything else."""
    if not isinstance(tz, str):
        raise ConfigurationError(f"time zone must be an IANA name like 'Europe/Berlin', got {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigurationError(
            f"unknown time zone {tz!r}: use an IANA name like 'Europe/Berlin'"
        ) from None


@dataclass(frozen=True, slots=True, init=False)
class crontab:
    """Fire at the wall-clock times matching cron fields, in time zone ``tz``.

    Fields take an int, a str (``*``, ``5``, ``1-5``, ``*/15``, ``0-30/10``, ``1,5,10-12``,
    names ``mon``/``monday``, ``jan``/``january``) or an iterable of ints. ``day_of_week``
    counts 0=Sunday (7 is Sunday too). ``day_rule="and"`` (Celery's rule, the default): a day
    must match both ``day_of_month`` and ``day_of_week``. ``day_rule="or"`` (cron's rule, used
    by ``from_cron``): when neither day field starts with ``*``, a day matching either fires.

    ``tz`` is an IANA zone; ``None`` means "the app's zone" (see ``with_default_tz``) and is
    evaluated as UTC until filled. Times are local wall-clock times. DST: a time that does not
    exist (spring-forward gap) fires at fold=0 normalised through UTC (02:30 in Berlin's gap
    fires at 03:30 CEST); a time that occurs twice (fall-back) fires once, at its first
    occurrence. Two wall times landing on the same instant fire once.
    """

    minute: str
    hour: str
    day_of_week: str
    day_of_month: str
    month_of_year: str
    tz: str | None
    day_rule: DayRule
    _minutes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _hours: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _doms: frozenset[int] = field(init=False, repr=False, compare=False)
    _dows: frozenset[int] = field(init=False, repr=False, compare=False)
    _months: frozenset[int] = field(init=False, repr=False, compare=False)
    _either_day: bool = field(init=False, repr=False, compare=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        minute: FieldSpec = "*",
        hour: FieldSpec = "*",
        day_of_week: FieldSpec = "*",
        day_of_month: FieldSpec = "*",
        month_of_year: FieldSpec = "*",
        *,
        tz: str | None = None,
        day_rule: DayRule = "and",
    ) -> None:
        if day_rule not in ("and", "or"):
            raise ConfigurationError(f"crontab day_rule must be 'and' or 'or', got {day_rule!r}")
        texts = {
            "minute": field_text("minute", minute),
            "hour": field_text("hour", hour),
            "day_of_week": field_text("day_of_week", day_of_week),
            "day_of_month": field_text("day_of_month", day_of_month),
            "month_of_year": field_text("month_of_year", month_of_year),
        }
        sets = {name: parse_field(name, text) for name, text in texts.items()}
        for name, text in texts.items():
            object.__setattr__(self, name, text)
        either = day_rule == "or" and days_restricted(texts["day_of_month"], texts["day_of_week"])
        if not either and not any(
            day <= LONGEST_MONTH[month]
            for month in sets["month_of_year"]
            for day in sets["day_of_month"]
        ):
            raise ConfigurationError(
                f"crontab never fires: day_of_month {texts['day_of_month']!r} does not occur "
                f"in month_of_year {texts['month_of_year']!r}"
            )
        object.__setattr__(self, "tz", tz)
        object.__setattr__(self, "day_rule", day_rule)
        object.__setattr__(self, "_minutes", tuple(sorted(sets["minute"])))
        object.__setattr__(self, "_hours", tuple(sorted(sets["hour"])))
        object.__setattr__(self, "_doms", sets["day_of_month"])
        object.__setattr__(self, "_dows", sets["day_of_week"])
        object.__setattr__(self, "_months", sets["month_of_year"])
        object.__setattr__(self, "_either_day", either)
        object.__setattr__(self, "_zone", load_zone("UTC" if tz is None else tz))

    @classmethod
    def from_cron(cls, expr: str, tz: str | None = None) -> crontab:
        """Parse ``"minute hour day-of-month month day-of-week"`` or a macro like ``@daily``.

        Uses cron's day rule: when both day fields are restricted, either may match.
        """
        if not isinstance(expr, str):
            raise ConfigurationTypeError(f"cron expression must be a str, got {expr!r}")
        text = expr.strip().lower()
        if text.startswith("@"):
            if text not in MACROS:
                raise ConfigurationError(f"unknown cron macro {expr!r}; known: {', '.join(MACROS)}")
            text = MACROS[text]
        fields = text.split()
        if len(fields) != 5:
            raise ConfigurationError(
                f"cron expression {expr!r} must have 5 fields "
                f"(minute hour day-of-month month day-of-week), got {len(fields)}"
            )
        minute, hour, dom, month, dow = fields
        return cls(minute, hour, dow, dom, month, tz=tz, day_rule="or")

    def with_default_tz(self, tz: str) -> crontab:
        """Return a copy evaluated in ``tz`` if this schedule has no zone of its own."""
        load_zone(tz)
        return self if self.tz is not None else replace(self, tz=tz)

    def next_after(self, after: datetime) -> datetime:
        """Return the first fire time strictly after ``after``, in UTC."""
        _require_aware(after)
        zone = self._zone
        local = after.astimezone(zone)
        # A fire time after `after` can have an earlier wall time only across a DST change in
        # the last day (a gap time moved forward, or the clock set back): start that far back.
        day_before = (after - timedelta(days=1)).astimezone(zone)
        margin = abs(_offset(local) - _offset(day_before))
        start = local.replace(tzinfo=None, second=0, microsecond=0) - margin
        best: datetime | None = None
        best_wall = datetime.max
        for wall in self._walls_from(start):
            if wall > best_wall:  # later walls can only map to later instants
                break
            instant = wall.replace(tzinfo=zone).astimezone(UTC)
            if instant > after and (best is None or instant < best):
                best = instant
                best_wall = instant.astimezone(zone).replace(tzinfo=None, fold=0)
        if best is None:
            raise ConfigurationError(
                f"{self.describe()} has no fire time after {after.isoformat()}"
            )
        return best

    def _walls_from(self, start: datetime) -> Iterator[datetime]:
        """Yield matching naive wall-clock times at or after ``start``, in order."""
        year, month, first_month = start.year, start.month, True
        while year <= 9999:
            if month in self._months:
                weekday_of_first, days = calendar.monthrange(year, month)
                for day in range(start.day if first_month else 1, days + 1):
                    dow = (weekday_of_first + day) % 7  # cron numbering, 0=Sunday
                    in_dom, in_dow = day in self._doms, dow in self._dows
                    if not ((in_dom or in_dow) if self._either_day else (in_dom and in_dow)):
                        continue
                    first_day = first_month and day == start.day
                    for hour in self._hours:
                        if first_day and hour < start.hour:
                            continue
                        low = start.minute if first_day and hour == start.hour else 0
                        for minute in self._minutes:
                            if minute >= low:
                                yield datetime(year, month, day, hour, minute)
            first_month = False
            month = month % 12 + 1
            year += month == 1

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as cron text plus ``tz`` and ``day_rule``."""
        fields = {name: getattr(self, name) for name in FIELDS}
        return {"type": "crontab", **fields, "tz": self.tz, "day_rule": self.day_rule}

    def describe(self) -> str:
        """Return e.g. ``"cron 0 3 * * * in Europe/Berlin"``."""
        fields = (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        days = ""
        if days_restricted(self.day_of_month, self.day_of_week):
            days = f" (day of month {self.day_rule.upper()} day of week)"
        return f"cron {' '.join(fields)} in {self.tz or 'the app time zone'}{days}"


def parse_schedule(
    value: float | int | timedelta | Schedule | str, tz: str | None = None
) -> Schedule:
    """Turn a ``beat_schedule`` entry's ``schedule`` value into a Schedule.

    Accepts seconds (int/float > 0) or a timedelta (an Interval), a 5-field cron string or
    macro (``crontab.from_cron``), or a Schedule (returned as is; a crontab without a zone
    gets ``tz``).
    """
    accepted = "seconds (int/float > 0), a timedelta, a cron string, or a Schedule"
    if isinstance(value, bool):
        raise ConfigurationTypeError(f"schedule must be {accepted}, got {value!r}")
    if isinstance(value, int | float):
        return Interval(float(value))
    if isinstance(value, timedelta):
        return Interval(value.total_seconds())
    if isinstance(value, str):
        return crontab.from_cron(value, tz=tz)
    if isinstance(value, crontab):
        return value.with_default_tz(tz) if tz is not None else value
    if isinstance(value, Schedule):
        return value
    raise ConfigurationTypeError(
        f"schedule must be {accepted}, got {type(value).__name__}: {value!r}"
    )


def schedule_from_dict(d: dict[str, Any]) -> Schedule:
    """Rebuild a schedule from ``to_dict()`` output. Unknown keys are ignored."""
    if not isinstance(d, dict):
        raise ConfigurationTypeError(f"schedule data must be a dict, got {type(d).__name__}")
    kind = d.get("type")
    if kind == "interval":
        every = d.get("every")
        if isinstance(every, bool) or not isinstance(every, int | float):
            raise ConfigurationError(f"interval schedule needs a number 'every', got {every!r}")
        return Interval(float(every))
    if kind == "crontab":
        fields = {name: d.get(name, "*") for name in FIELDS}
        return crontab(**fields, tz=d.get("tz"), day_rule=d.get("day_rule", "and"))
    raise ConfigurationError(f"unknown schedule type {kind!r}; expected 'interval' or 'crontab'")


def ticks_between(schedule: Schedule, start: datetime, end: datetime) -> Iterator[datetime]:
    """Yield every fire time in ``(start, end]``, in UTC, oldest first."""
    _require_aware(end)
    tick = schedule.next_after(start)
    while tick <= end:
        yield tick
        tick = schedule.next_after(tick)
