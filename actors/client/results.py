"""Result records in the ``actors_results`` KV bucket, and AsyncResult to read and await them."""

from __future__ import annotations

import builtins
import dataclasses
import sys
import traceback as tb
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from actors.errors import ProtocolError, TaskFailed
from actors.wire import topology
from actors.wire.message import decode, encode, format_time

if TYPE_CHECKING:
    # Not at run time while ResultRecord is defined here: the client imports the result
    # waiter, which imports ResultRecord. Once it lives in actors/wire/record.py, import both
    # normally and drop _control.
    from actors.client.client import Client
    from actors.client.control import Control
    from actors.nats.broker import Broker

R = TypeVar("R")

PENDING = "PENDING"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
ALL_STATES = frozenset({PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED})


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
    v: int = topology.PROTOCOL_VERSION

    @property
    def ready(self) -> bool:
        """True for SUCCESS, FAILURE and REVOKED: the record will not change any more."""
        return self.status in READY_STATES

    def to_bytes(self) -> bytes:
        """msgpack body, leaving out empty optional fields."""
        data = {name: getattr(self, name) for name in _RECORD_FIELDS}
        return encode({k: v for k, v in data.items() if v is not None})

    async def store(self, broker: Broker) -> None:
        """Write the record under its task id in the results bucket.

        Raises TypeError (before any I/O) when a value cannot be encoded.
        """
        await broker.kv_put(topology.RESULTS_BUCKET, self.id, self.to_bytes())

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
        status = raw.get("status")
        if not isinstance(status, str) or status not in ALL_STATES:
            raise ProtocolError(f"result record 'status' must be one of {sorted(ALL_STATES)}")
        for name in ("task", "traceback", "date_done", "worker"):
            if not isinstance(raw.get(name, ""), str | None):
                raise ProtocolError(f"result record {name!r} must be a string")
        for name in ("retries", "v"):
            value = raw.get(name, 0)
            if type(value) is not int or value < 0:
                raise ProtocolError(f"result record {name!r} must be an integer >= 0")
        if raw.get("error") is not None:
            _check_error(raw["error"])
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


class AsyncResult(Generic[R]):
    """A handle to the result of one task, like Celery's; ``R`` is the task's return type.

    Sync methods work from plain code; inside a running event loop use the ``a`` twins.
    Results are read through ``client`` (``app.client``).
    """

    def __init__(self, id: str, client: Client, task_name: str | None = None) -> None:
        self.id = id
        self.client = client
        self.task_name = task_name
        self.parent: AsyncResult[Any] | GroupResult | None = None
        """The result of the step before this one in a chain (or a chord's header)."""
        self._record: ResultRecord | None = None

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    async def _aload(self) -> ResultRecord | None:
        if self._record is None or not self._record.ready:
            connection = await self.client.connection()
            self._record = await connection.results.fetch(self.id)
        return self._record

    async def astate(self) -> str:
        """The current state; PENDING when no record exists (unknown or not yet run)."""
        record = await self._aload()
        return record.status if record else PENDING

    @property
    def state(self) -> str:
        """The current state; PENDING when no record exists (unknown or not yet run)."""
        return self.client.run_blocking(self.astate())

    status = state

    def ready(self) -> bool:
        """True once the task succeeded, failed or was revoked."""
        return self.state in READY_STATES

    def successful(self) -> bool:
        """True if the task succeeded."""
        return self.state == SUCCESS

    def failed(self) -> bool:
        """True if the task failed."""
        return self.state == FAILURE

    @property
    def result(self) -> Any:
        """The return value, the exception for a failure, or None while not ready."""
        record = self.client.run_blocking(self._aload())
        return _outcome(record) if record else None

    info = result

    @property
    def traceback(self) -> str | None:
        """The remote traceback of a failed task."""
        record = self.client.run_blocking(self._aload())
        return record.traceback if record else None

    @property
    def date_done(self) -> str | None:
        """When the task finished (RFC 3339)."""
        record = self.client.run_blocking(self._aload())
        return record.date_done if record else None

    def revoke(self, terminate: bool = False) -> None:
        """Revoke this task (see ``app.control.revoke``)."""
        _control(self.client).revoke(self.id, terminate=terminate)

    async def arevoke(self, terminate: bool = False) -> None:
        """Async twin of :meth:`revoke`."""
        await _control(self.client).arevoke(self.id, terminate=terminate)

    def get(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Wait for the result and return it; re-raise the task's exception if ``propagate``.

        Raises ResultTimeout after ``timeout`` seconds (None: wait for ever). With
        ``propagate=False`` a failure's exception is returned in place of the value.
        """
        return self.client.run_blocking(self.aget(timeout=timeout, propagate=propagate))

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Async twin of :meth:`get`."""
        if self._record is None or not self._record.ready:
            connection = await self.client.connection()
            self._record = await connection.results.wait(self.id, timeout)
        outcome = _outcome(self._record)
        if propagate and isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]  # R: what the task returned


