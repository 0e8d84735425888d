"""Validation of untrusted task messages, as docs/protocol.md specifies them. Pure: no I/O.

Every byte on ``actors.task.>`` may come from a hostile publisher, so a message is checked
completely, nested signatures included, before its task runs: anything a worker would trip
over after the task ran (when it sends the links, the next chain step or a chord body) is
refused here, with the path of the offending field (``link[0].options.task_id``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from actors.errors import ProtocolError
from actors.wire.routing import valid_priority, valid_queue
from actors.wire.topology import MAX_TASK_NAME, PROTOCOL_VERSION, valid_task_id, valid_task_name

MAX_NESTING = 32
"""How deeply signatures may nest in a message (a link of a chain step of a chord body ...)."""
MAX_RETRIES = 10_000_000
MAX_SECONDS = 10**10
"""Largest ``countdown`` (and ``eta``/``expires`` in seconds) of a signature, about 317 years:
a worker adds it to the current time, which must stay a valid date."""

FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "retries": int,
    "eta": str,
    "expires": str,
    "link": list,
    "link_error": list,
    "chain": list,
    "chord": dict,
    "group_id": str,
    "group_index": int,
    "root_id": str,
    "parent_id": str,
    "ignore_result": bool,
    "map": str,
    "headers": dict,
    "queue": str,
    "priority": int,
    "v": int,
}
"""The optional fields of a task message and their types (null means absent)."""

_MAP_MODES = ("map", "starmap")
_KINDS = ("task", "group", "chain", "chord")
_NONE = type(None)


def check_message(data: Any) -> dict[str, Any]:
    """The fields of a task message map, checked; ProtocolError (only) when it is malformed.

    Null optional fields are left out; unknown fields are ignored (forward compatible).
    """
    if not isinstance(data, Mapping):
        raise ProtocolError(f"task message must be a map, got {type(data).__name__}")
    missing = [k for k in ("id", "task") if k not in data]
    if missing:
        raise ProtocolError(f"task message misses required field(s): {', '.join(missing)}")
    _check_id(data["id"], "id")
    _check_task_name(data["task"], "task")
    args, kwargs = data.get("args"), data.get("kwargs")
    _check_args(args, kwargs, "")
    values: dict[str, Any] = {"id": data["id"], "task": data["task"]}
    values["args"] = list(args or [])
    values["kwargs"] = dict(kwargs or {})
    for name, expected in FIELD_TYPES.items():
        if data.get(name) is not None:
            values[name] = data[name]
            _check_type(values[name], expected, name)
    _check_fields(values)
    return values


def _check_fields(values: Mapping[str, Any]) -> None:
    if values.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        raise ProtocolError(
            f"unsupported protocol version {values['v']}: this worker speaks "
            f"version {PROTOCOL_VERSION}"
        )
    if not 0 <= values.get("retries", 0) <= MAX_RETRIES:
        raise ProtocolError(f"field 'retries' must be between 0 and {MAX_RETRIES}")
    for name in ("eta", "expires"):
        if name in values:
            _check_time(values[name], name)
    for name in ("group_id", "root_id", "parent_id"):
        if name in values:
            _check_id(values[name], name)
    if values.get("group_index", 0) < 0:
        raise ProtocolError("field 'group_index' must be 0 or more")
    _check_map_mode(values.get("map"), "map")
    _check_str_keys(values.get("headers"), "headers")
    _check_route(values, "")
    if "chord" in values:
        _check_chord(values["chord"])
    for name in ("link", "link_error"):
        for index, link in enumerate(values.get(name, [])):
            _check_signature(link, f"{name}[{index}]", 1)
    steps = values.get("chain", [])
    counts = [
        # The steps of a chord header member carry the chord along: they are in the header.
        _check_signature(
            step, f"chain[{index}]", 1, in_header="chord" in values, followed=index < len(steps) - 1
        )
        for index, step in enumerate(steps)
    ]
    _check_group_followers(steps, counts, "chain", followed=False)


def _check_group_followers(
    steps: list[Any], counts: list[int], path: str, *, followed: bool
) -> None:
    """A group followed by more steps becomes a chord whose body is those steps: they must
    hold a task (unless steps outside this chain, ``followed``, still come)."""
    for index, step in enumerate(steps[:-1]):
        if step.get("kind") == "group" and sum(counts[index + 1 :]) == 0 and not followed:
            raise ProtocolError(
                f"field '{path}[{index + 1}:]' holds no task: the steps after a group become "
                "a chord body, which needs one"
            )


def _check_chord(chord: Mapping[str, Any]) -> None:
    _check_id(chord.get("id"), "chord.id")
    size = _check_int(chord.get("size"), "chord.size")
    index = _check_int(chord.get("index"), "chord.index")
    if size < 1:
        raise ProtocolError("field 'chord.size' must be 1 or more")
    if not 0 <= index < size:
        raise ProtocolError("field 'chord.index' must be 0 or more and less than 'chord.size'")
    _check_body(chord.get("body"), "chord.body", 1, followed=False)


def _check_signature(
    data: Any, path: str, depth: int, *, in_header: bool = False, followed: bool = False
) -> int:
    """Check a signature and everything inside it; return how many tasks it holds.

    The rules mirror what actors/canvas.py does when it sends the signature. ``in_header``:
    it is (in) a member of a chord header, where only tasks and chains of tasks can go.
    ``followed``: more chain steps come after it (a group followed by steps becomes a chord
    header).
    """
    if depth > MAX_NESTING:
        raise ProtocolError(f"field {path!r} is nested more than {MAX_NESTING} signatures deep")
    if _is_plain_task(data):
        return 1
    if not isinstance(data, Mapping):
        raise ProtocolError(f"field {path!r} must be a signature map, got {type(data).__name__}")
    kind = data.get("kind", "task")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise ProtocolError(
            f"field '{path}.kind' is not a signature kind: {_show(kind)}; "
            "use task, group, chain or chord"
        )
    options = data.get("options")
    _check_type(options, (dict, _NONE), f"{path}.options")
    options = options or {}
    _check_options(options, f"{path}.options", depth)
    if in_header and kind in ("group", "chord"):
        raise ProtocolError(
            f"field {path!r} is a {kind} in a chord header: a header member must be a task or "
            "a chain of tasks"
        )
    if kind == "task":
        _check_task_name(data.get("task"), f"{path}.task")
        _check_args(data.get("args"), data.get("kwargs"), f"{path}.")
        _check_type(data.get("immutable"), (bool, _NONE), f"{path}.immutable")
        _check_map_mode(data.get("map"), f"{path}.map")
        return 1
    if kind == "chord":
        header = data.get("header")
        # A group is the header itself; any other signature is the one member of a header.
        is_group = isinstance(header, Mapping) and header.get("kind") == "group"
        where = f"{path}.header"
        count = _check_signature(
            header, where, depth + 1, in_header=not is_group, followed=is_group
        )
        return count + _check_body(data.get("body"), f"{path}.body", depth + 1, followed)
    steps = data.get("tasks")
    if not isinstance(steps, list):
        raise ProtocolError(f"field '{path}.tasks' must be a list, got {type(steps).__name__}")
    if kind == "group":
        if options.get("link"):
            raise ProtocolError(
                f"field '{path}.options.link' is set on a group: a group has no link (use a chord)"
            )
        return sum(
            _check_signature(step, f"{path}.tasks[{i}]", depth + 1, in_header=followed)
            for i, step in enumerate(steps)
        )
    if not steps:
        raise ProtocolError(f"field '{path}.tasks' is empty: a chain needs at least one step")
    counts = [
        _check_signature(
            step,
            f"{path}.tasks[{i}]",
            depth + 1,
            in_header=in_header,
            followed=followed or i < len(steps) - 1,
        )
        for i, step in enumerate(steps)
    ]
    _check_group_followers(steps, counts, f"{path}.tasks", followed=followed)
    count = sum(counts)
    if in_header:
        _check_only_tasks(steps, f"{path}.tasks")
    if options.get("link"):
        _check_link_target(steps, f"{path}.options.link")
    return count


def _is_plain_task(data: Any) -> bool:
    """True for a valid task signature whose only option is a ``task_id``: the usual chain
    step and link, checked without building the paths that error messages name. False means
    "check it in full" (which finds the error, if there is one): this accepts nothing the
    full check refuses."""
    if type(data) is not dict or data.get("kind", "task") != "task" or "map" in data:
        return False
    options = data.get("options")
    if options is not None and (
        type(options) is not dict
        or (options and not (len(options) == 1 and valid_task_id(options.get("task_id"))))
    ):
        return False
    task, args, kwargs = data.get("task"), data.get("args"), data.get("kwargs")
    return (
        type(task) is str
        and valid_task_name(task)
        and (args is None or type(args) is list)
        and (kwargs is None or (type(kwargs) is dict and all(type(k) is str for k in kwargs)))
        and type(data.get("immutable", False)) is bool
    )


def _check_body(body: Any, path: str, depth: int, followed: bool) -> int:
    if body is None:
        raise ProtocolError(f"field {path!r} is missing: a chord needs a body")
    count = _check_signature(body, path, depth, followed=followed)
    if count == 0:
        raise ProtocolError(f"field {path!r} holds no task: a chord body needs one")
    return count


def _check_only_tasks(steps: list[Any], path: str) -> None:
    """Steps of a chain in a chord header: tasks, or chains without options (merged in)."""
    for index, step in enumerate(steps):
        kind = step.get("kind", "task")
        if kind == "chain" and not step.get("options"):
            _check_only_tasks(step["tasks"], f"{path}[{index}].tasks")
        elif kind != "task":
            raise ProtocolError(
                f"field '{path}[{index}]' is a {kind} with options in a chain in a chord "
                "header: such a chain must hold only tasks"
            )


def _check_link_target(steps: list[Any], path: str) -> None:
    """A chain's link goes to its last step, which must not be a group."""
    kind = steps[-1].get("kind", "task")
    if kind == "chain":
        _check_link_target(steps[-1]["tasks"], path)
    elif kind == "group":
        raise ProtocolError(
            f"field {path!r} is set on a chain ending in a group: a group has no link (use a chord)"
        )


