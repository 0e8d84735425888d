"""Schedules: interval epoch anchoring, crontab parsing, cron math, time zones and DST."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from schedulers.schedules import (
    Interval,
    Schedule,
    crontab,
    parse_schedule,
    schedule_from_dict,
    ticks_between,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def local(tz: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz), fold=fold)


def ticks(schedule: Schedule, start: datetime, days: float) -> list[datetime]:
    return list(ticks_between(schedule, start, start + timedelta(days=days)))


# --- Interval ---------------------------------------------------------------------------------


def test_interval_ticks_are_multiples_of_every_since_the_epoch() -> None:
    assert Interval(60).next_after(utc(2024, 5, 1, 12, 0, 30)) == utc(2024, 5, 1, 12, 1)
    tick = Interval(7).next_after(utc(2024, 5, 1, 12, 0, 30))
    assert (tick - EPOCH).total_seconds() % 7 == 0
    assert tick - utc(2024, 5, 1, 12, 0, 30) <= timedelta(seconds=7)


def test_interval_is_strictly_after_and_independent_of_the_caller_time() -> None:
    every = Interval(30)
    tick = every.next_after(utc(2024, 5, 1, 12, 0, 10))
    assert tick == utc(2024, 5, 1, 12, 0, 30)
    assert every.next_after(tick) == utc(2024, 5, 1, 12, 1)
    # two replicas with different clocks inside the same period agree on the tick
    assert every.next_after(utc(2024, 5, 1, 12, 0, 29, 999_999)) == tick


@pytest.mark.parametrize(
    ("every", "after", "expected"),
    [
        (0.5, utc(2024, 3, 1, 0, 0, 0, 100_000), utc(2024, 3, 1, 0, 0, 0, 500_000)),
        (0.5, utc(2024, 3, 1, 0, 0, 0, 500_000), utc(2024, 3, 1, 0, 0, 1)),
        (1.5, utc(2024, 3, 1), utc(2024, 3, 1, 0, 0, 1, 500_000)),
        (1.5, utc(2024, 3, 1, 0, 0, 1, 499_999), utc(2024, 3, 1, 0, 0, 1, 500_000)),
        (0.1, utc(2024, 3, 1, 0, 0, 0, 250_000), utc(2024, 3, 1, 0, 0, 0, 300_000)),
    ],
)
def test_interval_float_seconds_are_exact(
    every: float, after: datetime, expected: datetime
) -> None:
    assert Interval(every).next_after(after) == expected


def test_interval_accepts_any_zone_and_returns_utc() -> None:
    tick = Interval(3600).next_after(local("Asia/Tokyo", 2024, 5, 1, 9, 30))
    assert tick == utc(2024, 5, 1, 1) and tick.tzinfo is UTC


@pytest.mark.parametrize("every", [0, -1, float("nan"), float("inf"), 1e-9])
def test_interval_rejects_non_positive_values(every: float) -> None:
    with pytest.raises(ValueError, match="interval must be"):
        Interval(every)


def test_interval_rejects_booleans_and_naive_datetimes() -> None:
    with pytest.raises(TypeError):
        Interval(True)
    with pytest.raises(ValueError, match="timezone-aware"):
        Interval(1).next_after(datetime(2024, 1, 1))


@given(
    step_us=st.integers(1, 10 * 86_400 * 1_000_000),
    after=st.datetimes(datetime(1971, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)),
)
def test_interval_property_next_tick_is_the_first_multiple_after(
    step_us: int, after: datetime
) -> None:
    schedule = Interval(step_us / 1_000_000)
    tick = schedule.next_after(after)
    step = timedelta(microseconds=step_us)
    assert after < tick <= after + step
    assert (tick - EPOCH) % step == timedelta(0)


# --- crontab parsing --------------------------------------------------------------------------


def fire_minutes(schedule: crontab) -> list[int]:
    start = utc(2024, 1, 1) - timedelta(microseconds=1)
    return [t.minute for t in ticks_between(schedule, start, utc(2024, 1, 1, 0, 59))]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("*/15", [0, 15, 30, 45]),
        ("10-20/5", [10, 15, 20]),
        ("50/4", [50, 54, 58]),
        ("1,5,10-12", [1, 5, 10, 11, 12]),
        (" 7 , 3 ", [3, 7]),
        (42, [42]),
        ([30, 5, 5], [5, 30]),
        (range(0, 60, 20), [0, 20, 40]),
    ],
)
def test_crontab_minute_syntax(spec: int | str | Iterable[int], expected: list[int]) -> None:
    assert fire_minutes(crontab(minute=spec)) == expected


def weekdays(schedule: crontab) -> list[str]:
    # 2024-01-07 is a Sunday
    fired = ticks(schedule, utc(2024, 1, 7) - timedelta(microseconds=1), days=7)
    return [t.strftime("%a") for t in fired]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("SUN,Saturday", ["Sun", "Sat"]),
        (0, ["Sun"]),
        (7, ["Sun"]),
        ("5-7", ["Sun", "Fri", "Sat"]),
        ("fri-mon", ["Sun", "Mon", "Fri", "Sat"]),
        ("*/2", ["Sun", "Tue", "Thu", "Sat"]),
        ([1, 3], ["Mon", "Wed"]),
    ],
)
def test_crontab_day_of_week_names_and_numbers(spec: str | int, expected: list[str]) -> None:
    assert weekdays(crontab(minute=0, hour=0, day_of_week=spec)) == expected


def test_crontab_month_names() -> None:
    schedule = crontab(minute=0, hour=0, day_of_month=1, month_of_year="jan,JUL-aug,december")
    fired = ticks(schedule, utc(2024, 1, 1) - timedelta(microseconds=1), days=366)
    assert [t.month for t in fired] == [1, 7, 8, 12]


def test_crontab_normalises_fields_to_cron_text() -> None:
    schedule = crontab(minute=[5, 0, 5], hour=3, day_of_week=" MON-Fri ")
    assert (schedule.minute, schedule.hour, schedule.day_of_week) == ("0,5", "3", "mon-fri")
    assert schedule == crontab(minute="0,5", hour="3", day_of_week="mon-fri")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("minute", "60"),
        ("minute", "-1"),
        ("minute", "a"),
        ("minute", "5-1"),
        ("minute", "*/0"),
        ("minute", "5/"),
        ("minute", "1,,2"),
        ("minute", ""),
        ("minute", "1.5"),
        ("hour", "24"),
        ("hour", True),
        ("hour", []),
        ("hour", [1, "2"]),
        ("hour", 1.5),
        ("day_of_month", "0"),
        ("day_of_month", "32"),
        ("month_of_year", "13"),
        ("month_of_year", "foo"),
        ("day_of_week", "8"),
        ("day_of_week", "funday"),
    ],
)
def test_crontab_rejects_bad_fields_naming_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field) as caught:
        crontab(**{field: value})  # type: ignore[arg-type]
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"day_of_month": 30, "month_of_year": 2},
        {"day_of_month": "31", "month_of_year": "apr,jun,sep,nov"},
    ],
)
def test_crontab_that_can_never_fire_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="never fires"):
        crontab(**kwargs)  # type: ignore[arg-type]


def test_crontab_rejects_bad_time_zone_and_day_rule() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        crontab(tz="Mars/Olympus")
    with pytest.raises(ValueError, match="unknown time zone"):
        crontab(tz="")
    with pytest.raises(ValueError, match="unknown time zone"):
        crontab().with_default_tz("Europe")
    with pytest.raises(ValueError, match="day_rule"):
        crontab(day_rule="xor")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("@reboot", "unknown cron macro"),
        ("0 0 30 2 *", "never fires"),
        ("61 * * * *", "minute"),
    ],
)
def test_from_cron_errors(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        crontab.from_cron(expr)


@pytest.mark.parametrize(
    ("macro", "expanded"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@ANNUALLY", "0 0 1 1 *"),
    ],
)
def test_cron_macros(macro: str, expanded: str) -> None:
    assert crontab.from_cron(macro) == crontab.from_cron(expanded)


def test_weekly_macro_fires_sunday_midnight() -> None:
    assert crontab.from_cron("@weekly").next_after(utc(2024, 1, 3)) == utc(2024, 1, 7)


# --- next fire time ---------------------------------------------------------------------------


def test_next_fire_across_month_end() -> None:
    schedule = crontab(minute=0, hour=0, day_of_month=31)
    assert schedule.next_after(utc(2024, 4, 15)) == utc(2024, 5, 31)
    assert schedule.next_after(utc(2024, 5, 31)) == utc(2024, 7, 31)


def test_next_fire_from_december_31_into_january() -> None:
    assert crontab(minute=0, hour=0).next_after(utc(2024, 12, 31, 23, 59, 59)) == utc(2025, 1, 1)
    new_years_eve = crontab(minute=59, hour=23, day_of_month=31, month_of_year=12)
    assert new_years_eve.next_after(utc(2024, 12, 31, 23, 59)) == utc(2025, 12, 31, 23, 59)


def test_february_29_fires_only_in_leap_years() -> None:
    leap_day = crontab(minute=0, hour=0, day_of_month=29, month_of_year=2)
    assert leap_day.next_after(utc(2024, 2, 29)) == utc(2028, 2, 29)
    assert leap_day.next_after(utc(2025, 1, 1)) == utc(2028, 2, 29)
    assert leap_day.next_after(utc(2096, 2, 29)) == utc(2104, 2, 29)  # 2100 is not a leap year


def test_rare_day_combination_is_found_quickly() -> None:
    # Feb 29 that is also a Monday (AND rule): decades away, found without a minute scan
    schedule = crontab(minute=0, hour=0, day_of_month=29, month_of_year=2, day_of_week="mon")
    assert schedule.next_after(utc(2024, 3, 1)) == utc(2044, 2, 29)


def test_day_rule_and_requires_both_day_fields() -> None:
    friday_13th = crontab(minute=0, hour=0, day_of_month=13, day_of_week="fri")
    assert friday_13th.day_rule == "and"
    assert friday_13th.next_after(utc(2024, 1, 1)) == utc(2024, 9, 13)


def test_day_rule_or_from_cron_fires_on_either_day_field() -> None:
    schedule = crontab.from_cron("0 0 13 * fri")
    assert schedule.day_rule == "or"
    fired = ticks(schedule, utc(2024, 1, 1), days=15)
    assert fired == [utc(2024, 1, 5), utc(2024, 1, 12), utc(2024, 1, 13)]


def test_day_rule_or_applies_only_when_both_day_fields_are_restricted() -> None:
    # cron treats a field starting with "*" as unrestricted, so "*/2" ANDs with day_of_week
    schedule = crontab.from_cron("0 0 */2 * mon")
    assert ticks(schedule, utc(2024, 1, 1) - timedelta(seconds=1), days=31) == [
        utc(2024, 1, 1),
        utc(2024, 1, 15),
        utc(2024, 1, 29),
    ]
    # an impossible day of month still fires on the day of week under the OR rule
    assert crontab.from_cron("0 0 30 2 mon").next_after(utc(2024, 1, 1)) == utc(2024, 2, 5)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        crontab().next_after(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        list(ticks_between(crontab(), utc(2024, 1, 1), datetime(2024, 1, 2)))


# --- time zones -------------------------------------------------------------------------------


def test_tokyo_nine_is_midnight_utc() -> None:
    schedule = crontab(minute=0, hour=9, tz="Asia/Tokyo")
    assert schedule.next_after(utc(2024, 5, 1)) == utc(2024, 5, 2)
    assert schedule.next_after(utc(2024, 5, 1)).tzinfo is UTC
    # the input may be in any zone
    assert schedule.next_after(local("America/Los_Angeles", 2024, 5, 1, 8)) == utc(2024, 5, 2)


def test_with_default_tz_fills_only_a_missing_zone() -> None:
    unset = crontab(minute=0, hour=9)
    assert unset.next_after(utc(2024, 5, 1)) == utc(2024, 5, 1, 9)  # evaluated as UTC
    tokyo = unset.with_default_tz("Asia/Tokyo")
    assert tokyo.tz == "Asia/Tokyo" and tokyo.next_after(utc(2024, 5, 1)) == utc(2024, 5, 2)
    berlin = crontab(minute=0, hour=9, tz=BERLIN)
    assert berlin.with_default_tz("Asia/Tokyo") is berlin


# --- DST --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "hour", "day", "expected"),
    [
        # Berlin springs forward 2024-03-31 02:00 CET -> 03:00 CEST: 02:30 fires at 03:30 CEST
        (BERLIN, 2, utc(2024, 3, 30), utc(2024, 3, 31, 1, 30)),
        # Berlin falls back 2024-10-27 03:00 CEST -> 02:00 CET: first 02:30 (CEST) only
        (BERLIN, 2, utc(2024, 10, 26), utc(2024, 10, 27, 0, 30)),
        # New York springs forward 2024-03-10 02:00 EST -> 03:00 EDT
        (NEW_YORK, 2, utc(2024, 3, 9, 12), utc(2024, 3, 10, 7, 30)),
        # New York falls back 2024-11-03 02:00 EDT -> 01:00 EST: first 01:30 (EDT) only
        (NEW_YORK, 1, utc(2024, 11, 2, 12), utc(2024, 11, 3, 5, 30)),
    ],
)
def test_daily_job_runs_once_on_dst_transition_days(
    tz: str, hour: int, day: datetime, expected: datetime
) -> None:
    schedule = crontab(minute=30, hour=hour, tz=tz)
    fired = ticks(schedule, day, days=3)
    assert expected in fired
    local_days = [t.astimezone(ZoneInfo(tz)).date() for t in fired]
    assert len(fired) == 3 and len(set(local_days)) == 3


def test_hourly_job_through_berlin_fall_back_fires_each_wall_time_once() -> None:
    fired = ticks(crontab(minute=0, tz=BERLIN), utc(2024, 10, 26, 22, 30), days=5 / 24)
    walls = [t.astimezone(ZoneInfo(BERLIN)).strftime("%H:%M %Z") for t in fired]
    assert walls == ["01:00 CEST", "02:00 CEST", "03:00 CET", "04:00 CET"]


def test_hourly_job_through_berlin_spring_forward_stays_hourly() -> None:
    fired = ticks(crontab(minute=0, tz=BERLIN), utc(2024, 3, 30, 22, 30), days=4 / 24)
    assert fired == [
        utc(2024, 3, 30, 23),
        utc(2024, 3, 31, 0),
        utc(2024, 3, 31, 1),
        utc(2024, 3, 31, 2),
    ]
    walls = [t.astimezone(ZoneInfo(BERLIN)).strftime("%H:%M %Z") for t in fired]
    assert walls == ["00:00 CET", "01:00 CET", "03:00 CEST", "04:00 CEST"]


def test_gap_time_landing_on_another_scheduled_time_fires_once() -> None:
    schedule = crontab(minute=30, hour="2,3", tz=BERLIN)
    assert ticks(schedule, utc(2024, 3, 31), days=0.5) == [utc(2024, 3, 31, 1, 30)]
    # 02:15/02:45 move to 03:15/03:45 CEST, the same instants as 03:15/03:45: in order, once
    schedule = crontab(minute="15,45", hour="2,3", tz=BERLIN)
    assert ticks(schedule, utc(2024, 3, 31), days=0.5) == [
        utc(2024, 3, 31, 1, 15),
        utc(2024, 3, 31, 1, 45),
    ]


def test_after_inside_the_repeated_hour() -> None:
    second_0230 = local(BERLIN, 2024, 10, 27, 2, 30, fold=1)  # 01:30 UTC, CET
    assert crontab(minute="*/20", tz=BERLIN).next_after(second_0230) == utc(2024, 10, 27, 2)
    assert crontab(minute=30, hour=2, tz=BERLIN).next_after(second_0230) == utc(2024, 10, 28, 1, 30)


# --- serialisation and parse_schedule ---------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        Interval(30),
        Interval(0.5),
        crontab(),
        crontab(minute="*/5", hour="9-17", day_of_week="mon-fri", tz=BERLIN),
        crontab(minute=0, hour=0, day_of_month=13, day_of_week=5),
        crontab.from_cron("0 0 13 * fri", tz=NEW_YORK),
    ],
)
def test_to_dict_round_trip(schedule: Schedule) -> None:
    data = json.loads(json.dumps(schedule.to_dict()))
    rebuilt = schedule_from_dict(data)
    assert rebuilt == schedule
    assert rebuilt.next_after(utc(2024, 1, 1)) == schedule.next_after(utc(2024, 1, 1))


def test_to_dict_shapes() -> None:
    assert Interval(30).to_dict() == {"type": "interval", "every": 30.0}
    assert crontab.from_cron("0 3 * * *", tz=BERLIN).to_dict() == {
        "type": "crontab",
        "minute": "0",
        "hour": "3",
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "tz": BERLIN,
        "day_rule": "or",
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"type": "solar"}, ValueError),
        ({}, ValueError),
        ({"type": "interval"}, ValueError),
        ({"type": "interval", "every": "30"}, ValueError),
        ({"type": "crontab", "minute": "99"}, ValueError),
        ([("type", "interval")], TypeError),
    ],
)
def test_schedule_from_dict_errors(data: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        schedule_from_dict(data)  # type: ignore[arg-type]


def test_describe() -> None:
    assert Interval(30).describe() == "every 30 seconds"
    assert crontab(minute=0, hour=3, tz=BERLIN).describe() == "cron 0 3 * * * in Europe/Berlin"
    described = crontab.from_cron("0 0 13 * fri").describe()
    assert "app time zone" in described and "OR" in described


def test_parse_schedule_accepted_values() -> None:
    assert parse_schedule(30) == Interval(30.0)
    assert parse_schedule(0.5) == Interval(0.5)
    assert parse_schedule(timedelta(minutes=5)) == Interval(300)
    assert parse_schedule("*/5 * * * *") == crontab.from_cron("*/5 * * * *")
    assert parse_schedule("@daily", tz=BERLIN) == crontab.from_cron("@daily", tz=BERLIN)
    assert parse_schedule(crontab(hour=3), tz=BERLIN) == crontab(hour=3, tz=BERLIN)
    tokyo = crontab(hour=3, tz="Asia/Tokyo")
    assert parse_schedule(tokyo, tz=BERLIN) is tokyo
    interval = Interval(10)
    assert parse_schedule(interval) is interval


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-5, ValueError),
        (timedelta(0), ValueError),
        (True, TypeError),
        (None, TypeError),
        ([1], TypeError),
        ("30", ValueError),
    ],
)
def test_parse_schedule_rejects(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"schedule must be|interval must be|5 fields"):
        parse_schedule(value)  # type: ignore[arg-type]


def test_ticks_between_is_half_open() -> None:
    quarter = crontab(minute="*/15")
    fired = list(ticks_between(quarter, utc(2024, 1, 1), utc(2024, 1, 1, 1)))
    assert fired == [utc(2024, 1, 1, 0, m) for m in (15, 30, 45)] + [utc(2024, 1, 1, 1)]
    assert len(ticks(quarter, utc(2024, 1, 1), days=1)) == 96


# --- properties -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A crontab and the value sets it should match, built independently of the parser."""

    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    doms: frozenset[int] | None
    months: frozenset[int] | None
    dows: frozenset[int] | None
    day_rule: str
    tz: str

    def build(self) -> crontab:
        def text(values: frozenset[int] | None) -> str | list[int]:
            return "*" if values is None else sorted(values)

        return crontab(
            text(self.minutes),
            text(self.hours),
            text(self.dows),
            text(self.doms),
            text(self.months),
            tz=self.tz,
            day_rule="or" if self.day_rule == "or" else "and",
        )

    def matches(self, wall: datetime) -> bool:
        def ok(values: frozenset[int] | None, value: int) -> bool:
            return values is None or value in values

        in_dom, in_dow = ok(self.doms, wall.day), ok(self.dows, wall.isoweekday() % 7)
        either = self.day_rule == "or" and self.doms is not None and self.dows is not None
        day_ok = (in_dom or in_dow) if either else (in_dom and in_dow)
        return (
            day_ok
            and ok(self.minutes, wall.minute)
            and ok(self.hours, wall.hour)
            and ok(self.months, wall.month)
        )


