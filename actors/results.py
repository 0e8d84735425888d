"""Result records in the ``actors_results`` KV bucket, and AsyncResult to read and await them."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import sys
import traceback as tb
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actors import topology
from actors.deadlines import Deadlines
from actors.errors import ProtocolError, ResultTimeout, TaskFailed
from actors.message import decode, encode, format_time

if TYPE_CHECKING:
    from actors.app import App
    from actors.broker import Broker

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

    @classmethod
    def from_bytes(cls, data: bytes) -> ResultRecord:
        """Parse a stored record; unknown fields are ignored."""
        raw = decode(data, topology.MSGPACK)
        if not isinstance(raw, Mapping) or "id" not in raw or "status" not in raw:
            raise ProtocolError("result record must be a map with 'id' and 'status'")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

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


def _import_exception_type(type_name: str) -> type[BaseException] | None:
    """Find an exception type by dotted name among modules this process already imported.

    Only ``sys.modules`` is searched: a result record must never make a client import code.
    """
    if "<locals>" in type_name:
        return None
    parts = type_name.split(".")
    for split in range(len(parts) - 1, -1, -1):
        module = sys.modules.get(".".join(parts[:split])) if split else builtins
        if module is None:
            continue
        target: Any = module
        for attr in parts[split:]:
            target = getattr(target, attr, None)
        if isinstance(target, type) and issubclass(target, Exception):
            return target
        return None
    return None


class ResultWaiter:
    """Waits for results with one KV watch per connection, dispatching to futures by task id.

    The watch starts on the first wait. Results of tasks sent through this connection after
    that arrive through the watch and are kept until waited for (up to ``keep`` of them), so
    waiting on them needs no read from the server.
    """

    def __init__(self, broker: Broker, keep: int = 200_000) -> None:
        self._broker = broker
        self._keep = keep
        self._waiting: dict[str, list[asyncio.Future[ResultRecord]]] = {}
        self._expected: dict[str, ResultRecord | None] = {}
        self._watch: asyncio.Future[Any] | None = None
        self._live = False
        self._deadlines = Deadlines()

    def sent(self, task_id: str) -> None:
        """Note a task sent through this connection whose result will be stored."""
        if self._live:
            self._expected[task_id] = None
            if len(self._expected) > self._keep:
                del self._expected[next(iter(self._expected))]

    async def fetch(self, task_id: str) -> ResultRecord | None:
        """The stored record, or None when there is none (PENDING)."""
        data = await self._broker.kv_get(topology.RESULTS_BUCKET, task_id)
        return ResultRecord.from_bytes(data) if data is not None else None

    async def _start_watch(self) -> None:
        if self._watch is None:
            self._watch = asyncio.ensure_future(
                self._broker.kv_watch(topology.RESULTS_BUCKET, self._on_change)
            )
        await asyncio.shield(self._watch)
        self._live = True

    async def wait(self, task_id: str, timeout: float | None) -> ResultRecord:
        """The record once it is ready; ResultTimeout after ``timeout`` seconds."""
        if not self._live:
            await self._start_watch()
        expected = task_id in self._expected
        if expected:
            arrived = self._expected[task_id]
            if arrived is not None:
                del self._expected[task_id]
                return arrived
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultRecord] = loop.create_future()
        self._waiting.setdefault(task_id, []).append(future)
        if timeout is not None:
            self._deadlines.add(future, timeout)
        try:
            if not expected:
                # The watch is live, so a record stored from now on reaches the future; one
                # stored earlier is found by this read. Nothing falls in between.
                record = await self.fetch(task_id)
                if record is not None and record.ready:
                    return record
            return await future
        except TimeoutError:
            raise ResultTimeout(
                f"result of task {task_id} not ready after {timeout}s; is a worker serving "
                "the task running?"
            ) from None
        finally:
            futures = self._waiting.get(task_id, [])
            if future in futures:
                futures.remove(future)
            if not futures:
                self._waiting.pop(task_id, None)

    async def _on_change(self, key: str, value: bytes | None) -> None:
        futures = self._waiting.get(key)
        if (not futures and key not in self._expected) or value is None:
            return
        try:
            record = ResultRecord.from_bytes(value)
        except ProtocolError:
            return
        if not record.ready:
            return
        if futures:
            self._expected.pop(key, None)
            for future in futures:
                if not future.done():
                    future.set_result(record)
        else:
            self._expected[key] = record


class AsyncResult:
    """A handle to the result of one task, like Celery's.

    Sync methods work from plain code; inside a running event loop use the ``a`` twins.
    """

    def __init__(self, id: str, app: App, task_name: str | None = None) -> None:
        self.id = id
        self.app = app
        self.task_name = task_name
        self._record: ResultRecord | None = None

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    async def _aload(self) -> ResultRecord | None:
        if self._record is None or not self._record.ready:
            connection = await self.app.connection()
            self._record = await connection.results.fetch(self.id)
        return self._record

    async def astate(self) -> str:
        """The current state; PENDING when no record exists (unknown or not yet run)."""
        record = await self._aload()
        return record.status if record else PENDING

    @property
    def state(self) -> str:
        """The current state; PENDING when no record exists (unknown or not yet run)."""
        return self.app.run_sync(self.astate())

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
        record = self.app.run_sync(self._aload())
        return _outcome(record) if record else None

    info = result

    @property
    def traceback(self) -> str | None:
        """The remote traceback of a failed task."""
        record = self.app.run_sync(self._aload())
        return record.traceback if record else None

    @property
    def date_done(self) -> str | None:
        """When the task finished (RFC 3339)."""
        record = self.app.run_sync(self._aload())
        return record.date_done if record else None

    def get(self, timeout: float | None = None, propagate: bool = True) -> Any:
        """Wait for the result and return it; re-raise the task's exception if ``propagate``.

        Raises ResultTimeout after ``timeout`` seconds (None: wait for ever).
        """
        return self.app.run_sync(self.aget(timeout=timeout, propagate=propagate))

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> Any:
        """Async twin of :meth:`get`."""
        if self._record is None or not self._record.ready:
            connection = await self.app.connection()
            self._record = await connection.results.wait(self.id, timeout)
        outcome = _outcome(self._record)
        if propagate and isinstance(outcome, BaseException):
            raise outcome
        return outcome


def _outcome(record: ResultRecord) -> Any:
    if record.status == SUCCESS:
        return record.result
    if record.error is not None:
        return rebuild_exception(record.error, record.traceback)
    return None
