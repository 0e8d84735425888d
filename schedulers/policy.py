"""What beat does next for one entry: wait, publish a tick, or take over a stalled claim.

Pure: given the entry's schedule, its tick state from KV and the time, :func:`next_action`
decides. docs/periodic.md explains the rules; the beat loop (beat.py) only carries them out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from actors.wire.message import format_time, parse_time
from schedulers.schedules import Schedule

DEDUPE_WINDOW = 120.0
"""Seconds JetStream remembers a ``Nats-Msg-Id`` on the task stream (``duplicate_window``)."""

MISSED_COUNT_CAP = 1000
"""Missed ticks are counted (for the log) up to this many."""

HELD_POLL = 0.1
"""Seconds between reads while an unconfirmed claim holds up a tick that is already due. Its
owner may confirm (or, resumed from a pause, publish it again) at any moment: the ticks behind
it are then published that much later, not a whole lease later."""

SETTLE = 1.0
"""Seconds no tick may have been claimed before a replica coalesces missed ticks. A replica
that was up while they came due (a takeover) publishes them one by one, claiming each within
``HELD_POLL`` + a standby delay; one that was down (just started or resumed) waits this long so
as not to coalesce ticks the other is still publishing."""


@dataclasses.dataclass(frozen=True, slots=True)
class TickState:
    """An entry's record under ``tick.<key>`` in the beat bucket.

    ``tick`` is the newest tick a replica claimed; ``published`` turns True once the task
    message for it is stored. ``since`` is when the entry began to count (first seen, or
    added): ticks at or before it are never run.
    """

    since: datetime
    tick: datetime | None = None
    published: bool = True
    owner: str = ""
    claimed_at: datetime | None = None

    def claim(self, tick: datetime, owner: str, now: datetime) -> TickState:
        """The state after ``owner`` claims ``tick`` (not yet published)."""
        return dataclasses.replace(self, tick=tick, published=False, owner=owner, claimed_at=now)

    def confirm(self) -> TickState:
        """The state after the claimed tick's message was stored."""
        return dataclasses.replace(self, published=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the bucket (times in RFC 3339 UTC)."""
        return {
            "since": format_time(self.since),
            "tick": format_time(self.tick) if self.tick else None,
            "published": self.published,
            "owner": self.owner,
            "claimed_at": format_time(self.claimed_at) if self.claimed_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TickState:
        """Read a record; unknown fields are ignored."""

        def moment(name: str) -> datetime | None:
            value = data.get(name)
            return parse_time(value) if isinstance(value, str) else None

        since = moment("since")
        if since is None:
            raise ValueError("tick state without 'since'")
        return cls(
            since=since,
            tick=moment("tick"),
            published=bool(data.get("published", True)),
            owner=str(data.get("owner", "")),
            claimed_at=moment("claimed_at"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do before ``until``: sleep, then read the state again."""

    until: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Fire:
    """Claim and publish ``tick``.

    ``missed`` ticks before it were coalesced into it (catch-up; counted up to
    MISSED_COUNT_CAP). ``retry`` means the tick was claimed before but never confirmed: it is
    published again with the same message id, which JetStream deduplicates.
    """

    tick: datetime
    missed: int = 0
    retry: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    """Timing rules shared by every replica (they must agree).

    ``lease``: seconds a claim is left to its owner before another replica takes it over.
    ``grace``: a due tick later than this, that came due while this replica was not running,
    is *missed*, not just late.
    """

    # 1.5 s: a claim is confirmed 1-6 ms after it is made (3 replicas on 2 busy cores, 120
    # ticks), so this is still ~250x that; and the takeover, ~30 ms after the lease, comes
    # before a tick held up behind the claim is `grace` late, even on a fast schedule.
    lease: float = 1.5
    grace: float = 2.0
    window: float = DEDUPE_WINDOW

    def __post_init__(self) -> None:
        if not 0 < self.lease <= self.window / 4:
            raise ValueError(f"lease must be > 0 and <= {self.window / 4}s, got {self.lease}")
        if self.grace < 0:
            raise ValueError(f"grace must be >= 0, got {self.grace}")

    @property
    def pause(self) -> float:
        """A replica that did not run for longer than this was down (see :class:`Uptime`).

        Ticks held up by a shorter pause are within ``grace`` anyway; the floor keeps the
        jitter of a busy event loop from counting as a pause when ``grace`` is tiny.
        """
        return max(self.grace, 1.0)


def next_action(
    schedule: Schedule,
    state: TickState,
    now: datetime,
    policy: Policy,
    not_before: datetime | None = None,
    up_since: datetime | None = None,
) -> Wait | Fire:
    """Decide what to do for one entry at ``now``.

    ``up_since``: since when the deciding replica has been running without a break (see
    :class:`Uptime`); None if unknown, then every tick later than ``grace`` counts as missed.

    1. A claim not yet confirmed: leave it to its owner for ``lease`` seconds; then publish the
       same tick again (the message id makes a second copy a no-op), as long as that happens
       well inside the dedupe window. An older unconfirmed claim is taken as published.
    2. Otherwise the due ticks are those after the last tick (or ``since``, or ``not_before``,
       whichever is latest) up to ``now``. The oldest is fired if it is within ``grace``, or
       if it came due after ``up_since``: this replica was running then, so the tick was held
       up (by a stalled claim), not missed; each such tick is fired, however late, and the
       caller comes back at once for the next.
    3. Otherwise beat was down when the oldest came due: the ticks due up to ``up_since`` are
       coalesced into one run of the newest of them (catch-up policy "once"), once no tick was
       claimed for ``SETTLE`` seconds. The ticks after it come due while this replica runs.
    """
    if state.tick is not None and not state.published and state.claimed_at is not None:
        age = (now - state.claimed_at).total_seconds()
        if age < policy.lease:
            # Come back when the lease ends, or at the next tick if sooner (by then the owner
            # has usually confirmed, and that tick is up for grabs); soon if it is due already.
            retry_at = state.claimed_at + timedelta(seconds=policy.lease)
            following = schedule.next_after(state.tick)
            if following <= now:
                following = now + timedelta(seconds=HELD_POLL)
            return Wait(until=min(following, retry_at))
        if age < policy.window - 2 * policy.lease:
            return Fire(tick=state.tick, retry=True)
    base = state.tick or state.since
    if not_before is not None and not_before > base:
        base = not_before
    first = schedule.next_after(base)
    if first > now:
        return Wait(until=first)
    if (now - first).total_seconds() <= policy.grace or (up_since is not None and first > up_since):
        return Fire(tick=first)
    if state.claimed_at is not None and (now - state.claimed_at).total_seconds() < SETTLE:
        return Wait(until=state.claimed_at + timedelta(seconds=SETTLE))
    newest, missed = _newest_due(schedule, first, now if up_since is None else min(now, up_since))
    return Fire(tick=newest, missed=missed)


@dataclasses.dataclass(slots=True)
class Uptime:
    """Since when a replica has been running, and reaching NATS, without a break.

    Ticks that came due since then were not missed by beat being down (``next_action``'s
    ``up_since``). The replica calls :meth:`pulse` several times a second: a gap longer than
    ``pause`` means the process stood still (SIGSTOP, a suspended VM, a starved CPU) and starts
    the count again. After :meth:`cut_off` (NATS unreachable), the count starts again at the
    next :meth:`reached`.
    """

    since: datetime
    pause: float
    _last: datetime = dataclasses.field(init=False)
    _cut_off: bool = dataclasses.field(default=False, init=False)

    def __post_init__(self) -> None:
        self._last = self.since

    def pulse(self, now: datetime) -> datetime:
        """The replica runs at ``now``; returns ``since``."""
        if (now - self._last).total_seconds() > self.pause:
            self.since = now
        self._last = max(self._last, now)
        return self.since

    def cut_off(self) -> None:
        """NATS could not be reached: ticks due until it can again count as missed."""
        self._cut_off = True

    def reached(self, now: datetime) -> datetime:
        """The replica read from NATS at ``now``; returns ``since`` (pass it as ``up_since``)."""
        self.pulse(now)
        if self._cut_off:
            self.since, self._cut_off = now, False
        return self.since


def abandoned(state: TickState, now: datetime, policy: Policy) -> bool:
    """True if the state holds a claim too old to publish again safely (taken as published)."""
    if state.published or state.claimed_at is None:
        return False
    return (now - state.claimed_at).total_seconds() >= policy.window - 2 * policy.lease


def _newest_due(schedule: Schedule, first: datetime, now: datetime) -> tuple[datetime, int]:
    """The newest tick in ``[first, now]`` and how many come before it (capped)."""
    tick, missed = first, 0
    while missed < MISSED_COUNT_CAP:
        following = schedule.next_after(tick)
        if following > now:
            return tick, missed
        tick, missed = following, missed + 1
    # Many missed ticks (a fast schedule after long downtime): find a tick near `now` by
    # looking back over doubling spans, then walk forward to the newest.
    span = timedelta(seconds=1)
    while (probe := schedule.next_after(now - span)) > now:
        span *= 2
    tick = max(tick, probe)
    while (following := schedule.next_after(tick)) <= now:
        tick = following
    return tick, missed