def value_set(low: int, high: int, size: int) -> st.SearchStrategy[frozenset[int] | None]:
    return st.none() | st.frozensets(st.integers(low, high), min_size=1, max_size=size)


def specs(zones: list[str], dense: bool = False) -> st.SearchStrategy[Spec]:
    # dense: large day sets and every month, so a 2-day window usually has fire times
    dense_days = st.none() | st.frozensets(st.integers(1, 31), min_size=20)
    return st.builds(
        Spec,
        minutes=value_set(0, 59, 8),
        hours=value_set(0, 23, 8),
        doms=dense_days if dense else value_set(1, 31, 10),
        months=st.none() if dense else value_set(1, 12, 4),
        dows=value_set(0, 6, 6),
        day_rule=st.sampled_from(["and", "or"]),
        tz=st.sampled_from(zones),
    )


def build_or_reject(spec: Spec) -> crontab:
    try:
        return spec.build()
    except ValueError as exc:
        assert "never fires" in str(exc)

        reject()


def resolve(wall: datetime, tz: str) -> datetime:
    """The documented DST rule: read the wall time with fold=0, normalise through UTC."""
    return wall.replace(tzinfo=ZoneInfo(tz), fold=0).astimezone(UTC)


ZONES = ["UTC", BERLIN, NEW_YORK, "Australia/Lord_Howe", "Asia/Kolkata"]
AFTER = st.datetimes(datetime(1980, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None)
@given(spec=specs(ZONES), after=AFTER)
def test_property_next_fire_is_strictly_after_and_matches_in_local_time(
    spec: Spec, after: datetime
) -> None:
    schedule = build_or_reject(spec)
    fire = schedule.next_after(after)
    assert fire > after and fire.tzinfo is UTC
    wall = fire.astimezone(ZoneInfo(spec.tz)).replace(tzinfo=None, fold=0)
    if not spec.matches(wall):
        # the DST-gap case: a matching wall time that does not exist, moved forward by the gap
        earlier = (wall - timedelta(minutes=m) for m in range(1, 121))
        assert any(spec.matches(w) and resolve(w, spec.tz) == fire for w in earlier)
    # nothing is skipped just before the fire time
    assert schedule.next_after(fire - timedelta(microseconds=1)) == fire


def brute_force(spec: Spec, start: datetime, end: datetime) -> list[datetime]:
    zone = ZoneInfo(spec.tz)
    wall = start.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0, fold=0)
    wall -= timedelta(hours=3)  # DST shifts move fire times relative to wall times
    last = end.astimezone(zone).replace(tzinfo=None) + timedelta(hours=3)
    fired: set[datetime] = set()
    while wall <= last:
        if spec.matches(wall):
            instant = resolve(wall, spec.tz)
            if start < instant <= end:
                fired.add(instant)
        wall += timedelta(minutes=1)
    return sorted(fired)


