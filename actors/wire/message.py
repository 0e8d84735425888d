"""The task message: the envelope every actor receives, and its msgpack/JSON encoding."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgpack

from actors.errors import ConfigurationError, ProtocolError
from actors.wire import types
from actors.wire.topology import JSON, MSGPACK, PROTOCOL_VERSION
from actors.wire.validation import check_message
from actors.wire.validation import clip_text as clip_text  # re-exported: bounds untrusted text
from actors.wire.validation import parse_time as parse_time  # re-exported: the time field reader

WireSignature = dict[str, Any]
"""A signature on the wire: ``{"task", "args", "kwargs", "options", "immutable"}`` for a task,
``{"kind": "group" | "chain" | "chord", ...}`` for the others (docs/protocol.md, "Signatures")."""


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
    link: list[WireSignature] = dataclasses.field(default_factory=list)
    link_error: list[WireSignature] = dataclasses.field(default_factory=list)
    chain: list[WireSignature] = dataclasses.field(default_factory=list)
    chord: dict[str, Any] | None = None
    group_id: str | None = None
    group_index: int | None = None
    root_id: str | None = None
    parent_id: str | None = None
    ignore_result: bool | None = None
    map: str | None = None
    headers: dict[str, Any] = dataclasses.field(default_factory=dict)
    queue: str | None = None
    """The queue it was routed to; None is the default queue (docs/routing.md)."""
    priority: int | None = None
    """0 (lowest) to 9 (most urgent); None is the normal band."""
    v: int = PROTOCOL_VERSION
    msg_id: str | None = None
    """Not on the wire: the ``Nats-Msg-Id`` to publish with when it is not ``id`` (a
    replacement's final task, docs/protocol.md "Replacing a task")."""

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
        """Build a message from a decoded map, checked completely (actors/wire/validation.py).

        Raises ProtocolError, and only that, for anything that does not follow
        docs/protocol.md; unknown fields are ignored (forward compatible).
        """
        return cls(**check_message(data))

    def eta_datetime(self) -> datetime | None:
        """``eta`` parsed, or None."""
        return parse_time(self.eta) if self.eta else None

    def expires_datetime(self) -> datetime | None:
        """``expires`` parsed, or None."""
        return parse_time(self.expires) if self.expires else None


_OPTIONAL: dict[str, Any] = {
    f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    for f in dataclasses.fields(TaskMessage)
    if f.name not in ("id", "task", "args", "kwargs", "v", "msg_id")
}


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a trailing Z, the form every time field uses."""
    if moment.tzinfo is None:
        raise ConfigurationError("datetimes must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode(value: Any, content_type: str = MSGPACK) -> bytes:
    """Encode a map for the wire. datetime, date, time, UUID and Decimal become tagged maps
    and signatures their wire maps (actors/wire/types.py); TypeError for anything else that
    msgpack/JSON cannot carry."""
    if content_type == JSON:
        return json.dumps(value, separators=(",", ":"), default=types.default).encode()
    return msgpack.packb(value, use_bin_type=True, default=types.default)  # type: ignore[no-any-return]


_INT_RANGE = (-(2**63), 2**64 - 1)


def _wire_int(text: str) -> int:
    """A JSON integer that msgpack can carry too (a message's values are re-sent as msgpack:
    chain steps, results); ValueError otherwise."""
    value = int(text)
    if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise ValueError(f"integer {clip_text(text, 30)} is outside -2**63..2**64-1")
    return value


_TAG_KEY = types.TYPE.encode()


def decode(data: bytes, content_type: str | None, typed: bool = True) -> Any:
    """Decode a body by its Content-Type (msgpack when absent); ProtocolError when invalid.

    Tagged maps become datetime, date, time, UUID and Decimal values unless ``typed`` is
    False (to read the id of a message whose tagged values are bad).
    """
    kind = (content_type or MSGPACK).split(";")[0].strip().lower()
    hook = types.object_hook if typed else None
    try:
        if kind == JSON:
            return json.loads(data, parse_int=_wire_int, object_hook=hook)
        if kind == MSGPACK:
            if _TAG_KEY not in data:  # msgpack strings are raw UTF-8: no map can be tagged
                hook = None  # and no Python call per map (a chain's steps are many maps)
            return msgpack.unpackb(data, raw=False, strict_map_key=False, object_hook=hook)
    except ProtocolError:
        raise  # a bad tagged value: its own reason
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        # TypeError: a map with an unhashable key; RecursionError: absurdly deep nesting.
        # Only the type and a short text: msgpack's ExtraData repr holds the trailing bytes.
        problem = clip_text(str(exc), 200, one_line=True)
        raise ProtocolError(f"body is not valid {kind}: {type(exc).__name__}: {problem}") from None
    raise ProtocolError(
        f"unsupported Content-Type {clip_text(repr(content_type), 100)}: use {MSGPACK} or {JSON}"
    )