def _outcome(record: ResultRecord) -> Any:
    if record.status == SUCCESS:
        return record.result
    if record.error is not None:
        return rebuild_exception(record.error, record.traceback)
    return None


class GroupResult:
    """The results of a group's tasks, in the order the tasks were given (Celery's GroupResult).

    ``results`` holds an AsyncResult per task, or a GroupResult for a nested group. Waiting uses
    the connection's one KV watch for every member, not a watch per member.
    """

    def __init__(
        self, id: str, results: list[AsyncResult[Any] | GroupResult], client: Client
    ) -> None:
        self.id = id
        self.results = results
        self.client = client
        self.parent: AsyncResult[Any] | GroupResult | None = None
        """The result of the step before the group in a chain."""

    def __repr__(self) -> str:
        return f"<GroupResult {self.id} [{', '.join(r.id for r in self.results)}]>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult[Any] | GroupResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult[Any] | GroupResult:
        return self.results[index]

    @property
    def children(self) -> list[AsyncResult[Any] | GroupResult]:
        """The member results (Celery's name)."""
        return self.results

    def leaf_ids(self) -> list[str]:
        """Task ids of every member, nested groups flattened, in order."""
        ids: list[str] = []
        for member in self.results:
            ids.extend(member.leaf_ids() if isinstance(member, GroupResult) else [member.id])
        return ids

    def revoke(self, terminate: bool = False) -> None:
        """Revoke every member task (see ``app.control.revoke``)."""
        _control(self.client).revoke(self.leaf_ids(), terminate=terminate)

    async def arevoke(self, terminate: bool = False) -> None:
        """Async twin of :meth:`revoke`."""
        await _control(self.client).arevoke(self.leaf_ids(), terminate=terminate)

    async def _astates(self) -> list[set[str]]:
        """Per member: the set of states of its tasks (PENDING where nothing is stored)."""
        connection = await self.client.connection()
        ids = self.leaf_ids()
        records = await connection.results.fetch_many(ids)
        status = {i: (r.status if r else PENDING) for i, r in zip(ids, records, strict=True)}
        return [
            {status[i] for i in m.leaf_ids()} if isinstance(m, GroupResult) else {status[m.id]}
            for m in self.results
        ]

    async def acompleted_count(self) -> int:
        """Async twin of :meth:`completed_count`."""
        return sum(1 for states in await self._astates() if states == {SUCCESS})

    def completed_count(self) -> int:
        """How many members succeeded."""
        return self.client.run_blocking(self.acompleted_count())

    def ready(self) -> bool:
        """True once every member succeeded, failed or was revoked."""
        states = self.client.run_blocking(self._astates())
        return all(s <= READY_STATES for s in states)

    def waiting(self) -> bool:
        """True while any member is not ready."""
        return not self.ready()

    def successful(self) -> bool:
        """True if every member succeeded."""
        return all(s == {SUCCESS} for s in self.client.run_blocking(self._astates()))

    def failed(self) -> bool:
        """True if any member failed."""
        return any(FAILURE in s for s in self.client.run_blocking(self._astates()))

    def get(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Wait for every member; return their results in order (nested groups as lists).

        With ``propagate`` the first failure (in member order) is raised; otherwise exceptions
        take the failed members' places. ResultTimeout after ``timeout`` seconds.
        """
        return self.client.run_blocking(self.aget(timeout=timeout, propagate=propagate))

    join = get

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Async twin of :meth:`get`."""
        connection = await self.client.connection()
        ids = self.leaf_ids()
        records = dict(zip(ids, await connection.results.wait_many(ids, timeout), strict=True))
        values = self._assemble(records)
        if propagate:
            for value in _flatten(values):
                if isinstance(value, BaseException):
                    raise value
        return values

    ajoin = aget

    def _assemble(self, records: Mapping[str, ResultRecord]) -> list[Any]:
        values: list[Any] = []
        for member in self.results:
            if isinstance(member, GroupResult):
                values.append(member._assemble(records))
            else:
                member._record = records[member.id]
                values.append(_outcome(records[member.id]))
        return values


def _control(client: Client) -> Control:
    from actors.client.control import Control  # see the imports above

    return Control(client)


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value
