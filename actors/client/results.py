"""AsyncResult: a handle to read and await the result record of one task (groups of them:
actors/client/result_set.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

from actors.client.client import Client
from actors.client.control import Control
from actors.client.progress import OnMessage, follow
from actors.nats.bucket import Bucket
from actors.wire import topology
from actors.wire.record import (
    FAILURE,
    PENDING,
    READY_STATES,
    SUCCESS,
    ResultRecord,
    rebuild_exception,
)

R = TypeVar("R")


class ResultCollection(Protocol):
    """A GroupResult or ResultSet, as an AsyncResult's ``parent`` (actors/client/result_set.py)."""

    @property
    def results(self) -> list[Any]: ...

    @property
    def parent(self) -> Any: ...

    def leaf_ids(self) -> list[str]: ...


class AsyncResult(Generic[R]):
    """A handle to the result of one task, like Celery's; ``R`` is the task's return type.

    Sync methods work from plain code; inside a running event loop use the ``a`` twins.
    Results are read through ``client`` (``app.client``).
    """

    def __init__(self, id: str, client: Client, task_name: str | None = None) -> None:
        self.id = id
        self.client = client
        self.task_name = task_name
        self.parent: AsyncResult[Any] | ResultCollection | None = None
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
        """The return value, the exception of a failure (or retry), the ``meta`` of a custom
        state (PROGRESS), or None."""
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

    @property
    def children(self) -> list[AsyncResult[Any]] | None:
        """Results of the tasks this task sent while it ran (``delay`` from inside it, ``replace``),
        then of its link callbacks and next chain step; None while it is not finished."""
        record = self.client.run_blocking(self._aload())
        return self._children(record)

    async def achildren(self) -> list[AsyncResult[Any]] | None:
        """Async twin of :attr:`children`."""
        return self._children(await self._aload())

    def _children(self, record: ResultRecord | None) -> list[AsyncResult[Any]] | None:
        if record is None or not record.ready:
            return None
        return [AsyncResult(child, self.client) for child in record.children]

    def forget(self) -> None:
        """Delete the stored result (it expires after ``result_ttl`` anyway)."""
        self.client.run_blocking(self.aforget())

    async def aforget(self) -> None:
        """Async twin of :meth:`forget`."""
        connection = await self.client.connection()
        await Bucket(connection.broker, topology.RESULTS_BUCKET).delete(self.id)
        self._record = None

    def collect(self, timeout: float | None = None) -> Iterator[tuple[AsyncResult[Any], Any]]:
        """Wait for this task, then its children, depth first: ``(result, value)`` pairs.

        A failure raises as in :meth:`get`. ``timeout`` applies to each wait.
        """
        yield self, self.get(timeout=timeout)
        for child in self.children or ():
            yield from child.collect(timeout)

    def revoke(self, terminate: bool = False) -> None:
        """Revoke this task (see ``app.control.revoke``)."""
        Control(self.client).revoke(self.id, terminate=terminate)

    async def arevoke(self, terminate: bool = False) -> None:
        """Async twin of :meth:`revoke`."""
        await Control(self.client).arevoke(self.id, terminate=terminate)

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        on_message: OnMessage | None = None,
    ) -> R:
        """Wait for the result and return it; re-raise the task's exception if ``propagate``.

        Raises ResultTimeout after ``timeout`` seconds (None: wait for ever). With
        ``propagate=False`` a failure's exception is returned in place of the value.
        ``on_message`` is called with Celery's meta map (``status``, ``result``, ...) of each
        update the task stores (``update_state``), then of the final record, from the
        connection's one KV watch (in sync code: on the client's background thread).
        """
        if on_message is None and (self._record is None or not self._record.ready):
            self._record = self.client.arrived(self.id)  # no hop to the loop when it is here
        if self._record is None or not self._record.ready:
            return self.client.run_blocking(self.aget(timeout, propagate, on_message))
        return self._returned(propagate)

    wait = get

    async def aget(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        on_message: OnMessage | None = None,
    ) -> R:
        """Async twin of :meth:`get`.

        Raises PublishFailed when the task's pipelined publish failed (see ``app.flush``).
        """
        if self._record is None or not self._record.ready:
            await self.client.confirmed(self.id)
            connection = await self.client.connection()
            if on_message is not None:
                self._record = await follow(connection.results, self.id, timeout, on_message)
            else:
                self._record = await connection.results.wait(self.id, timeout)
        return self._returned(propagate)

    def _returned(self, propagate: bool) -> R:
        assert self._record is not None
        outcome = _outcome(self._record)
        if propagate and isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]  # R: what the task returned


def outcome(record: ResultRecord) -> Any:
    """What a record holds for its reader: the value, the exception, or a custom state's meta."""
    return _outcome(record)


def _outcome(record: ResultRecord) -> Any:
    if record.status == SUCCESS:
        return record.result
    if record.error is not None:
        return rebuild_exception(record.error, record.traceback)
    return record.result  # a custom state's meta (PROGRESS); None for STARTED