@settings(max_examples=40, deadline=None)
@given(spec=specs(["UTC"], dense=True), start=AFTER)
def test_property_matches_minute_scan_in_utc(spec: Spec, start: datetime) -> None:
    schedule = build_or_reject(spec)
    end = start + timedelta(days=2)
    assert list(ticks_between(schedule, start, end)) == brute_force(spec, start, end)


TRANSITIONS = [
    (BERLIN, utc(2024, 3, 31, 1)),
    (BERLIN, utc(2024, 10, 27, 1)),
    (NEW_YORK, utc(2024, 3, 10, 7)),
    (NEW_YORK, utc(2024, 11, 3, 6)),
    ("Australia/Lord_Howe", utc(2024, 4, 6, 15)),  # a 30-minute shift
    ("Australia/Lord_Howe", utc(2024, 10, 5, 15, 30)),
]


@settings(max_examples=60, deadline=None)
@given(
    spec=specs(["UTC"], dense=True),
    transition=st.sampled_from(TRANSITIONS),
    shift=st.integers(-36 * 3600 * 10**6, 12 * 3600 * 10**6),
)
def test_property_matches_minute_scan_across_dst_changes(
    spec: Spec, transition: tuple[str, datetime], shift: int
) -> None:
    tz, moment = transition
    spec = replace(spec, tz=tz)
    schedule = build_or_reject(spec)
    start = moment + timedelta(microseconds=shift)
    end = start + timedelta(days=2)
    fired = list(ticks_between(schedule, start, end))
    assert fired == brute_force(spec, start, end)
    assert fired == sorted(set(fired))  # never twice, never going back
