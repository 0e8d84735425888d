"""Beat's decisions (catch-up, claims, takeover) and entry validation, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import App, ConfigurationError
from schedulers import Interval, crontab, tick_task_id
from schedulers.entries import Override, effective_entries, entry_key, parse_entry
from schedulers.policy import (
    MISSED_COUNT_CAP,
    Fire,
    Policy,
    TickState,
    Wait,
    abandoned,
    next_action,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
POLICY = Policy(lease=5.0, grace=2.0)
EVERY_SECOND = Interval(1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_waits_for_the_first_tick_after_since() -> None:
    state = TickState(since=at(0.4))
    assert next_action(EVERY_SECOND, state, at(0.5), POLICY) == Wait(until=at(1))


def test_fires_a_due_tick_on_time() -> None:
    state = TickState(since=at(0.4))
    assert next_action(EVERY_SECOND, state, at(1.003), POLICY) == Fire(tick=at(1))


def test_a_late_but_not_missed_tick_fires_each_in_order() -> None:
    state = TickState(since=T0, tick=at(1))
    # 1.5 s late (within grace): the oldest due tick fires first, then the next.
    assert next_action(EVERY_SECOND, state, at(3.5), POLICY) == Fire(tick=at(2))
    after = TickState(since=T0, tick=at(2))
    assert next_action(EVERY_SECOND, after, at(3.5), POLICY) == Fire(tick=at(3))


def test_missed_ticks_are_coalesced_into_the_newest_once() -> None:
    state = TickState(since=T0, tick=at(10))
    action = next_action(EVERY_SECOND, state, at(60.2), POLICY)
    assert action == Fire(tick=at(60), missed=49)
    resumed = TickState(since=T0, tick=at(60))
    assert next_action(EVERY_SECOND, resumed, at(60.3), POLICY) == Wait(until=at(61))


def test_catch_up_after_very_long_downtime_is_cheap_and_exact() -> None:
    state = TickState(since=T0, tick=at(0))
    now = at(86_400 * 30 + 0.5)  # a month of a 1-second schedule
    action = next_action(EVERY_SECOND, state, now, POLICY)
    assert isinstance(action, Fire)
    assert action.tick == at(86_400 * 30)
    assert action.missed == MISSED_COUNT_CAP


def test_a_fresh_claim_is_left_to_its_owner() -> None:
    state = TickState(since=T0, tick=at(1)).claim(at(1), "other", at(1.001))
    action = next_action(EVERY_SECOND, state, at(1.2), POLICY)
    assert action == Wait(until=at(2))  # next tick comes before the lease ends
    slow = Interval(60)
    state = TickState(since=T0, tick=at(60)).claim(at(60), "other", at(60.001))
    assert next_action(slow, state, at(61), POLICY) == Wait(until=at(65.001))


def test_a_stalled_claim_is_taken_over_with_the_same_tick() -> None:
    state = TickState(since=T0, tick=at(0)).claim(at(1), "dead", at(1.001))
    assert next_action(EVERY_SECOND, state, at(6.5), POLICY) == Fire(tick=at(1), retry=True)
    assert not abandoned(state, at(6.5), POLICY)


def test_a_claim_older_than_the_dedupe_window_is_taken_as_published() -> None:
    state = TickState(since=T0, tick=at(0)).claim(at(1), "dead", at(1))
    now = at(1 + POLICY.window)
    assert abandoned(state, now, POLICY)
    action = next_action(EVERY_SECOND, state, now, POLICY)
    assert action == Fire(tick=at(121), missed=119)


def test_no_catch_up_before_the_entry_was_enabled() -> None:
    state = TickState(since=T0, tick=at(10))
    action = next_action(EVERY_SECOND, state, at(100.5), POLICY, not_before=at(100.2))
    assert action == Wait(until=at(101))


def test_crontab_catch_up_runs_the_last_missed_day_once() -> None:
    nightly = crontab(minute=0, hour=3, tz="Europe/Berlin")
    state = TickState(since=T0, tick=datetime(2024, 5, 1, 1, 0, tzinfo=UTC))
    now = datetime(2024, 5, 4, 12, 0, tzinfo=UTC)
    action = next_action(nightly, state, now, POLICY)
    assert action == Fire(tick=datetime(2024, 5, 4, 1, 0, tzinfo=UTC), missed=2)


def test_policy_rejects_a_lease_too_long_for_the_dedupe_window() -> None:
    with pytest.raises(ValueError, match="lease"):
        Policy(lease=60)


def test_tick_state_round_trips() -> None:
    state = TickState(since=T0, tick=at(3)).claim(at(4), "me", at(4.25))
    assert TickState.from_dict(state.to_dict()) == state
    assert TickState.from_dict(state.confirm().to_dict()).published


@settings(max_examples=300, deadline=None)
@given(
    every=st.sampled_from([0.5, 1, 7, 60, 3600]),
    last=st.floats(min_value=0, max_value=10_000),
    elapsed=st.floats(min_value=0, max_value=20_000),
)
def test_fired_ticks_are_schedule_ticks_after_the_last_and_not_in_the_future(
    every: float, last: float, elapsed: float
) -> None:
    schedule = Interval(every)
    last_tick = schedule.next_after(at(last))
    now = last_tick + timedelta(seconds=elapsed)
    action = next_action(schedule, TickState(since=T0, tick=last_tick), now, POLICY)
    if isinstance(action, Wait):
        assert action.until == schedule.next_after(last_tick) > now
        return
    assert last_tick < action.tick <= now
    assert schedule.next_after(action.tick - timedelta(microseconds=1)) == action.tick
    if action.missed:  # coalesced: it is the newest due tick
        assert schedule.next_after(action.tick) > now
    else:  # on time: it is the first tick after the last one
        assert action.tick == schedule.next_after(last_tick)


# -- entries ---------------------------------------------------------------------------------


def test_entry_accepts_the_documented_forms() -> None:
    entry = parse_entry(
        "nightly",
        {"task": "tasks.report", "schedule": "0 3 * * *", "kwargs": {"full": True}},
        "Europe/Berlin",
    )
    assert entry.schedule.to_dict()["tz"] == "Europe/Berlin"
    seconds = parse_entry("s", {"task": "tasks.add", "schedule": 30, "args": (16, 16)}, "UTC")
    assert seconds.schedule == Interval(30) and seconds.args == [16, 16]
    own_tz = parse_entry("t", {"task": "a.b", "schedule": "@daily", "tz": "Asia/Tokyo"}, "UTC")
    assert own_tz.schedule.next_after(T0) == datetime(2024, 5, 1, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"task": "a.b"}, "misses 'schedule'"),
        ({"task": "a.b", "schedule": 1, "kwarg": {}}, "did you mean 'kwargs'"),
        ({"task": "a b", "schedule": 1}, "invalid task name"),
        ({"task": "a.b", "schedule": -1}, "positive"),
        ({"task": "a.b", "schedule": "61 * * * *"}, "out of range"),
        ({"task": "a.b", "schedule": 1, "options": {"countdownn": 3}}, "unknown option"),
        ({"task": "a.b", "schedule": 1, "options": {"task_id": "x"}}, "unknown option"),
        ({"task": "a.b", "schedule": 1, "args": [object()]}, "cannot be sent"),
        ({"task": "a.b", "schedule": 1, "enabled": "yes"}, "True or False"),
        ({"task": "a.b", "schedule": 1, "tz": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_bad_entries_fail_with_a_clear_message(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_entry("bad", spec, "UTC")


def test_entry_keys_are_kv_safe_and_distinct() -> None:
    assert entry_key("cleanup-every_5") == "cleanup-every_5"
    assert entry_key("add every 10") != entry_key("add_every_10")
    assert entry_key("add every 10").startswith("=")
    assert all(ch.isalnum() or ch in "-_=" for ch in entry_key("ünïcode / name.x"))


def test_stored_entries_merge_with_code_and_switches() -> None:
    code = {"c": parse_entry("c", {"task": "a.b", "schedule": 1}, "UTC")}
    stored = parse_entry("s", {"task": "a.c", "schedule": 2}, "UTC", "store", created_at=T0)
    overrides = {
        "c": Override(name="c", enabled=False, changed_at=T0),
        "s": Override(name="s", entry=stored.to_record(), enabled=True, changed_at=at(5)),
        "x": Override(name="c", entry=stored.to_record()),  # same name as code: ignored
    }
    merged, problems = effective_entries(code, overrides, "UTC")
    assert not merged["c"].enabled
    assert merged["s"].enabled and merged["s"].enabled_at == at(5)
    assert merged["s"].schedule == Interval(2) and merged["s"].created_at == T0
    assert problems == ["stored entry 'c' is shadowed by the entry of that name in code"]


def test_tick_task_id_is_deterministic_and_a_valid_task_id() -> None:
    first = tick_task_id("nightly", at(1))
    assert first == tick_task_id("nightly", at(1))
    assert first != tick_task_id("nightly", at(2)) != tick_task_id("other", at(1))
    assert len(first) == 36


# -- app.add_periodic_task -------------------------------------------------------------------


class _Signature:
    def __init__(self, task: str, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
        self.task, self.args, self.kwargs = task, args, kwargs
        self.options = {"ignore_result": True}


def test_add_periodic_task_stores_raw_entries() -> None:
    app = App("periodic")

    @app.actor(name="periodic.cleanup")
    def cleanup(days: int = 1, dry: bool = False) -> None:
        return None

    assert app.add_periodic_task(timedelta(minutes=5), cleanup, name="cleanup") == "cleanup"
    assert app.add_periodic_task(10, "periodic.cleanup", args=(3,)) == "periodic.cleanup"
    app.add_periodic_task(60, _Signature("periodic.cleanup", (2,), {"dry": True}), name="sig")
    assert app.conf.beat_schedule["cleanup"]["schedule"] == timedelta(minutes=5)
    assert app.conf.beat_schedule["periodic.cleanup"]["args"] == (3,)
    assert app.conf.beat_schedule["sig"] == {
        "task": "periodic.cleanup",
        "schedule": 60,
        "args": (2,),
        "kwargs": {"dry": True},
        "options": {"ignore_result": True},
    }
    with pytest.raises(ConfigurationError, match="pass name="):
        app.add_periodic_task(20, cleanup, name="cleanup")
    with pytest.raises(ConfigurationError, match="Actor, a task name or a signature"):
        app.add_periodic_task(20, 42)
    entries = [parse_entry(n, s, "UTC") for n, s in app.conf.beat_schedule.items()]
    assert [e.schedule for e in entries] == [Interval(300), Interval(10), Interval(60)]
