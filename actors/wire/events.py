"""Events: what workers (and clients that opt in) publish on ``actors.event.<kind>``. Pure.

One message carries a batch: a msgpack array of event maps, all of the same kind (the kind of
its subject). Each map has ``type`` (the kind), ``hostname``, ``timestamp`` (Unix seconds,
float) and ``clock`` (a counter per publisher, so events of one batch or one worker keep their
order), then the fields of its kind. Readers ignore fields they do not know. See
docs/protocol.md "Events".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from actors.errors import ProtocolError
from actors.wire import topology
from actors.wire.message import decode, encode

TASK_SENT = "task-sent"
TASK_RECEIVED = "task-received"
TASK_STARTED = "task-started"
TASK_SUCCEEDED = "task-succeeded"
TASK_FAILED = "task-failed"
TASK_RETRIED = "task-retried"
TASK_REVOKED = "task-revoked"
TASK_REJECTED = "task-rejected"
WORKER_ONLINE = "worker-online"
WORKER_HEARTBEAT = "worker-heartbeat"
WORKER_OFFLINE = "worker-offline"
KINDS = (
    TASK_SENT,
    TASK_RECEIVED,
    TASK_STARTED,
    TASK_SUCCEEDED,
    TASK_FAILED,
    TASK_RETRIED,
    TASK_REVOKED,
    TASK_REJECTED,
    WORKER_ONLINE,
    WORKER_HEARTBEAT,
    WORKER_OFFLINE,
)
BATCH_HEADER = "Actors-Batch"
"""``<flush number> <messages in the flush>``: the messages a worker published together."""
MAX_BATCH = 500
"""Events per message at most: a few hundred bytes each stays far below max_payload."""
MAX_STEPS = 8
"""Steps at most in a ``task-received`` event's ``chain`` and ``chord_body`` fields."""
MAX_STEP_NAME = 100
"""Characters at most of a step's name in those fields."""


def encode_batch(events: list[dict[str, Any]]) -> bytes:
    """The body of one event message: the events as a msgpack array."""
    return encode(events)


def steps(signatures: Sequence[Mapping[str, Any]]) -> list[list[str | None]]:
    """The ``chain``/``chord_body`` field of ``task-received``: ``[name, task id or None]``
    for each task of ``signatures`` (checked wire signatures; a chain's steps in order), at
    most MAX_STEPS; a group or chord step is ``["group"|"chord", its group id or None]``.

    Only ids the message carries (a frozen signature's ``options.task_id``): nothing is
    derived here, so the cost stays a few dict reads per step.
    """
    out: list[list[str | None]] = []
    for sig in signatures:
        if len(out) >= MAX_STEPS:
            break
        kind = sig.get("kind", "task")
        options = sig.get("options") or {}
        if kind == "chain":
            out += steps(sig.get("tasks") or [])[: MAX_STEPS - len(out)]
        elif kind == "task":
            out.append([str(sig.get("task"))[:MAX_STEP_NAME], options.get("task_id")])
        else:
            out.append([str(kind)[:MAX_STEP_NAME], options.get("group_id")])
    return out


def read_steps(value: Any) -> list[tuple[str, str | None]]:
    """The steps of a ``chain``/``chord_body`` field as a reader takes them: hostile input
    bounded to MAX_STEPS well-formed ``[name, id]`` pairs, anything else left out."""
    if not isinstance(value, list):
        return []
    out: list[tuple[str, str | None]] = []
    for item in value[:MAX_STEPS]:
        if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str):
            step_id = item[1] if topology.valid_task_id(item[1]) else None
            out.append((item[0][:MAX_STEP_NAME], step_id))
    return out


def decode_batch(data: bytes, subject: str) -> list[dict[str, Any]]:
    """The events of one message; ProtocolError when it is no array of event maps.

    An event without a ``type`` gets the kind of its subject.
    """
    kind = subject[len(topology.EVENT_PREFIX) :]
    raw = decode(data, topology.MSGPACK)
    if not isinstance(raw, list) or not all(isinstance(e, Mapping) for e in raw):
        raise ProtocolError(f"event message on {subject} is not an array of maps")
    events = []
    for item in raw:
        event = {str(k): v for k, v in item.items()}
        event.setdefault("type", kind)
        if not isinstance(event.get("timestamp", 0.0), int | float):
            raise ProtocolError(f"event on {subject} has a timestamp that is no number")
        events.append(event)
    return events


class Reorder:
    """Puts the events of one worker flush (several messages, one per kind) back in order.

    Feed each stored message's events with its ``Actors-Batch`` header; get back the events
    ready to show, oldest first. Messages without the header pass straight through.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], tuple[int, list[list[dict[str, Any]]]]] = {}

    def add(self, batch: list[dict[str, Any]], header: str | None) -> list[dict[str, Any]]:
        """The events that are complete once ``batch`` (one message) is added."""
        parts = (header or "").split()
        if len(parts) != 2 or not parts[1].isdigit() or not batch:
            return sorted(batch, key=_clock)
        key = (str(batch[0].get("hostname")), parts[0])
        expected, got = self._open.pop(key, (int(parts[1]), []))
        got.append(batch)
        ready: list[dict[str, Any]] = []
        for other in [k for k in self._open if k[0] == key[0]]:  # an older flush lost a part
            ready += [e for part in self._open.pop(other)[1] for e in part]
        if len(got) < expected:
            self._open[key] = (expected, got)
        else:
            ready += [e for part in got for e in part]
        return sorted(ready, key=_clock)

    def rest(self) -> list[dict[str, Any]]:
        """The events still waiting for the rest of their flush (at the end of a read)."""
        left = [e for _, parts in self._open.values() for part in parts for e in part]
        self._open.clear()
        return sorted(left, key=_clock)


def _clock(event: Mapping[str, Any]) -> int:
    clock = event.get("clock", 0)
    return clock if isinstance(clock, int) else 0


def describe(event: Mapping[str, Any]) -> str:
    """One line of text for an event, as ``actors events`` prints it."""
    kind = str(event.get("type", "?"))
    who = event.get("hostname", "?")
    if kind.startswith("worker-"):
        detail = f"active={event.get('active', 0)} processed={event.get('processed', 0)}"
        return f"{kind} {who} {detail}"
    parts = [kind, str(event.get("name", "?")), f"id={event.get('uuid', '?')}", f"on {who}"]
    for field in ("retries", "runtime", "result", "exception", "reason", "eta"):
        if event.get(field) not in (None, 0, ""):
            parts.append(f"{field}={event[field]}")
    return " ".join(parts)
