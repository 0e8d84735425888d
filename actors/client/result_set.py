"""ResultSet and GroupResult: handles to many task results, waited on together.

Waiting uses the connection's one KV watch for every member, not a watch per member. A
GroupResult can be saved under its id and restored elsewhere (docs/protocol.md, "Saved
groups").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from actors.client.client import Client
from actors.client.control import Control
from actors.client.results import AsyncResult, ResultCollection, outcome
from actors.errors import ActorsError, ProtocolError
from actors.nats.bucket import Bucket
from actors.wire import topology
from actors.wire.message import decode, encode
from actors.wire.record import FAILURE, PENDING, READY_STATES, SUCCESS, ResultRecord

Member = AsyncResult[Any] | ResultCollection

_MAX_MEMBERS = 100_000  # in a restored group, nested ones included
_MAX_DEPTH = 32


class ResultSet:
    """Results of any tasks, waited on together (Celery's ResultSet); members keep their order.

    ``results`` holds AsyncResults, or GroupResults for nested groups. ``client`` defaults to
    the first member's.
    """

    def __init__(self, results: Iterable[Member], client: Client | None = None) -> None:
        self.results: list[Any] = list(results)
        found = client or next((r.client for r in self.results if hasattr(r, "client")), None)
        if found is None:
            raise ActorsError("a ResultSet with no results needs client= (app.client)")
        self.client: Client = found
        self.parent: AsyncResult[Any] | ResultCollection | None = None
        """The result of the step before the group in a chain."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} [{', '.join(self.leaf_ids())}]>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def __getitem__(self, index: int) -> Any:
        return self.results[index]

    def add(self, result: Member) -> None:
        """Add ``result`` unless it is a member already."""
        if result not in self.results:
            self.results.append(result)

    def update(self, results: Iterable[Member]) -> None:
        """Add each of ``results`` (see :meth:`add`)."""
        for result in results:
            self.add(result)

    def remove(self, result: Member) -> None:
        """Remove ``result``; KeyError if it is not a member."""
        if result not in self.results:
            raise KeyError(result)
        self.results.remove(result)

    def discard(self, result: Member) -> None:
        """Remove ``result`` if it is a member."""
        if result in self.results:
            self.results.remove(result)

    def clear(self) -> None:
        """Remove every member."""
        self.results.clear()

    @property
    def children(self) -> list[Any]:
        """The member results (Celery's name)."""
        return self.results

    def leaf_ids(self) -> list[str]:
        """Task ids of every member, nested groups flattened, in order."""
        ids: list[str] = []
        for member in self.results:
            ids.extend(member.leaf_ids() if isinstance(member, ResultSet) else [member.id])
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
            {status[i] for i in m.leaf_ids()} if isinstance(m, ResultSet) else {status[m.id]}
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
            if isinstance(member, ResultSet):
                values.append(member._assemble(records))
            else:
                member._record = records[member.id]
                values.append(outcome(records[member.id]))
        return values


class GroupResult(ResultSet):
    """The results of a group's tasks, in the order the tasks were given (Celery's GroupResult).

    ``save()`` stores the member ids under the group id; ``GroupResult.restore(id, app=app)``
    (or ``app.GroupResult.restore(id)``) rebuilds it in any process.
    """

    def __init__(self, id: str, results: Iterable[Member], client: Client | None = None) -> None:
        super().__init__(results, client)
        self.id = id

    def __repr__(self) -> str:
        return f"<GroupResult {self.id} [{', '.join(r.id for r in self.results)}]>"

    def as_wire(self) -> dict[str, Any]:
        """The saved form: ``{"id", "results": [task id | nested group map]}``."""
        members: list[Any] = []
        for member in self.results:
            if isinstance(member, GroupResult):
                members.append(member.as_wire())
            elif isinstance(member, AsyncResult):
                members.append(member.id)
            else:
                raise ActorsError("only AsyncResults and GroupResults in a group can be saved")
        return {"id": self.id, "results": members}

    def save(self) -> None:
        """Store the member ids under the group id (for ``result_ttl``, like the results)."""
        self.client.run_blocking(self.asave())

    async def asave(self) -> None:
        """Async twin of :meth:`save`."""
        connection = await self.client.connection()
        body = encode({"v": topology.PROTOCOL_VERSION, **self.as_wire()})
        await Bucket(connection.broker, topology.RESULTS_BUCKET).put(saved_key(self.id), body)

    def delete(self) -> None:
        """Delete the saved group (not its tasks' results)."""
        self.client.run_blocking(self.adelete())

    async def adelete(self) -> None:
        """Async twin of :meth:`delete`."""
        connection = await self.client.connection()
        await Bucket(connection.broker, topology.RESULTS_BUCKET).delete(saved_key(self.id))

    forget = delete

    @classmethod
    def restore(cls, id: str, app: Any = None, client: Client | None = None) -> GroupResult | None:
        """The saved group ``id`` (None when none is stored), read through ``app``'s client."""
        reader = _reader(app, client)
        return reader.run_blocking(cls.arestore(id, client=reader))

    @classmethod
    async def arestore(
        cls, id: str, app: Any = None, client: Client | None = None
    ) -> GroupResult | None:
        """Async twin of :meth:`restore`."""
        reader = _reader(app, client)
        connection = await reader.connection()
        data = await Bucket(connection.broker, topology.RESULTS_BUCKET).get(saved_key(id))
        if data is None:
            return None
        raw = decode(data, topology.MSGPACK)
        counted = [0]
        return _rebuild(raw, reader, counted, 0)


def _reader(app: Any, client: Client | None) -> Client:
    if client is not None:
        return client
    if app is None:
        raise ActorsError("GroupResult.restore needs app= (or use app.GroupResult.restore(id))")
    return app.client  # type: ignore[no-any-return]


def saved_key(group_id: str) -> str:
    """The results-bucket key of a saved group (task ids hold no ``.``: no clash)."""
    if not topology.valid_task_id(group_id):
        raise ProtocolError(f"{group_id!r} is not a valid group id")
    return f"group.{group_id}"


def _rebuild(raw: Any, client: Client, counted: list[int], depth: int) -> GroupResult:
    """A GroupResult from its saved map, checked as hostile input (ProtocolError)."""
    if depth > _MAX_DEPTH:
        raise ProtocolError("saved group nested too deep")
    if not isinstance(raw, Mapping) or not topology.valid_task_id(raw.get("id")):
        raise ProtocolError("saved group must be a map with a valid 'id'")
    members = raw.get("results")
    if not isinstance(members, list):
        raise ProtocolError("saved group 'results' must be a list")
    out: list[Member] = []
    for member in members:
        counted[0] += 1
        if counted[0] > _MAX_MEMBERS:
            raise ProtocolError(f"saved group has over {_MAX_MEMBERS} members")
        if isinstance(member, str) and topology.valid_task_id(member):
            out.append(AsyncResult(member, client))
        else:
            out.append(_rebuild(member, client, counted, depth + 1))
    return GroupResult(raw["id"], out, client)


class GroupResults:
    """``app.GroupResult``: makes and restores GroupResults through the app's client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __call__(self, id: str, results: Iterable[Member]) -> GroupResult:
        """A GroupResult of ``results`` under ``id``."""
        return GroupResult(id, results, self.client)

    def restore(self, id: str) -> GroupResult | None:
        """See :meth:`GroupResult.restore`."""
        return GroupResult.restore(id, client=self.client)

    async def arestore(self, id: str) -> GroupResult | None:
        """See :meth:`GroupResult.arestore`."""
        return await GroupResult.arestore(id, client=self.client)


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value
