"""Signatures: one task call as plain data, and the base class of every workflow primitive.

A signature (task name, args, kwargs, options, immutable) round-trips through msgpack and JSON
(see docs/protocol.md, "Signatures"), so another language can build one, and it can name a task
this process does not have. Sending a workflow *freezes* it (every task gets its id up front,
so the result objects exist at once), turns it into the first task messages, with what happens
next carried inside them, and publishes those. The worker that finishes a task publishes the
next messages (actors/worker/continuations.py); no task waits on another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, Self, cast

from actors.client.client import Client
from actors.client.connection import Connection
from actors.client.result_set import GroupResult
from actors.client.results import AsyncResult
from actors.current import current_app, find_current
from actors.errors import ConfigurationTypeError, ProtocolError
from actors.options import SendOptions, check_send_options
from actors.wire import topology, types
from actors.wire.ids import derived_id, new_task_id
from actors.wire.message import TaskMessage, WireSignature, format_time
from actors.wire.timing import time_field

Result = AsyncResult[Any] | GroupResult
_MAX_MSG_ID = 256


class AppLike(Protocol):
    """What actors and signatures use of their App (an :class:`actors.App`, which is above
    them): the client they are sent through, and the registry that finds a task by name."""

    @property
    def client(self) -> Client: ...

    def get_actor(self, name: str) -> Callable[..., Any]: ...


class ActorLike(Protocol):
    """An :class:`actors.Actor`, as a signature of one of its calls sees it."""

    @property
    def name(self) -> str: ...

    @property
    def app(self) -> AppLike: ...


KINDS: dict[str, type[Canvas]] = {}
"""Every signature kind by its wire name: task (here), group, chain and chord (actors.canvas)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Hop:
    """What a message carries besides its own signature: lineage and group/chord membership."""

    root_id: str | None = None
    parent_id: str | None = None
    chord: dict[str, Any] | None = None
    group_id: str | None = None
    group_index: int | None = None


_START = Hop()


