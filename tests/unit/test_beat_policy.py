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
    HELD_POLL,
    MISSED_COUNT_CAP,
    SETTLE,
    Fire,
    Policy,
    TickState,
    Uptime,
    Wait,
    abandoned,
    next_action,
)
from schedulers.schedules import Schedule

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


# -- ticks held up while this replica runs, ticks missed while it did not ----------------------

LONG_UP = at(-3600)  # a replica running since long before the ticks in question


def run(
    schedule: Schedule,
    state: TickState,
    now: datetime,
    until: datetime,
    up_since: datetime | None,
    step: timedelta = timedelta(milliseconds=10),
) -> list[Fire]:
    """Drive one entry like a lone beat loop from ``now`` to ``until``: each claim is confirmed
    ``step`` after it is made. Returns every Fire, in order."""
    fired: list[Fire] = []
    while now <= until:
        action = next_action(schedule, state, now, POLICY, up_since=up_since)
        if isinstance(action, Wait):
            assert action.until > now
            now = action.until
            continue
        fired.append(action)
        state = state.claim(action.tick, "me", now).confirm()
        now += step
    return fired


def test_ticks_held_up_by_a_stalled_claim_are_each_published_after_the_takeover() -> None:
    # The owner claimed the tick at 1 s and froze: the 5 s lease blocks ticks 2..6.
    stalled = TickState(since=T0, tick=at(0)).claim(at(1), "frozen", at(1.003))
    fired = run(EVERY_SECOND, stalled, at(1.1), at(8.5), up_since=LONG_UP)
    assert fired == [Fire(tick=at(1), retry=True), *(Fire(tick=at(s)) for s in range(2, 9))]
    # A replica that started during the stall (the only one left) was down for ticks 2..4.
    started = run(EVERY_SECOND, stalled, at(4.2), at(8.5), up_since=at(4.1))
    assert [(f.tick, f.missed) for f in started] == [
        (at(1), 0),
        (at(4), 2),
        *((at(t), 0) for t in range(5, 9)),
    ]


def test_a_replica_polls_while_a_claim_holds_up_a_due_tick() -> None:
    held = TickState(since=T0, tick=at(0)).claim(at(1), "frozen", at(1.003))
    now = at(2.5)  # tick 2 is due behind the claim: its owner may confirm at any moment
    assert next_action(EVERY_SECOND, held, now, POLICY) == Wait(now + timedelta(seconds=HELD_POLL))
    assert next_action(EVERY_SECOND, held, at(5.95), POLICY) == Wait(at(6.003))


def test_a_restart_after_downtime_coalesces_the_ticks_before_it_once() -> None:
    state = TickState(since=T0, tick=at(10))
    fired = run(EVERY_SECOND, state, at(60.2), at(62.5), up_since=at(60.1))
    assert fired == [Fire(tick=at(60), missed=49), Fire(tick=at(61)), Fire(tick=at(62))]
    # Ticks due after it started (here while it connected) are each published.
    late_start = run(EVERY_SECOND, state, at(61.2), at(61.5), up_since=at(59.5))
    assert late_start == [Fire(tick=at(59), missed=48), Fire(tick=at(60)), Fire(tick=at(61))]


def test_a_replica_back_from_a_pause_leaves_missed_ticks_to_one_catching_up() -> None:
    # Another replica is publishing held-up ticks one by one (it just claimed tick 3).
    state = TickState(since=T0, tick=at(0)).claim(at(3), "healthy", at(8.04)).confirm()
    resumed = at(8.0)
    assert next_action(EVERY_SECOND, state, at(8.05), POLICY, up_since=resumed) == Wait(
        at(8.04 + SETTLE)
    )
    # Nobody claimed anything for SETTLE: it was the only one, so it coalesces.
    after = at(8.04 + SETTLE)
    assert next_action(EVERY_SECOND, state, after, POLICY, up_since=resumed) == Fire(
        tick=at(8), missed=4
    )


