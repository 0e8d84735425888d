"""The workflow primitives: chain, group, chord and chunks (map/starmap are Signature modes).

Each primitive is plain data like a Signature and travels as message fields: a chain as the
``chain`` field (the steps still to run), a group as N messages sharing a ``group_id``, a chord
as a ``chord`` field on each header message. docs/workflows.md shows how each one travels.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Self, cast

from actors.client.client import Client
from actors.client.result_set import GroupResult
from actors.errors import ConfigurationError, ConfigurationTypeError
from actors.options import check_send_options
from actors.signature import (
    ActorLike,
    AppLike,
    Canvas,
    Hop,
    Result,
    Signature,
    from_wire,
    link_list,
    maybe_signature,
    send_all,
    wire_options,
)
from actors.wire.ids import derived_id
from actors.wire.message import TaskMessage, WireSignature

__all__ = [
    "Canvas",
    "Signature",
    "chain",
    "chord",
    "chunks",
    "from_wire",
    "group",
    "maybe_signature",
    "send_all",
    "signature",
]


class group(Canvas, kind="group"):
    """Run signatures in parallel: ``group(add.s(i, i) for i in range(10))``."""

    def __init__(
        self, *tasks: Any, options: dict[str, Any] | None = None, app: AppLike | None = None
    ) -> None:
        self.tasks: list[Canvas] = [maybe_signature(t, app) for t in _members(tasks)]
        self.options = dict(options or {})
        self.app = app

    def __repr__(self) -> str:
        return f"<group {self.tasks!r}>"

    @property
    def id(self) -> str | None:
        """The group id, once frozen (or set with ``group_id=``)."""
        return self.options.get("group_id")

    def to_wire(self) -> WireSignature:
        """See :meth:`Canvas.to_wire`."""
        tasks = [t.to_wire() for t in self.tasks]
        return {"kind": "group", "tasks": tasks, "options": wire_options(self.options)}

    @classmethod
    def from_fields(cls, data: WireSignature, app: AppLike | None) -> group:
        """See :meth:`Canvas.from_fields`."""
        tasks = (from_wire(t, app) for t in data["tasks"])
        return cls(*tasks, options=data.get("options"), app=app)

    def assign_ids(self, seed: str | None = None) -> None:
        """See :meth:`Canvas.assign_ids`. ``link_error`` of the group goes to every member."""
        if self.options.get("link"):
            raise ConfigurationError("a group has no link: use a chord to run a task after it")
        self.options.setdefault("group_id", derived_id(seed and f"{seed}.g"))
        _spread_route(self.options, self.tasks)
        _spread_errbacks(self.options, self.tasks)
        for index, task in enumerate(self.tasks):
            task.assign_ids(seed and f"{seed}.{index}")

    def result(self, client: Client) -> GroupResult:
        """See :meth:`Canvas.result`."""
        return GroupResult(self.options["group_id"], [t.result(client) for t in self.tasks], client)

    def freeze(self, seed: str | None = None) -> GroupResult:
        """See :meth:`Canvas.freeze`."""
        return cast(GroupResult, super().freeze(seed))

    def messages(self, extra: list[Any], rest: list[WireSignature], hop: Hop) -> list[TaskMessage]:
        """See :meth:`Canvas.messages`. A group followed by more steps becomes a chord."""
        if rest:
            return chord(self, _chain_of(rest, self.find_app())).messages(extra, [], hop)
        if hop.chord is not None:
            raise ConfigurationError("a chord header member must be a task or a chain of tasks")
        out: list[TaskMessage] = []
        for index, task in enumerate(self.tasks):
            member = dataclasses.replace(hop, group_id=self.id, group_index=index)
            out.extend(task.messages(extra, [], member))
        return out

    def tasks_in(self) -> list[Signature]:
        """See :meth:`Canvas.tasks_in`."""
        return [s for t in self.tasks for s in t.tasks_in()]

    def __call__(self, *args: Any, **options: Any) -> Result:
        """Send the group (as Celery does): ``group(...)()``."""
        return self.apply_async(args, **options)


class chain(Canvas, kind="chain"):
    """Run signatures one after another, each result feeding the next: ``a.s() | b.s()``."""

    def __init__(
        self, *tasks: Any, options: dict[str, Any] | None = None, app: AppLike | None = None
    ) -> None:
        self.tasks: list[Canvas] = []
        for task in (maybe_signature(t, app) for t in _members(tasks)):
            flat = isinstance(task, chain) and not task.options
            self.tasks.extend(task.tasks if isinstance(task, chain) and flat else [task])
        if not self.tasks:
            raise ConfigurationError("a chain needs at least one signature")
        self.options = dict(options or {})
        self.app = app

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks)

    def to_wire(self) -> WireSignature:
        """See :meth:`Canvas.to_wire`."""
        tasks = [t.to_wire() for t in self.tasks]
        return {"kind": "chain", "tasks": tasks, "options": wire_options(self.options)}

    @classmethod
    def from_fields(cls, data: WireSignature, app: AppLike | None) -> chain:
        """See :meth:`Canvas.from_fields`."""
        tasks = (from_wire(t, app) for t in data["tasks"])
        return cls(*tasks, options=data.get("options"), app=app)

    def assign_ids(self, seed: str | None = None) -> None:
        """See :meth:`Canvas.assign_ids`: ``link_error`` of the chain goes to every step,
        ``link`` to the last one."""
        _spread_route(self.options, self.tasks)
        _spread_errbacks(self.options, self.tasks)
        if "link" in self.options:
            self.tasks[-1].options["link"] = link_list(self.options.pop("link"))
        for index, task in enumerate(self.tasks):
            task.assign_ids(seed and f"{seed}.{index}")

    def result(self, client: Client) -> Result:
        """See :meth:`Canvas.result`: the last step's result, ``.parent`` leading back."""
        previous: Result | None = None
        for task in self.tasks:
            result = task.result(client)
            if previous is not None:
                _first(result).parent = previous
            previous = result
        assert previous is not None
        return previous

    def messages(self, extra: list[Any], rest: list[WireSignature], hop: Hop) -> list[TaskMessage]:
        """See :meth:`Canvas.messages`."""
        if hop.chord is not None and not all(isinstance(t, Signature) for t in self.tasks):
            raise ConfigurationError("a chain in a chord header must hold only tasks")
        following = [t.to_wire() for t in self.tasks[1:]]
        return self.tasks[0].messages(extra, [*following, *rest], hop)

    def tasks_in(self) -> list[Signature]:
        """See :meth:`Canvas.tasks_in`."""
        return [s for t in self.tasks for s in t.tasks_in()]

    def __call__(self, *args: Any, **options: Any) -> Result:
        """Send the chain (as Celery does): ``chain(...)()``."""
        return self.apply_async(args, **options)


