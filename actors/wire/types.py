"""Argument types beyond msgpack's and JSON's: datetime, date, time, UUID and Decimal, as
tagged maps (docs/protocol.md, "Argument types"). Pure.

``{"__type__": "datetime", "__value__": "2026-01-02T03:04:05+00:00"}``: the tag names the
type, the value is its ISO 8601 (or canonical string) form. The same map works in msgpack
and JSON bodies, any language can read it, and it is the form Celery's JSON serializer
(kombu) uses, so a Celery user recognises it. Encoding costs nothing for plain values (the
encoder calls :func:`default` only for types it does not know); decoding calls
:func:`object_hook` once per map, which returns any map that is not exactly such a pair at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from actors.errors import ProtocolError

TYPE = "__type__"
VALUE = "__value__"
_MAX_TEXT = 4300  # like Python's int-to-str limit: a Decimal this long is not an argument

_ENCODERS: tuple[tuple[type, str, Callable[[Any], str]], ...] = (
    (datetime, "datetime", datetime.isoformat),  # before date: a datetime is a date
    (date, "date", date.isoformat),
    (time, "time", time.isoformat),
    (UUID, "uuid", str),
    (Decimal, "decimal", str),
)
_DECODERS: dict[str, Callable[[str], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "uuid": UUID,
    "decimal": Decimal,
}


_AS_DATA: list[tuple[type, Callable[[Any], Any]]] = []


def send_as_data(kind: type, to_data: Callable[[Any], Any]) -> None:
    """Encode values of ``kind`` as ``to_data(value)`` (plain data), e.g. signatures as their
    wire maps (registered by actors/signature.py, which this layer must not import)."""
    _AS_DATA.append((kind, to_data))


def default(value: Any) -> Any:
    """The encoder's fallback: a tagged map for the types above, the plain data of a kind
    registered with :func:`send_as_data`; TypeError for anything else."""
    for kind, tag, text in _ENCODERS:
        if isinstance(value, kind):
            return {TYPE: tag, VALUE: text(value)}
    for kind, to_data in _AS_DATA:
        if isinstance(value, kind):
            return to_data(value)
    raise TypeError(f"can not serialize {type(value).__name__!r} object")


def object_hook(data: dict[Any, Any]) -> Any:
    """The decoder's hook for every map: a tagged value rebuilt, any other map unchanged.

    Only a map of exactly ``__type__`` and ``__value__`` with a known tag is read; an unknown
    tag is left as a map (a newer sender's type). A known tag with a bad value is a
    ProtocolError: the message is dead-lettered with the reason, never run with a raw map.
    """
    if len(data) != 2 or TYPE not in data or VALUE not in data:
        return data
    tag, text = data[TYPE], data[VALUE]
    decode = _DECODERS.get(tag) if isinstance(tag, str) else None
    if decode is None:
        return data
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise ProtocolError(f"tagged {tag} value must be a string of at most {_MAX_TEXT} chars")
    try:
        return decode(text)
    except (ValueError, InvalidOperation):
        shown = text[:60].encode("unicode_escape").decode("ascii")
        raise ProtocolError(f"tagged {tag} value {shown!r} is not a valid {tag}") from None