def test_uptime_restarts_after_a_pause_or_when_nats_was_cut_off() -> None:
    uptime = Uptime(at(0), pause=POLICY.pause)
    for step in range(1, 20):
        assert uptime.pulse(at(step * 0.25)) == at(0)
    assert uptime.reached(at(5.1)) == at(0)
    assert uptime.pulse(at(5.1 + POLICY.pause + 0.5)) == at(7.6)  # frozen, then resumed
    uptime.cut_off()
    assert uptime.pulse(at(7.8)) == at(7.6)  # running, but not yet reaching NATS
    assert uptime.reached(at(9)) == at(9)
    assert uptime.reached(at(9.1)) == at(9)
    assert Policy(grace=0).pause == 1.0 and Policy(grace=3).pause == 3.0


@settings(max_examples=300, deadline=None)
@given(
    every=st.sampled_from([0.25, 1, 7, 60]),
    claimed=st.floats(min_value=0, max_value=0.2),
    stall=st.floats(min_value=0, max_value=100),
    up_before=st.floats(min_value=0, max_value=10_000),
)
def test_a_replica_that_was_up_publishes_every_tick_held_up_by_a_claim_once(
    every: float, claimed: float, stall: float, up_before: float
) -> None:
    """However long the claim stalled (within the dedupe window), every tick due meanwhile
    is published once, in order, and nothing is coalesced."""
    schedule = Interval(every)
    tick = schedule.next_after(at(0))
    claim = TickState(since=T0).claim(tick, "frozen", tick + timedelta(seconds=claimed))
    now = tick + timedelta(seconds=claimed + stall)
    until = now + timedelta(seconds=POLICY.lease + 2 * every)
    fired = run(schedule, claim, now, until, up_since=tick - timedelta(seconds=up_before))
    assert all(f.missed == 0 for f in fired)
    ticks = [f.tick for f in fired]
    expected = [tick]
    while (following := schedule.next_after(expected[-1])) <= ticks[-1]:
        expected.append(following)
    assert ticks == expected
    assert schedule.next_after(ticks[-1]) > until


@settings(max_examples=300, deadline=None)
@given(
    every=st.sampled_from([0.5, 1, 7, 60, 3600]),
    down=st.floats(min_value=0, max_value=2_000),
    up_after=st.floats(min_value=0, max_value=300),
)
def test_only_ticks_due_before_the_replica_was_up_are_coalesced(
    every: float, down: float, up_after: float
) -> None:
    """Catch-up merges the ticks that came due before ``up_since``, if the oldest is later
    than grace, into one run of the newest of them; every tick after it is published."""
    schedule = Interval(every)
    last = schedule.next_after(at(0))
    up_since = last + timedelta(seconds=down)
    now = up_since + timedelta(seconds=up_after)
    state = TickState(since=T0, tick=last)
    fired = run(schedule, state, now, now, up_since=up_since, step=timedelta(0))
    due = []
    tick = last
    while (tick := schedule.next_after(tick)) <= now:
        due.append(tick)
    after = [t for t in due if t > up_since]
    before = [t for t in due if t <= up_since]
    if before and (now - before[0]).total_seconds() > POLICY.grace:
        missed = min(len(before) - 1, MISSED_COUNT_CAP)
        assert fired == [Fire(tick=before[-1], missed=missed)] + [Fire(tick=t) for t in after]
    else:
        assert fired == [Fire(tick=t) for t in due]


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
    queued = parse_entry("q", {"task": "a.b", "schedule": 5, "options": {"queue": "mail"}}, "UTC")
    assert queued.options == {"queue": "mail"}
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
        ({"task": "a.b", "schedule": 1, "options": {"queue": "a b"}}, "invalid queue name"),
        ({"task": "a.b", "schedule": 1, "options": {"priority": 11}}, "invalid priority"),
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
