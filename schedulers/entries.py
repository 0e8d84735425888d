"""Beat entries: what to send on which schedule. Parsing and validation only, no I/O.

An entry comes either from code (``app.conf.beat_schedule``) or from the beat KV bucket
(``actors schedule add`` / :class:`schedulers.ScheduleStore`). Both are validated here, so a
bad entry fails when it is defined, not when its first tick comes.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping
from datetime import datetime
from difflib import get_close_matches
from typing import Any, Literal

from actors.errors import ConfigurationError
from actors.options import SEND_OPTION_NAMES, SendOptions
from actors.wire import topology
from actors.wire.message import encode, format_time, parse_time
from schedulers.schedules import Schedule, load_zone, parse_schedule, schedule_from_dict

Source = Literal["code", "store"]

ENTRY_FIELDS = ("task", "schedule", "args", "kwargs", "options", "enabled", "tz")
"""Keys a ``beat_schedule`` entry may have (``task`` and ``schedule`` are required)."""

BEAT_OPTIONS = frozenset(SEND_OPTION_NAMES) - {"task_id"}
"""The ``options`` an entry may carry: every keyword option of ``apply_async`` on this
version except ``task_id`` (beat derives the task id from the entry and the tick)."""

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One periodic task: send ``task(*args, **kwargs)`` with ``options`` on ``schedule``."""

    name: str
    task: str
    schedule: Schedule
    args: list[Any] = dataclasses.field(default_factory=list)
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    enabled: bool = True
    source: Source = "code"
    created_at: datetime | None = None
    """When a stored entry was added: the first tick after it counts (for catch-up)."""
    enabled_at: datetime | None = None
    """When the entry was last enabled by ``schedule enable``: no catch-up before it."""

    @property
    def key(self) -> str:
        """The entry's KV key token (see :func:`entry_key`)."""
        return entry_key(self.name)

    def to_record(self) -> dict[str, Any]:
        """The entry as stored in the beat bucket (a stored entry's ``entry`` field)."""
        return {
            "name": self.name,
            "task": self.task,
            "schedule": self.schedule.to_dict(),
            "args": self.args,
            "kwargs": self.kwargs,
            "options": self.options,
            "created_at": format_time(self.created_at) if self.created_at else None,
        }


def entry_key(name: str) -> str:
    """The KV key token of an entry name.

    Names of letters, digits, ``_`` and ``-`` are used as they are; any other name becomes
    ``=`` followed by its URL-safe base64 (no padding), which cannot collide with a plain name.
    """
    if _SAFE_KEY.match(name):
        return name
    return "=" + base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def check_name(name: object) -> str:
    """Return ``name`` if it can name an entry (a non-empty single-line str, at most 200)."""
    if not isinstance(name, str) or not name or len(name) > 200 or not name.isprintable():
        raise ConfigurationError(
            f"beat entry name {name!r} is invalid: use a non-empty printable string of at most "
            "200 characters"
        )
    return name


def parse_entry(
    name: str,
    spec: Mapping[str, Any],
    default_tz: str,
    source: Source = "code",
    created_at: datetime | None = None,
) -> Entry:
    """Validate a ``beat_schedule`` entry and build an Entry; ConfigurationError says what to fix.

    ``default_tz`` is the app's ``timezone``; an entry's own ``tz`` (or a crontab's) wins.
    """
    check_name(name)
    where = f"beat_schedule entry {name!r}"
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"{where} must be a dict with 'task' and 'schedule'")
    unknown = sorted(set(spec) - set(ENTRY_FIELDS))
    if unknown:
        hints = [get_close_matches(key, ENTRY_FIELDS, n=1) for key in unknown]
        hint = "".join(f" (did you mean {h[0]!r}?)" for h in hints if h)
        raise ConfigurationError(
            f"{where} has unknown field(s) {', '.join(unknown)}{hint}; "
            f"fields: {', '.join(ENTRY_FIELDS)}"
        )
    for required in ("task", "schedule"):
        if required not in spec:
            raise ConfigurationError(f"{where} misses {required!r}")
    task = spec["task"]
    if not isinstance(task, str):
        raise ConfigurationError(f"{where}: 'task' must be a task name (str), got {task!r}")
    try:
        topology.validate_task_name(task)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    tz = spec.get("tz") or default_tz
    check_timezone(tz, f"{where}: ")
    schedule = _schedule(where, spec["schedule"], tz)
    args = spec.get("args") or ()
    kwargs = spec.get("kwargs") or {}
    options = dict(spec.get("options") or {})
    enabled = spec.get("enabled", True)
    if not isinstance(args, list | tuple):
        raise ConfigurationError(f"{where}: 'args' must be a list or tuple, got {args!r}")
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ConfigurationError(f"{where}: 'kwargs' must be a dict with str keys")
    if not isinstance(enabled, bool):
        raise ConfigurationError(f"{where}: 'enabled' must be True or False, got {enabled!r}")
    check_options(where, options)
    try:
        encode([list(args), dict(kwargs), options])
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigurationError(
            f"{where}: args/kwargs/options cannot be sent ({exc}); use msgpack types "
            "(None, bool, int, float, str, bytes, list, dict)"
        ) from None
    return Entry(
        name=name,
        task=task,
        schedule=schedule,
        args=list(args),
        kwargs=dict(kwargs),
        options=options,
        enabled=enabled,
        source=source,
        created_at=created_at,
    )