class chord(Canvas, kind="chord"):
    """A group (the header) whose ordered results are passed to one more task (the body).

    ``chord(header, body)`` or ``chord(header)(body)``. The result is the body's, with
    ``.parent`` the header's GroupResult. ``link_error`` is the body's errbacks.
    """

    def __init__(
        self,
        header: Any,
        body: Canvas | None = None,
        options: dict[str, Any] | None = None,
        app: AppLike | None = None,
    ) -> None:
        self.header = header if isinstance(header, group) else group(header, app=app)
        self.body = body
        self.options = dict(options or {})
        self.app = app

    def __repr__(self) -> str:
        return f"<chord {self.header!r} -> {self.body!r}>"

    def to_wire(self) -> WireSignature:
        """See :meth:`Canvas.to_wire`."""
        body = self.body.to_wire() if self.body is not None else None
        header = self.header.to_wire()
        options = wire_options(self.options)
        return {"kind": "chord", "header": header, "body": body, "options": options}

    def _body(self) -> Canvas:
        if self.body is None:
            raise ConfigurationError("chord has no body: chord(header)(body) or chord(header, b)")
        return self.body

    @classmethod
    def from_fields(cls, data: WireSignature, app: AppLike | None) -> chord:
        """See :meth:`Canvas.from_fields`."""
        body = None if data.get("body") is None else from_wire(data["body"], app)
        return cls(from_wire(data["header"], app), body, data.get("options"), app)

    def assign_ids(self, seed: str | None = None) -> None:
        """See :meth:`Canvas.assign_ids`."""
        body = self._body()
        _spread_route(self.options, [self.header, body])
        _spread_errbacks(self.options, [body])
        self.header.assign_ids(seed and f"{seed}.h")
        body.assign_ids(seed and f"{seed}.b")

    def result(self, client: Client) -> Result:
        """See :meth:`Canvas.result`: the body's, with ``.parent`` the header's."""
        result = self._body().result(client)
        _first(result).parent = self.header.result(client)
        return result

    def messages(self, extra: list[Any], rest: list[WireSignature], hop: Hop) -> list[TaskMessage]:
        """See :meth:`Canvas.messages`: each header member carries the chord id, size, body."""
        if hop.chord is not None:
            raise ConfigurationError("a chord cannot be a member of another chord's header")
        body = self._body()
        if rest:
            body = chain(body, _chain_of(rest, self.find_app()))
        body.assign_ids(f"{self.header.id}.body")  # fills only ids a foreign sender left out
        size = len(self.header.tasks)
        if size == 0:
            return body.messages([[]], [], hop)
        spec = {"id": self.header.id, "size": size, "body": body.to_wire()}
        out: list[TaskMessage] = []
        for index, task in enumerate(self.header.tasks):
            if isinstance(task, group | chord):
                raise ConfigurationError("a chord header member must be a task or a chain of tasks")
            joining = {**spec, "index": index}
            member = Hop(hop.root_id, hop.parent_id, joining, self.header.id, index)
            out.extend(task.messages(extra, [], member))
        return out

    def tasks_in(self) -> list[Signature]:
        """See :meth:`Canvas.tasks_in`."""
        return [*self.header.tasks_in(), *self._body().tasks_in()]

    def __call__(self, body: Canvas | None = None, **options: Any) -> Result:
        """Send the chord: ``chord(header)(body)``."""
        sig = chord(self.header, body or self.body, self.options, self.app)
        return sig.apply_async(**options)

    async def acall(self, body: Canvas | None = None, **options: Any) -> Result:
        """Async twin of calling the chord: ``await chord(header).acall(body)``."""
        sig = chord(self.header, body or self.body, self.options, self.app)
        return await sig.aapply_async(**options)


