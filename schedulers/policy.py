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
    ``grace``: a due tick later than this is *missed* (beat was not running), not just late.
    """

    lease: float = 5.0
    grace: float = 2.0
    window: float = DEDUPE_WINDOW

    def __post_init__(self) -> None:
        if not 0 < self.lease <= self.window / 4:
            raise ValueError(f"lease must be > 0 and <= {self.window / 4}s, got {self.lease}")
        if self.grace < 0:
            raise ValueError(f"grace must be >= 0, got {self.grace}")


def next_action(
    schedule: Schedule,
    state: TickState,
    now: datetime,
    policy: Policy,
    not_before: datetime | None = None,
) -> Wait | Fire:
    """Decide what to do for one entry at ``now``.

    1. A claim not yet confirmed: leave it to its owner for ``lease`` seconds; then publish the
       same tick again (the message id makes a second copy a no-op), as long as that happens
       well inside the dedupe window. An older unconfirmed claim is taken as published.
    2. Otherwise the due ticks are those after the last tick (or ``since``, or ``not_before``,
       whichever is latest) up to ``now``. If the oldest is later than ``grace``, beat was down:
       they are coalesced into one run of the newest (catch-up policy "once"). If not, the
       oldest is fired; the caller comes back at once for the next.
    """
    if state.tick is not None and not state.published and state.claimed_at is not None:
        age = (now - state.claimed_at).total_seconds()
        if age < policy.lease:
            # Come back when the lease ends, or at the next tick if sooner (by then the owner
            # has usually confirmed, and that tick is up for grabs).
            retry_at = state.claimed_at + timedelta(seconds=policy.lease)
            following = schedule.next_after(state.tick)
            return Wait(until=following if now < following < retry_at else retry_at)
        if age < policy.window - 2 * policy.lease:
            return Fire(tick=state.tick, retry=True)
    base = state.tick or state.since
    if not_before is not None and not_before > base:
        base = not_before
    first = schedule.next_after(base)
    if first > now:
        return Wait(until=first)
    if (now - first).total_seconds() <= policy.grace:
        return Fire(tick=first)
    newest, missed = _newest_due(schedule, first, now)
    return Fire(tick=newest, missed=missed)


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