def _check_options(options: Mapping[str, Any], path: str, depth: int) -> None:
    for name in ("task_id", "group_id"):
        if name in options:
            _check_id(options[name], f"{path}.{name}")
    for name in ("link", "link_error"):
        links = options.get(name)
        _check_type(links, (list, _NONE), f"{path}.{name}")
        for index, link in enumerate(links or []):
            _check_signature(link, f"{path}.{name}[{index}]", depth + 1)
    if options.get("countdown") is not None:
        _check_seconds(options["countdown"], f"{path}.countdown")
    for name in ("eta", "expires"):
        value = options.get(name)
        if isinstance(value, str):
            _check_time(value, f"{path}.{name}")
        elif value is not None:
            _check_seconds(value, f"{path}.{name}")
    _check_type(options.get("ignore_result"), (bool, _NONE), f"{path}.ignore_result")
    _check_str_keys(options.get("headers"), f"{path}.headers")
    _check_route(options, f"{path}.")


def _check_route(values: Mapping[str, Any], path: str) -> None:
    """``queue`` is a queue name, ``priority`` an integer 0-9 (docs/protocol.md)."""
    queue, priority = values.get("queue"), values.get("priority")
    if queue is not None and not valid_queue(queue):
        raise ProtocolError(f"field '{path}queue' must be 1-64 letters, digits, '_' or '-'")
    if priority is not None and not valid_priority(priority):
        raise ProtocolError(f"field '{path}priority' must be an integer from 0 to 9")


