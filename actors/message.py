"""The task message: the envelope every actor receives, and its msgpack/JSON encoding."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgpack

from actors.errors import ProtocolError
from actors.topology import JSON, MSGPACK, PROTOCOL_VERSION, valid_task_id

Signature = dict[str, Any]
"""A signature on the wire: ``{"task", "args", "kwargs", "options", "immutable"}``."""


@dataclasses.dataclass(slots=True)
class TaskMessage:
    """One request to run a task. Field meanings are specified in docs/protocol.md."""

    id: str
    task: str
    args: list[Any] = dataclasses.field(default_factory=list)
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    retries: int = 0
    eta: str | None = None
    expires: str | None = None
    link: list[Signature] = dataclasses.field(default_factory=list)
    link_error: list[Signature] = dataclasses.field(default_factory=list)
    chain: list[Signature] = dataclasses.field(default_factory=list)
    chord: dict[str, Any] | None = None
    group_id: str | None = None
    group_index: int | None = None
    root_id: str | None = None
    parent_id: str | None = None
    ignore_result: bool | None = None
    map: str | None = None
    headers: dict[str, Any] = dataclasses.field(default_factory=dict)
    v: int = PROTOCOL_VERSION

    def to_wire(self) -> dict[str, Any]:
        """The message as a plain map, leaving out fields that hold their default."""
        out: dict[str, Any] = {"v": self.v, "id": self.id, "task": self.task}
        out["args"] = self.args
        out["kwargs"] = self.kwargs
        for name, default in _OPTIONAL.items():
            value = getattr(self, name)
            if value != default or type(value) is not type(default):
                out[name] = value
        return out

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> TaskMessage:
        """Build a message from a decoded map; unknown fields are ignored (forward compatible)."""
        if not isinstance(data, Mapping):
            raise ProtocolError(f"task message must be a map, got {type(data).__name__}")
        missing = [k for k in ("id", "task") if k not in data]
        if missing:
            raise ProtocolError(f"task message misses required field(s): {', '.join(missing)}")
        if not valid_task_id(data["id"]):
            raise ProtocolError(f"task id {data['id']!r} is not a valid id (see docs/protocol.md)")
        if not isinstance(data["task"], str):
            raise ProtocolError("field 'task' must be a string")
        args = data.get("args", [])
        kwargs = data.get("kwargs", {})
        if not isinstance(args, list | tuple):
            raise ProtocolError(f"field 'args' must be a list, got {type(args).__name__}")
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise ProtocolError("field 'kwargs' must be a map with string keys")
        values: dict[str, Any] = {"id": data["id"], "task": data["task"]}
        values["args"] = list(args)
        values["kwargs"] = dict(kwargs)
        for name in (*_OPTIONAL, "v"):
            if name in data and data[name] is not None:
                values[name] = data[name]
        _check_types(values)
        return cls(**values)

    def eta_datetime(self) -> datetime | None:
        """``eta`` parsed, or None."""
        return parse_time(self.eta) if self.eta else None

    def expires_datetime(self) -> datetime | None:
        """``expires`` parsed, or None."""
        return parse_time(self.expires) if self.expires else None


_OPTIONAL: dict[str, Any] = {
    f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    for f in dataclasses.fields(TaskMessage)
    if f.name not in ("id", "task", "args", "kwargs", "v")
}
_TYPES: dict[str, type | tuple[type, ...]] = {
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
    "v": int,
}


def _check_types(values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        expected = _TYPES.get(name)
        if expected is None:
            continue
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ProtocolError(f"field {name!r} has the wrong type {type(value).__name__}")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a trailing Z, the form every time field uses."""
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time field (UTC when it has no offset); ProtocolError if not one."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ProtocolError(f"{text!r} is not an RFC 3339 time (e.g. 2030-01-01T12:00:00Z)")
    head, _, rest = text.upper().partition(".")
    if rest:  # Python parses at most 6 fractional digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[: min(digits, 6)] + rest[digits:]
        head = f"{head}.{rest}"
    try:
        moment = datetime.fromisoformat(head.replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolError(f"{text!r} is not an RFC 3339 time (invalid date)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def encode(value: Any, content_type: str = MSGPACK) -> bytes:
    """Encode a map for the wire. Raises TypeError for values msgpack/JSON cannot carry."""
    if content_type == JSON:
        return json.dumps(value, separators=(",", ":")).encode()
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def decode(data: bytes, content_type: str | None) -> Any:
    """Decode a body by its Content-Type (msgpack when absent); ProtocolError when invalid."""
    kind = (content_type or MSGPACK).split(";")[0].strip().lower()
    try:
        if kind == JSON:
            return json.loads(data)
        if kind == MSGPACK:
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        # TypeError: a map with an unhashable key; RecursionError: absurdly deep nesting.
        raise ProtocolError(f"body is not valid {kind}: {exc!r}") from None
    raise ProtocolError(f"unsupported Content-Type {content_type!r}: use {MSGPACK} or {JSON}")
