"""Dynamic beat entries from Python: the operations behind ``actors schedule``.

Changes are written to the beat KV bucket; running beats see them through their watch at
once, without a restart.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from actors.app import App
from actors.errors import ActorsError, ConfigurationError
from schedulers.beat import code_entries
from schedulers.entries import Entry, Override, effective_entries, entry_key, parse_entry
from schedulers.schedules import Schedule
from schedulers.state import BeatBucket

_CAS_ATTEMPTS = 5


class ScheduleNotFound(ActorsError, LookupError):
    """No beat entry has that name (neither in code nor in the bucket)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """One entry as ``list`` shows it."""

    name: str
    task: str
    schedule: str
    """The schedule's description, e.g. ``every 30 seconds``."""
    source: str
    """``code`` (``app.conf.beat_schedule``) or ``store`` (added at run time)."""
    enabled: bool
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    last_tick: datetime | None
    next_tick: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly data (times in ISO 8601)."""
        data = dataclasses.asdict(self)
        for name in ("last_tick", "next_tick"):
            value = data[name]
            data[name] = value.isoformat() if value else None
        return data


class ScheduleStore:
    """Add, remove, enable, disable and list beat entries of ``app``.

    Async methods carry an ``a`` prefix; the plain ones are their sync twins. Entries in code
    (``app.conf.beat_schedule``) can be enabled and disabled, not added over or removed.
    """

    def __init__(self, app: App) -> None:
        self.app = app

    async def aadd(
        self,
        name: str,
        task: str | Any,
        schedule: float | timedelta | Schedule | str,
        *,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        tz: str | None = None,
        enabled: bool = True,
        replace: bool = False,
    ) -> ScheduleInfo:
        """Store an entry; ``task`` is a task name or an Actor. ConfigurationError if ``name``
        exists (in code, or stored unless ``replace``) or the entry is invalid."""
        if name in self.app.conf.beat_schedule:
            raise ConfigurationError(
                f"beat entry {name!r} is defined in code (app.conf.beat_schedule); change it "
                "there, or pick another name"
            )
        spec: dict[str, Any] = {
            "task": getattr(task, "name", task),
            "schedule": schedule,
            "args": list(args or ()),
            "kwargs": dict(kwargs or {}),
            "options": dict(options or {}),
        }
        if tz:
            spec["tz"] = tz
        now = datetime.now(UTC)
        entry = parse_entry(name, spec, self.app.conf.timezone, "store", created_at=now)
        bucket = await BeatBucket.open(self.app)
        existing, revision = await bucket.override(entry.key)
        if existing is not None and existing.entry is not None and not replace:
            raise ConfigurationError(
                f"beat entry {name!r} exists already; remove it first or pass replace=True "
                "(--replace)"
            )
        record = Override(name=name, entry=entry.to_record(), enabled=enabled, changed_at=now)
        if not await bucket.put_override(entry.key, record, revision):
            raise ConfigurationError(f"beat entry {name!r} was changed meanwhile; try again")
        return _info(dataclasses.replace(entry, enabled=enabled), None)

    async def aremove(self, name: str) -> None:
        """Delete a stored entry (and its tick state). ScheduleNotFound if there is none."""
        if name in self.app.conf.beat_schedule:
            raise ConfigurationError(
                f"beat entry {name!r} is defined in code; remove it there, or disable it"
            )
        bucket = await BeatBucket.open(self.app)
        existing, _ = await bucket.override(entry_key(name))
        if existing is None or existing.entry is None:
            raise ScheduleNotFound(f"no beat entry named {name!r}")
        await bucket.delete(entry_key(name))

    async def aenable(self, name: str) -> None:
        """Enable an entry (from code or stored); ticks while it was disabled are not run."""
        await self._switch(name, True)

    async def adisable(self, name: str) -> None:
        """Disable an entry (from code or stored) until it is enabled again."""
        await self._switch(name, False)

    async def alist(self) -> builtins.list[ScheduleInfo]:
        """Every entry, from code and stored, sorted by name, with its last and next tick."""
        bucket = await BeatBucket.find(self.app)  # reading creates nothing
        stored = await bucket.overrides() if bucket else {}
        merged, _ = effective_entries(code_entries(self.app), stored, self.app.conf.timezone)
        out = []
        for name in sorted(merged):
            state = (await bucket.tick_state(merged[name].key))[0] if bucket else None
            out.append(_info(merged[name], state.tick if state else None))
        return out

    async def _switch(self, name: str, enabled: bool) -> None:
        bucket = await BeatBucket.open(self.app)
        key = entry_key(name)
        for _ in range(_CAS_ATTEMPTS):
            existing, revision = await bucket.override(key)
            stored = existing is not None and existing.entry is not None
            if not stored and name not in self.app.conf.beat_schedule:
                raise ScheduleNotFound(f"no beat entry named {name!r}")
            record = Override(
                name=name,
                entry=existing.entry if existing else None,
                enabled=enabled,
                changed_at=datetime.now(UTC),
            )
            if await bucket.put_override(key, record, revision):
                return
        raise ConfigurationError(f"beat entry {name!r} keeps changing; try again")

    # -- sync twins --------------------------------------------------------------------------

    def add(
        self,
        name: str,
        task: str | Any,
        schedule: float | timedelta | Schedule | str,
        **options: Any,
    ) -> ScheduleInfo:
        """Sync twin of :meth:`aadd` (same keyword arguments)."""
        return self.app.client.run_blocking(self.aadd(name, task, schedule, **options))

    def remove(self, name: str) -> None:
        """Sync twin of :meth:`aremove`."""
        self.app.client.run_blocking(self.aremove(name))

    def enable(self, name: str) -> None:
        """Sync twin of :meth:`aenable`."""
        self.app.client.run_blocking(self.aenable(name))

    def disable(self, name: str) -> None:
        """Sync twin of :meth:`adisable`."""
        self.app.client.run_blocking(self.adisable(name))

    def list(self) -> builtins.list[ScheduleInfo]:
        """Sync twin of :meth:`alist`."""
        return self.app.client.run_blocking(self.alist())


def _info(entry: Entry, last_tick: datetime | None) -> ScheduleInfo:
    next_tick = None
    if entry.enabled:
        base = max(t for t in (last_tick, entry.enabled_at, datetime.now(UTC)) if t is not None)
        next_tick = entry.schedule.next_after(base)
    return ScheduleInfo(
        name=entry.name,
        task=entry.task,
        schedule=entry.schedule.describe(),
        source=entry.source,
        enabled=entry.enabled,
        args=entry.args,
        kwargs=entry.kwargs,
        options=entry.options,
        last_tick=last_tick,
        next_tick=next_tick,
    )