class chunks(group):
    """``add.chunks(items, n)``: the items in chunks of ``n``, each chunk one starmap message."""

    def __init__(self, task: Signature, items: Iterable[Iterable[Any]], n: int) -> None:
        if n < 1:
            raise ConfigurationError("chunk size must be at least 1")
        listed = [list(item) for item in items]
        parts = [listed[i : i + n] for i in range(0, len(listed), n)]
        starmaps = [
            Signature(task.task, (part,), task.kwargs, task.options, True, task.app, "starmap")
            for part in parts
        ]
        super().__init__(*starmaps, app=task.app)

    def clone(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Self:
        """A copy with copied member signatures (still a chunks)."""
        if args or kwargs:
            raise ConfigurationTypeError("chunks.clone takes no args or kwargs")
        check_send_options(options)
        twin = copy.copy(self)
        twin.tasks = [t.clone() for t in self.tasks]
        twin.options = {**self.options, **options}
        return twin

    def group(self) -> group:
        """The plain group of starmap signatures."""
        return group(*self.tasks, options=self.options, app=self.app)


def signature(
    task: str | ActorLike | WireSignature,
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    app: AppLike | None = None,
    immutable: bool = False,
    **options: Any,
) -> Canvas:
    """A signature by task name (the task need not be registered here), or from a wire map."""
    if isinstance(task, dict):
        return from_wire(task, app)
    return Signature(task, args, kwargs, immutable=immutable, app=app).set(**options)


def _members(tasks: tuple[Any, ...]) -> tuple[Any, ...]:
    """The members given to group()/chain(): as arguments, or one iterable of them."""
    if len(tasks) != 1 or isinstance(tasks[0], Canvas | dict):
        return tasks
    try:
        return tuple(tasks[0])
    except TypeError:
        raise ConfigurationTypeError(
            f"expected signatures (e.g. add.s(2, 2)) or one iterable of them, got {tasks[0]!r}"
        ) from None


def _chain_of(rest: list[WireSignature], app: AppLike | None) -> Canvas:
    steps = [from_wire(s, app) for s in rest]
    return steps[0] if len(steps) == 1 else chain(*steps, app=app)


def _first(result: Result) -> Result:
    while result.parent is not None:
        result = cast(Result, result.parent)  # a GroupResult or an AsyncResult
    return result


def _spread_route(options: dict[str, Any], parts: list[Canvas]) -> None:
    """A queue or priority given to a group, chain or chord applies to every part inside that
    names none (docs/routing.md)."""
    for name in ("queue", "priority"):
        if options.get(name) is not None:
            for part in parts:
                part.options.setdefault(name, options[name])


def _spread_errbacks(options: dict[str, Any], tasks: list[Canvas]) -> None:
    errbacks = link_list(options.pop("link_error", None))
    for task in tasks if errbacks else []:
        task.options["link_error"] = [*link_list(task.options.get("link_error")), *errbacks]
