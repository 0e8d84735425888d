"""The worker record each worker keeps in the ``actors_workers`` bucket. Pure: no I/O.

Key: the worker id (``<pid>@<host>`` made one subject token). The bucket keeps a key for about
three heartbeats (``max_age``), so a worker that dies without deleting its record disappears
then. See docs/protocol.md "Worker registry".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from actors.errors import ProtocolError
from actors.wire import topology
from actors.wire.message import decode, encode


@dataclasses.dataclass(slots=True)
class WorkerRecord:
    """What a live worker tells about itself; refreshed at every heartbeat."""

    id: str
    hostname: str
    pid: int
    version: str
    actors: list[str]
    concurrency: int
    pool: str
    active: int = 0
    processed: int = 0
    failed: int = 0
    load: float = 0.0
    """1-minute load average of the host (``os.getloadavg``)."""
    started_at: str = ""
    heartbeat_at: str = ""
    """RFC 3339, UTC, like ``started_at``."""
    heartbeat: float = 2.0
    """Seconds between heartbeats: the record is gone about three of them after the last."""

    def to_bytes(self) -> bytes:
        """The msgpack map stored in the bucket."""
        return encode(dataclasses.asdict(self))

    def to_json(self) -> dict[str, Any]:
        """The record as a plain map (for ``--json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> WorkerRecord:
        """Parse a stored record; unknown fields are ignored, wrong types raise ProtocolError."""
        raw = decode(data, topology.MSGPACK)
        if not isinstance(raw, Mapping):
            raise ProtocolError(f"worker record must be a map, got {type(raw).__name__}")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name not in raw:
                if field.default is dataclasses.MISSING:
                    raise ProtocolError(f"worker record lacks {field.name!r}")
                continue
            values[field.name] = _checked(field.name, raw[field.name])
        return cls(**values)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "hostname": str,
    "pid": int,
    "version": str,
    "actors": list,
    "concurrency": int,
    "pool": str,
    "active": int,
    "processed": int,
    "failed": int,
    "load": (int, float),
    "started_at": str,
    "heartbeat_at": str,
    "heartbeat": (int, float),
}


def _checked(name: str, value: Any) -> Any:
    if not isinstance(value, _TYPES[name]) or isinstance(value, bool):
        raise ProtocolError(f"worker record {name!r} has the wrong type")
    items: list[Any] = value if isinstance(value, list) else []
    if not all(isinstance(a, str) for a in items):
        raise ProtocolError("worker record 'actors' must be a list of strings")
    if name in ("load", "heartbeat") and isinstance(value, int | float):
        return float(value)
    return value