def check_timezone(tz: object, where: str = "") -> None:
    """Raise ConfigurationError unless ``tz`` is an IANA time zone name (see load_zone)."""
    try:
        load_zone(tz)
    except ValueError as exc:
        raise ConfigurationError(f"{where}{exc}") from None


def check_options(where: str, options: Mapping[str, Any]) -> None:
    """Reject options that ``apply_async`` does not take (or that beat sets itself)."""
    unknown = sorted(set(options) - BEAT_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown option(s) {', '.join(unknown)}; beat passes options to "
            f"apply_async, which takes: {', '.join(sorted(BEAT_OPTIONS))} (task_id is set "
            "by beat)"
        )
    try:  # queue and priority are checked now, not at the first tick
        SendOptions(queue=options.get("queue"), priority=options.get("priority"))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def _schedule(where: str, value: Any, tz: str) -> Schedule:
    try:
        schedule = parse_schedule(value, tz=tz)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    return schedule


def entry_from_record(record: Mapping[str, Any], default_tz: str) -> Entry:
    """Rebuild a stored entry (``to_record`` output); ConfigurationError if it is invalid."""
    name = record.get("name")
    where = f"stored beat entry {name!r}"
    try:
        schedule = schedule_from_dict(dict(record.get("schedule") or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    created = record.get("created_at")
    spec = {
        "task": record.get("task"),
        "schedule": schedule,
        "args": record.get("args") or [],
        "kwargs": record.get("kwargs") or {},
        "options": record.get("options") or {},
    }
    return parse_entry(
        check_name(name),
        spec,
        default_tz,
        source="store",
        created_at=parse_time(created) if isinstance(created, str) else None,
    )


def schedule_from_text(text: str) -> float | str:
    """A schedule given on the command line: seconds (``30``, ``0.5``) or a cron string."""
    try:
        return float(text)
    except ValueError:
        return text


@dataclasses.dataclass(frozen=True, slots=True)
class Override:
    """The record under ``conf.<key>``: a stored entry and/or an enabled switch.

    A stored entry has ``entry``; an entry from code only ever has the switch.
    """

    name: str
    entry: dict[str, Any] | None = None
    enabled: bool | None = None
    changed_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the bucket."""
        return {
            "name": self.name,
            "entry": self.entry,
            "enabled": self.enabled,
            "changed_at": format_time(self.changed_at) if self.changed_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Override:
        """Read a record; unknown fields are ignored."""
        changed = data.get("changed_at")
        enabled = data.get("enabled")
        entry = data.get("entry")
        return cls(
            name=str(data.get("name", "")),
            entry=dict(entry) if isinstance(entry, Mapping) else None,
            enabled=enabled if isinstance(enabled, bool) else None,
            changed_at=parse_time(changed) if isinstance(changed, str) else None,
        )


def effective_entries(
    code: Mapping[str, Entry], overrides: Mapping[str, Override], default_tz: str
) -> tuple[dict[str, Entry], list[str]]:
    """Merge entries from code with the bucket's records; return (entries, problems).

    A stored entry whose name is also in code is ignored (code wins); an invalid stored entry
    is skipped. Both are reported in ``problems``. A switch overrides ``enabled``.
    """
    problems: list[str] = []
    merged: dict[str, Entry] = dict(code)
    for override in overrides.values():
        if override.entry is None:
            continue
        if override.name in code:
            problems.append(
                f"stored entry {override.name!r} is shadowed by the entry of that name in code"
            )
            continue
        try:
            merged[override.name] = entry_from_record(override.entry, default_tz)
        except ConfigurationError as exc:
            problems.append(str(exc))
    for override in overrides.values():
        entry = merged.get(override.name)
        if entry is not None and override.enabled is not None:
            merged[override.name] = dataclasses.replace(
                entry, enabled=override.enabled, enabled_at=override.changed_at
            )
    return merged, problems