class Canvas:
    """Base of Signature, group, chain and chord: options, sending, ``|``."""

    app: AppLike | None
    options: dict[str, Any]

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind:
            KINDS[kind] = cls

    @classmethod
    def from_fields(cls, data: WireSignature, app: AppLike | None) -> Canvas:
        """This kind rebuilt from its wire map (``from_wire`` checked the shared fields)."""
        raise NotImplementedError

    def to_wire(self) -> WireSignature:
        """The signature as a plain map (docs/protocol.md, "Signatures")."""
        raise NotImplementedError

    def assign_ids(self, seed: str | None = None) -> None:
        """Assign every missing task id (derived from ``seed`` if given), and hand options that
        apply to members (``link_error``, a chain's ``link``) down to them. Needs no App."""
        raise NotImplementedError

    def result(self, client: Client) -> Result:
        """The result of this signature (its ids assigned), read through ``client``."""
        raise NotImplementedError

    def freeze(self, seed: str | None = None) -> Result:
        """Assign every missing task id (see :meth:`assign_ids`); return the result."""
        client = self.bound_app().client
        self.assign_ids(seed)
        return self.result(client)

    def messages(self, extra: list[Any], rest: list[WireSignature], hop: Hop) -> list[TaskMessage]:
        """The task messages that start this (frozen) signature.

        ``extra`` is prepended to the args (a parent's result), ``rest`` is what follows it in
        a chain, in wire form.
        """
        raise NotImplementedError

    def tasks_in(self) -> list[Signature]:
        """Every task signature inside, in order (to mark them when they will not run)."""
        raise NotImplementedError

    def set(self, **options: Any) -> Self:
        """Set options (any apply_async option) in place; returns self.

        An unknown option is a ConfigurationError. Naive ``eta``/``expires`` datetimes are
        read in the App's ``timezone`` now (stored as RFC 3339 UTC).
        """
        check_send_options(options)
        SendOptions.pick(options)  # checks queue and priority now, not when the step is sent
        for name in ("eta", "expires"):
            value = options.get(name)
            if isinstance(value, datetime) and value.tzinfo is None:
                app = self.find_app() or find_current()
                zone = app.client.settings.timezone if app is not None else "UTC"
                options[name] = time_field(value, zone=zone)
        self.options.update(options)
        return self

    def clone(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Self:
        """A deep copy (via the wire form), with ``options`` set on it; as in Celery, ``args``
        are prepended to a task signature's args and ``kwargs`` merged over its kwargs."""
        twin = from_wire(self.to_wire(), self.find_app())
        if args or kwargs:
            if not isinstance(twin, Signature):
                raise ConfigurationTypeError(f"{type(self).__name__}.clone takes no args/kwargs")
            twin.args, twin.kwargs = (*(args or ()), *twin.args), {**twin.kwargs, **(kwargs or {})}
        return cast(Self, twin.set(**options))

    def find_app(self) -> AppLike | None:
        """The App of this signature or of the first task inside that has one."""
        return self.app or next((t.app for t in self.tasks_in() if t.app), None)

    def bound_app(self) -> AppLike:
        """The App this signature sends through: its own, else the current App
        (actors/current.py); ConfigurationError when there is none."""
        app = self.find_app()
        return app if app is not None else cast(AppLike, current_app())

    def __or__(self, other: Canvas) -> Canvas:
        """``a | b``: the chain of both."""
        chain = cast(Callable[[Canvas, Canvas], Canvas], KINDS["chain"])  # in actors.canvas
        return chain(self, other)

    def delay(self, *args: Any, **kwargs: Any) -> Result:
        """Send with these partial arguments: ``sig.delay(2)``."""
        return self.apply_async(args, kwargs)

    async def adelay(self, *args: Any, **kwargs: Any) -> Result:
        """Async twin of :meth:`delay`."""
        return await self.aapply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Result:
        """Send it; ``args`` are prepended to the args of the first task(s)."""
        client = self.bound_app().client
        return client.run_blocking(self.aapply_async(args, kwargs, **options))

    async def aapply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Result:
        """Async twin of :meth:`apply_async`."""
        client = self.bound_app().client
        sig = self.clone(**options)
        if kwargs:
            sig = sig.with_kwargs(kwargs)
        result = sig.freeze()
        await send_all(await client.connection(), sig.messages(list(args or ()), [], _START))
        return result

    def with_kwargs(self, kwargs: dict[str, Any]) -> Self:
        """Merge keyword arguments (task signatures only)."""
        raise ConfigurationTypeError(f"{type(self).__name__} takes no keyword arguments when sent")


# A signature given as an argument (or returned) travels as its wire map.
types.send_as_data(Canvas, lambda sig: sig.to_wire())


class Signature(Canvas, kind="task"):
    """One task call as data: ``add.s(2, 2)``, ``signature("tasks.add", args=(2, 2))``.

    ``mode`` is ``"map"`` or ``"starmap"`` for ``task.map(items)``/``task.starmap(items)``:
    one message whose worker calls the task for each item in order.
    """

    def __init__(
        self,
        task: str | ActorLike,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        immutable: bool = False,
        app: AppLike | None = None,
        mode: str | None = None,
    ) -> None:
        if not isinstance(task, str):
            app, task = app or task.app, task.name
        self.task = task
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.options = dict(options or {})
        self.immutable = immutable
        self.app = app
        self.mode = mode

    def __repr__(self) -> str:
        kind = f".{self.mode}" if self.mode else ""
        return f"<Signature {self.task}{kind}{self.args!r} {self.kwargs!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signature) and other.to_wire() == self.to_wire()

    __hash__ = None  # type: ignore[assignment]  # mutable, like Celery's

    @property
    def id(self) -> str | None:
        """The task id, once frozen (or set with ``task_id=``)."""
        return self.options.get("task_id")

    @classmethod
    def from_fields(cls, data: WireSignature, app: AppLike | None) -> Signature:
        """See :meth:`Canvas.from_fields`."""
        if not isinstance(data.get("task"), str):
            raise ProtocolError("signature field 'task' must be a string")
        args, kwargs = data.get("args") or [], data.get("kwargs") or {}
        if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
            raise ProtocolError("signature fields 'args' and 'kwargs' must be a list and a map")
        mode = data.get("map")
        if mode not in (None, "map", "starmap"):
            raise ProtocolError(f"signature field 'map' must be map or starmap, not {mode!r}")
        immutable = bool(data.get("immutable", False))
        return cls(data["task"], args, kwargs, data.get("options"), immutable, app, mode)

    def to_wire(self) -> WireSignature:
        """See :meth:`Canvas.to_wire`."""
        out: WireSignature = {"task": self.task, "args": list(self.args), "kwargs": self.kwargs}
        out["options"] = wire_options(self.options)
        out["immutable"] = self.immutable
        if self.mode:
            out["map"] = self.mode
        return out

    def assign_ids(self, seed: str | None = None) -> None:
        """See :meth:`Canvas.assign_ids`."""
        self.options.setdefault("task_id", derived_id(seed))

    def result(self, client: Client) -> AsyncResult[Any]:
        """See :meth:`Canvas.result`."""
        return AsyncResult(self.options["task_id"], client, self.task)

    def freeze(self, seed: str | None = None) -> AsyncResult[Any]:
        """See :meth:`Canvas.freeze`."""
        return cast(AsyncResult[Any], super().freeze(seed))

    def messages(self, extra: list[Any], rest: list[WireSignature], hop: Hop) -> list[TaskMessage]:
        """See :meth:`Canvas.messages`."""
        args = self.args if self.immutable else (*extra, *self.args)
        options = SendOptions.pick(self.options)
        message = task_message(self.task, args, self.kwargs, options, hop, rest, self.mode)
        msg_id = self.options.get("msg_id")
        if msg_id is not None:
            if not isinstance(msg_id, str) or not 0 < len(msg_id) <= _MAX_MSG_ID:
                raise ProtocolError("signature option 'msg_id' must be a string of 1-256 chars")
            message.msg_id = topology.header_value(msg_id)
        return [message]

    def tasks_in(self) -> list[Signature]:
        """See :meth:`Canvas.tasks_in`."""
        return [self]

    def link(self, callback: Canvas) -> Canvas:
        """Add a callback run with this task's result; returns the callback."""
        self.options["link"] = [*link_list(self.options.get("link")), callback.to_wire()]
        return callback

    def link_error(self, errback: Canvas) -> Canvas:
        """Add an errback run if this task fails; returns the errback."""
        errbacks = link_list(self.options.get("link_error"))
        self.options["link_error"] = [*errbacks, errback.to_wire()]
        return errback

    on_error = link_error

    def with_kwargs(self, kwargs: dict[str, Any]) -> Self:
        """See :meth:`Canvas.with_kwargs`."""
        self.kwargs = {**self.kwargs, **kwargs}
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here, in this process (no message), with partial arguments merged."""
        actor = self.bound_app().get_actor(self.task)
        merged = {**self.kwargs, **kwargs}
        if self.mode == "map":
            return [actor(item, **merged) for item in self.args[0]]
        if self.mode == "starmap":
            return [actor(*item, **merged) for item in self.args[0]]
        return actor(*(self.args if self.immutable else (*args, *self.args)), **merged)


def task_message(
    task: str,
    args: Iterable[Any] | None,
    kwargs: Mapping[str, Any] | None,
    options: SendOptions,
    hop: Hop = _START,
    chain: list[WireSignature] | None = None,
    mode: str | None = None,
    zone: str = "UTC",
) -> TaskMessage:
    """The message of one call of ``task`` sent with ``options``; ``hop`` and ``chain`` place
    it in a workflow, ``mode`` makes it a map or starmap; naive datetimes are read in ``zone``."""
    eta = expires = None
    if options.countdown is not None or options.eta is not None or options.expires is not None:
        now = datetime.now(UTC)
        when = options.eta if options.countdown is None else options.countdown
        eta = time_field(when, now, zone)
        expires = time_field(options.expires, now, zone)
    return TaskMessage(
        id=options.task_id or new_task_id(),
        task=task,
        args=list(args or ()),
        kwargs=dict(kwargs or {}),
        eta=eta,
        expires=expires,
        link=link_list(options.link),
        link_error=link_list(options.link_error),
        chain=chain if chain is not None else [],
        chord=hop.chord,
        group_id=hop.group_id,
        group_index=hop.group_index,
        root_id=hop.root_id,
        parent_id=hop.parent_id,
        ignore_result=options.ignore_result,
        map=mode,
        headers=dict(options.headers or {}),
        queue=options.queue,
        priority=options.priority,
    )


def maybe_signature(value: Any, app: AppLike | None = None) -> Canvas:
    """A Canvas as is, a wire map decoded; anything else is a TypeError."""
    if isinstance(value, Canvas):
        return value
    if isinstance(value, dict):
        return from_wire(value, app)
    raise ConfigurationTypeError(f"expected a signature (e.g. add.s(2, 2)), got {value!r}")


def from_wire(data: Any, app: AppLike | None = None) -> Canvas:
    """Rebuild a signature from its wire map; ProtocolError when it is not one."""
    if not isinstance(data, dict):
        raise ProtocolError(f"a signature must be a map, got {type(data).__name__}")
    kind = data.get("kind", "task")
    if not isinstance(data.get("options") or {}, dict):
        raise ProtocolError("signature field 'options' must be a map")
    build = KINDS.get(kind) if isinstance(kind, str) else None
    if build is None:
        raise ProtocolError(f"unknown signature kind {kind!r}: use task, group, chain or chord")
    try:
        return build.from_fields(data, app)
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"malformed {kind} signature: {exc!r}") from None


def link_list(value: Any) -> list[WireSignature]:
    """``link``/``link_error`` option (one signature or a list) as wire maps."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [maybe_signature(item).to_wire() for item in items]


async def send_all(connection: Connection, messages: list[TaskMessage]) -> None:
    """Publish task messages (pipelined when several); returns once all are stored."""
    if len(messages) == 1:
        await connection.send(messages[0])
    elif messages:
        await connection.send_many(messages)


def wire_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options as msgpack/JSON-friendly data (signatures as maps, times as RFC 3339 or
    seconds)."""
    out = dict(options)
    for name in ("link", "link_error"):
        if name in out:
            out[name] = link_list(out[name])
    for name in ("eta", "expires"):
        if isinstance(out.get(name), datetime):
            out[name] = format_time(out[name])
    for name in ("countdown", "expires"):
        if isinstance(out.get(name), timedelta):
            out[name] = out[name].total_seconds()
    return out