def _check_type(value: Any, expected: type | tuple[type, ...], path: str) -> None:
    allowed = expected if isinstance(expected, tuple) else (expected,)
    if value is None and _NONE not in allowed:
        raise ProtocolError(f"field {path!r} is missing")
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise ProtocolError(f"field {path!r} has the wrong type {type(value).__name__}")


def _check_int(value: Any, path: str) -> int:
    _check_type(value, int, path)
    return int(value)


def _check_id(value: Any, path: str) -> None:
    if not valid_task_id(value):
        raise ProtocolError(
            f"field {path!r} is not a valid id: {_show(value)} (1 to 128 letters, digits, "
            "'-', '_' or '=')"
        )


def _check_task_name(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise ProtocolError(f"field {path!r} must be a string")
    if not valid_task_name(value):
        raise ProtocolError(
            f"field {path!r} is not a valid task name: {_show(value)} (dot-separated words of "
            f"letters, digits and underscores, at most {MAX_TASK_NAME} characters)"
        )


def _check_args(args: Any, kwargs: Any, prefix: str) -> None:
    if args is not None and not isinstance(args, list | tuple):
        raise ProtocolError(f"field '{prefix}args' must be a list, got {type(args).__name__}")
    _check_str_keys(kwargs, f"{prefix}kwargs")


def _check_str_keys(value: Any, path: str) -> None:
    if value is not None and (
        not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value)
    ):
        raise ProtocolError(f"field {path!r} must be a map with string keys")


def _check_map_mode(value: Any, path: str) -> None:
    if value is not None and (not isinstance(value, str) or value not in _MAP_MODES):
        raise ProtocolError(f"field {path!r} must be map or starmap, not {_show(value)}")


def _check_time(value: str, path: str) -> None:
    try:
        parse_time(value)
    except ProtocolError as exc:
        raise ProtocolError(f"field {path!r}: {exc}") from None


def _check_seconds(value: Any, path: str) -> None:
    _check_type(value, (int, float), path)
    if not abs(value) <= MAX_SECONDS:  # False for NaN too
        raise ProtocolError(
            f"field {path!r} must be a finite number of seconds, at most {MAX_SECONDS:.0e}"
        )


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time field, in UTC (read as UTC without an offset); else ProtocolError.

    The pattern narrows what ``fromisoformat`` would take (ISO 8601 has many more forms) to
    RFC 3339; ``fromisoformat`` then reads ``Z`` and any number of fraction digits (keeping 6).
    """
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ProtocolError(f"{_show(text)} is not an RFC 3339 time (e.g. 2030-01-01T12:00:00Z)")
    try:
        moment = datetime.fromisoformat(text.upper())
        # In UTC now: an offset at the edge of the calendar (year 1 or 9999) cannot be.
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ProtocolError(f"{_show(text)} is not an RFC 3339 time (invalid date)") from None


def clip_text(text: str, limit: int = 1000, *, one_line: bool = False) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...[truncated N chars]`` if cut.

    For reasons, exception texts and log fields that may hold untrusted input. ``one_line``
    turns CR, LF and NUL into spaces first (for a header value).
    """
    if one_line:
        text = text.translate(_ONE_LINE)
    if len(text) <= limit:
        return text
    marker_size = len("...[truncated  chars]") + len(str(len(text)))
    if limit < marker_size:
        return text[:limit]
    keep = limit - marker_size
    return f"{text[:keep]}...[truncated {len(text) - keep} chars]"


_ONE_LINE = str.maketrans({"\r": " ", "\n": " ", "\0": " "})


def _show(value: Any) -> str:
    """A value for an error message: its repr, cut short."""
    return clip_text(repr(value), 80)
