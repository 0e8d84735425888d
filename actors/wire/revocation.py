"""The revocation record: the value stored under a revoked task id in ``actors_revoked``."""

from __future__ import annotations

from datetime import UTC, datetime

from actors.errors import ProtocolError
from actors.wire import topology
from actors.wire.message import decode, encode, format_time


def revocation_value(terminate: bool) -> bytes:
    """The value stored under a revoked task id."""
    return encode({"terminate": terminate, "date": format_time(datetime.now(UTC))})


def asks_to_terminate(value: bytes) -> bool:
    """Whether a stored revocation also stops a running task; a malformed one does not."""
    try:
        entry = decode(value, topology.MSGPACK)
    except ProtocolError:
        return False
    return isinstance(entry, dict) and entry.get("terminate") is True
