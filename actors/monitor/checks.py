"""Query parameters and form fields checked at the edge: each is hostile until it passes.

Every reader returns the value or raises :class:`BadInput`, which the app answers with 400 and
the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from actors.monitor.index import STATES, TaskFilter
from actors.wire import topology
from actors.wire.message import parse_time

_PLAIN = re.compile(r"[\w.@:\-]*")
_RATE = re.compile(r"\d{1,9}(\.\d{1,6})?/[smh]")
_MAX_TEXT = 200
MAX_PER_PAGE = 200


class BadInput(ValueError):
    """A parameter that does not pass its check; the message says what to send instead."""


def text(params: Mapping[str, str], name: str) -> str:
    """A short plain text (letters, digits, ``_.@:-``), or empty."""
    value = params.get(name, "").strip()
    if len(value) > _MAX_TEXT or not _PLAIN.fullmatch(value):
        raise BadInput(f"{name}: at most {_MAX_TEXT} letters, digits or any of _.@:-")
    return value


def number(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer within [low, high]; ``default`` when absent."""
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadInput(f"{name}: give a whole number from {low} to {high}")
    return int(raw)


def moment(params: Mapping[str, str], name: str) -> float | None:
    """A time as Unix seconds or RFC 3339; None when absent."""
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        return float(raw) if re.fullmatch(r"\d{1,12}(\.\d+)?", raw) else _rfc3339(raw)
    except ValueError:
        raise BadInput(f"{name}: give Unix seconds or an RFC 3339 time") from None


def _rfc3339(raw: str) -> float:
    try:
        parsed: datetime = parse_time(raw)
    except Exception as exc:  # parse_time raises ProtocolError for what it cannot read
        raise ValueError(str(exc)) from None
    return parsed.timestamp()


def task_filter(params: Mapping[str, str], now: float) -> TaskFilter:
    """The filter of the Tasks page and ``/api/tasks``."""
    state = params.get("state", "").strip().upper()
    if state and state not in STATES:
        raise BadInput(f"state: one of {', '.join(STATES)}")
    since = moment(params, "since")
    last = number(params, "last", 0, 0, 60 * 24 * 366)  # minutes
    if last:
        since = now - last * 60
    search = params.get("q", "").strip()
    if search and not topology.valid_task_id(search):
        raise BadInput("q: a task id or its start (letters, digits, -, _, =)")
    return TaskFilter(
        state=state,
        name=text(params, "name"),
        worker=text(params, "worker"),
        search=search,
        since=since,
        until=moment(params, "until"),
    )


def task_id(value: str) -> str:
    """A valid task id."""
    if not topology.valid_task_id(value):
        raise BadInput("not a task id")
    return value


def task_name(value: str, field: str = "actor") -> str:
    """A valid task (actor) name."""
    if not topology.valid_task_name(value):
        raise BadInput(f"{field}: not a task name (dot-separated words)")
    return value


def rate(value: str) -> str | None:
    """A rate limit like ``10/s``; None for ``none`` or empty (removes the limit)."""
    value = value.strip()
    if value.lower() in ("", "none"):
        return None
    if not _RATE.fullmatch(value):
        raise BadInput("rate: like 10/s, 100/m or 1000/h, or none")
    return value


def flag(params: Mapping[str, str], name: str) -> bool:
    """A checkbox: true for ``1``, ``true``, ``on``, ``yes``."""
    value = params.get(name, "").strip().lower()
    if value not in ("", "0", "1", "true", "false", "on", "off", "yes", "no"):
        raise BadInput(f"{name}: true or false")
    return value in ("1", "true", "on", "yes")
