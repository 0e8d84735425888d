"""The result record a worker stores under a task id in ``actors_results``, its states, and
exceptions described as data and rebuilt from it. Pure: no I/O. See docs/protocol.md."""

from __future__ import annotations

import builtins
import dataclasses
import re
import sys
import traceback as tb
from collections.abc import Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from actors.errors import ProtocolError, TaskFailed
from actors.wire import topology
from actors.wire.message import decode, encode, format_time

PENDING = "PENDING"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
ALL_STATES = frozenset({PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED})
_STATE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def valid_state(state: object) -> bool:
    """True for a state name: one of ALL_STATES or a custom state (an uppercase token of
    letters, digits and ``_``, up to 64 characters, such as PROGRESS)."""
    return isinstance(state, str) and (state in ALL_STATES or _STATE.fullmatch(state) is not None)


def check_custom_state(state: object) -> str:
    """``state`` if a task may store it with update_state; ValueError otherwise."""
    if not valid_state(state):
        raise ValueError(
            f"state {state!r} is not a state name: use an uppercase token such as 'PROGRESS' "
            "(letters, digits and _, up to 64 characters)"
        )
    assert isinstance(state, str)
    if state in READY_STATES or state == PENDING:
        raise ValueError(
            f"state {state!r} is reserved: the worker stores it; pick another (e.g. 'PROGRESS')"
        )
    return state


@dataclasses.dataclass(slots=True)
class ResultRecord:
    """What a worker stores under the task id. See docs/protocol.md."""

    id: str
    status: str
    task: str | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    traceback: str | None = None
    date_done: str | None = None
    retries: int = 0
    worker: str | None = None
    children: list[str] = dataclasses.field(default_factory=list)
    """Ids of the tasks this task sent while it ran (docs/protocol.md)."""
    v: int = topology.PROTOCOL_VERSION

    @property
    def ready(self) -> bool:
        """True for SUCCESS, FAILURE and REVOKED: the record will not change any more."""
        return self.status in READY_STATES

    def to_bytes(self) -> bytes:
        """msgpack body, leaving out empty optional fields; TypeError when a value cannot be
        encoded."""
        data = {name: getattr(self, name) for name in _RECORD_FIELDS}
        if not self.children:
            del data["children"]
        return encode({k: v for k, v in data.items() if v is not None})

    @classmethod
    def from_bytes(cls, data: bytes) -> ResultRecord:
        """Parse a stored record, checking the type of every field; unknown fields are ignored.

        Raises ProtocolError for anything that does not follow docs/protocol.md: records are
        data anyone allowed to write the results bucket may have written.
        """
        raw = decode(data, topology.MSGPACK)
        if not isinstance(raw, Mapping):
            raise ProtocolError(f"result record must be a map, got {type(raw).__name__}")
        if not topology.valid_task_id(raw.get("id")):
            raise ProtocolError("result record needs an 'id' that is a valid task id")
        if not valid_state(raw.get("status")):  # custom states (PROGRESS) are not ready
            raise ProtocolError(
                f"result record 'status' must be one of {sorted(ALL_STATES)} or an uppercase "
                "custom state"
            )
        for name in ("task", "traceback", "date_done", "worker"):
            if not isinstance(raw.get(name, ""), str | None):
                raise ProtocolError(f"result record {name!r} must be a string")
        for name in ("retries", "v"):
            value = raw.get(name, 0)
            if type(value) is not int or value < 0:
                raise ProtocolError(f"result record {name!r} must be an integer >= 0")
        if raw.get("error") is not None:
            _check_error(raw["error"])
        children = raw.get("children", [])
        if not isinstance(children, list) or not all(map(topology.valid_task_id, children)):
            raise ProtocolError("result record 'children' must be a list of task ids")
        return cls(**{k: v for k, v in raw.items() if k in _RECORD_NAMES})

    @classmethod
    def success(cls, task_id: str, task: str, value: Any, **extra: Any) -> ResultRecord:
        """A SUCCESS record stamped now."""
        return cls(id=task_id, task=task, status=SUCCESS, result=value, date_done=_now(), **extra)

    @classmethod
    def failure(
        cls, task_id: str, task: str | None, exc: BaseException, status: str = FAILURE, **extra: Any
    ) -> ResultRecord:
        """A FAILURE (or REVOKED) record describing ``exc``, with its traceback."""
        trace = "".join(tb.format_exception(exc)) if exc.__traceback__ else None
        return cls(
            id=task_id,
            task=task,
            status=status,
            error=describe_exception(exc),
            traceback=trace,
            date_done=_now(),
            **extra,
        )


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(ResultRecord))
_RECORD_NAMES = frozenset(_RECORD_FIELDS)


def _check_error(error: Any) -> None:
    if not isinstance(error, Mapping):
        raise ProtocolError("result record 'error' must be a map")
    for name in ("type", "message"):
        if not isinstance(error.get(name), str):
            raise ProtocolError(f"result record 'error.{name}' must be a string")
    if not isinstance(error.get("args", []), list):
        raise ProtocolError("result record 'error.args' must be a list")


def _now() -> str:
    return format_time(datetime.now(UTC))


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """``{"type": "module.QualName", "message": str, "args": [...]}``; args only if encodable."""
    kind = type(exc)
    module = kind.__module__
    name = kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
    described: dict[str, Any] = {"type": name, "message": str(exc)}
    try:
        encode(list(exc.args))
        described["args"] = list(exc.args)
    except (TypeError, ValueError, OverflowError):
        pass
    return described


def rebuild_exception(error: Mapping[str, Any], remote_traceback: str | None) -> BaseException:
    """The original exception when its type is importable here, else TaskFailed."""
    type_name = str(error.get("type", "Exception"))
    message = str(error.get("message", ""))
    kind = _import_exception_type(type_name)
    if kind is not None:
        try:
            exc = kind(*error.get("args", [message]))
        except Exception:  # the type's constructor wants other arguments
            exc = None
        if exc is not None:
            exc.__notes__ = [f"remote traceback:\n{remote_traceback}"] if remote_traceback else []
            return exc
    return TaskFailed(type_name, message, remote_traceback)


def _import_exception_type(type_name: str) -> type[Exception] | None:
    """Find an exception type by dotted name among modules this process already imported.

    A result record must never make a client import or run code: only the ``__dict__`` of
    modules already in ``sys.modules`` (and of classes in them) is read, never ``getattr``
    (a module's ``__getattr__`` may import lazily), and only Exception subclasses qualify
    (not SystemExit or KeyboardInterrupt).
    """
    parts = type_name.split(".")
    if len(type_name) > 500 or not all(part.isidentifier() for part in parts):
        return None  # also rejects "<locals>" in the names of local classes
    for split in range(len(parts) - 1, -1, -1):
        module = sys.modules.get(".".join(parts[:split])) if split else builtins
        if not isinstance(module, ModuleType):
            continue
        # Read through object's own descriptor: a lazy module class may load on any access.
        target: Any = object.__getattribute__(module, "__dict__").get(parts[split])
        for attr in parts[split + 1 :]:
            target = vars(target).get(attr) if isinstance(target, type) else None
        if isinstance(target, type) and issubclass(target, Exception):
            return target
        return None
    return None
