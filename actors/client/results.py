"""AsyncResult and GroupResult: handles to read and await the result records of tasks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from actors.client.client import Client
from actors.client.control import Control
from actors.wire.record import (
    FAILURE,
    PENDING,
    READY_STATES,
    SUCCESS,
    ResultRecord,
    rebuild_exception,
)

R = TypeVar("R")


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
            failed = self.client.publish_failure(self.id)
            if failed is not None:
                raise failed
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
        Control(self.client).revoke(self.id, terminate=terminate)

    async def arevoke(self, terminate: bool = False) -> None:
        """Async twin of :meth:`revoke`."""
        await Control(self.client).arevoke(self.id, terminate=terminate)

    def get(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Wait for the result and return it; re-raise the task's exception if ``propagate``.

        Raises ResultTimeout after ``timeout`` seconds (None: wait for ever). With
        ``propagate=False`` a failure's exception is returned in place of the value.
        """
        if self._record is None or not self._record.ready:
            self._record = self.client.arrived(self.id)  # no hop to the loop when it is here
            if self._record is None:
                return self.client.run_blocking(self.aget(timeout=timeout, propagate=propagate))
        return self._returned(propagate)

    wait = get

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Async twin of :meth:`get`.

        Raises PublishFailed when the task's pipelined publish failed (see ``app.flush``).
        """
        if self._record is None or not self._record.ready:
            await self.client.confirmed(self.id)
            connection = await self.client.connection()
            self._record = await connection.results.wait(self.id, timeout)
        return self._returned(propagate)

    def _returned(self, propagate: bool) -> R:
        assert self._record is not None
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
        Control(self.client).revoke(self.leaf_ids(), terminate=terminate)

    async def arevoke(self, terminate: bool = False) -> None:
        """Async twin of :meth:`revoke`."""
        await Control(self.client).arevoke(self.leaf_ids(), terminate=terminate)

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


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value
