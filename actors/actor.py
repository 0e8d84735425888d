"""The task type: an actor. Call it locally, or send it to workers with delay/apply_async."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, NoReturn, ParamSpec, TypeVar, Unpack

from actors.canvas import chunks
from actors.client.progress import store_state
from actors.client.results import AsyncResult
from actors.errors import ActorsError
from actors.options import NO_OPTIONS, ActorOptions, SendKwargs, send_options
from actors.replace import replace_signal
from actors.retry import retry_signal
from actors.signature import AppLike, Signature, task_message
from actors.wire.message import TaskMessage

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(slots=True)
class Request:
    """What a bound task sees as ``self.request`` while it runs."""

    id: str | None = None
    task: str | None = None
    args: list[Any] = dataclasses.field(default_factory=list)
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    retries: int = 0
    eta: str | None = None
    expires: str | None = None
    callbacks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    errbacks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    root_id: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    headers: dict[str, Any] = dataclasses.field(default_factory=dict)
    delivery_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``subject``, ``stream_seq`` and ``delivered`` (delivery count, 1 on first delivery)."""
    message: TaskMessage | None = None

    @classmethod
    def from_message(cls, message: TaskMessage, delivery_info: dict[str, Any]) -> Request:
        """The request of a message being run."""
        return cls(
            id=message.id,
            task=message.task,
            args=message.args,
            kwargs=message.kwargs,
            retries=message.retries,
            eta=message.eta,
            expires=message.expires,
            callbacks=message.link,
            errbacks=message.link_error,
            root_id=message.root_id,
            parent_id=message.parent_id,
            group_id=message.group_id,
            headers=message.headers,
            delivery_info=delivery_info,
            message=message,
        )


current_request: ContextVar[Request | None] = ContextVar("actors_request", default=None)


def _plain_arity(signature: inspect.Signature, bound: bool) -> int:
    """How many positional arguments always fit a function with only plain parameters
    (no defaults, no ``*args``/``**kwargs``, no keyword-only); -1 for any other function."""
    params = list(signature.parameters.values())[1 if bound else 0 :]
    plain = all(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        for p in params
    )
    return len(params) if plain else -1


class Actor(Generic[P, R]):
    """A task type registered on an App. Created by ``@app.actor``.

    ``P`` is the function's parameters (without ``self`` for ``bind=True``) and ``R`` its
    result (for an ``async def``, what it returns once awaited): ``add.delay("x")`` for
    ``def add(x: int, y: int) -> int`` is a type error, and ``add.delay(2, 2).get()`` an int.
    """

    has_handlers: ClassVar[bool] = False
    """True for task classes (:class:`actors.Task`), whose handlers the worker calls."""

    def __init__(
        self, app: AppLike, fn: Callable[..., Any], name: str, options: ActorOptions
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self.call_signature = inspect.signature(fn)
        self._plain_arity = _plain_arity(self.call_signature, options.bind)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Actor {self.name}>"

    @property
    def request(self) -> Request:
        """The running task's request (an empty one outside a task run)."""
        return current_request.get() or Request()

    @property
    def ignore_result(self) -> bool:
        """Whether results of this task are stored."""
        value = self.options.ignore_result
        return self.app.client.settings.ignore_result if value is None else value

    @property
    def track_started(self) -> bool:
        """Whether a STARTED record is stored when the task begins."""
        value = self.options.track_started
        return self.app.client.settings.track_started if value is None else value

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run the function here, in this process (no message is sent).

        Returns what the function returns: for an ``async def`` task, a coroutine to await.
        """
        if self.options.bind:
            return self.fn(self, *args, **kwargs)
        return self.fn(*args, **kwargs)

    def retry(
        self,
        exc: BaseException | None = None,
        countdown: float | timedelta | None = None,
        eta: datetime | None = None,
        max_retries: int | None = None,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> NoReturn:
        """Run this task again later; call it inside a running (bound) task and let it raise.

        Raises :class:`actors.retry.Retry`, which the worker turns into a new message with the
        same id and ``retries + 1`` (state RETRY meanwhile), after ``countdown`` seconds, at
        ``eta``, or after ``default_retry_delay``. Past ``max_retries`` it raises ``exc`` when
        given, else MaxRetriesExceeded.
        """
        request = current_request.get()
        if request is None or request.id is None:
            raise ActorsError(f"{self.name}.retry() can only be called while the task runs")
        raise retry_signal(
            self,
            request.retries,
            exc=exc,
            countdown=countdown,
            eta=eta,
            max_retries=max_retries,
            args=list(args) if args is not None else None,
            kwargs=dict(kwargs) if kwargs is not None else None,
        )

    def replace(self, sig: Any) -> NoReturn:
        """Replace this running (bound) task with ``sig``: call it inside the task.

        Raises :class:`actors.replace.Replace`. The task stores no result of its own: ``sig``
        (a task signature) runs under this task's id, so the task's
        result becomes the replacement's, and its callbacks, errbacks, the rest of its chain
        and its chord follow the replacement (Celery's ``Task.replace``).
        """
        request = current_request.get()
        if request is None or request.id is None:
            raise ActorsError(f"{self.name}.replace() can only be called while the task runs")
        if request.message is not None and request.message.map is not None:
            raise ActorsError(f"{self.name}.replace() cannot replace one item of a map/starmap")
        raise replace_signal(sig)

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None
    ) -> None:
        """Store a custom state of the running task (or of ``task_id``): Celery's
        ``self.update_state(state="PROGRESS", meta={"done": 3})``.

        ``AsyncResult.state`` and ``.info`` show it, and ``get(on_message=...)`` streams it.
        ``state`` is an uppercase token, not a final state (ValueError); the task's final
        record replaces it. From an ``async def`` task use :meth:`aupdate_state`.
        """
        self.app.client.run_blocking(self.aupdate_state(task_id, state, meta))

    async def aupdate_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None
    ) -> None:
        """Async twin of :meth:`update_state`."""
        request = current_request.get()
        task_id = task_id or (request.id if request is not None else None)
        if task_id is None:
            raise ActorsError(f"{self.name}.update_state() needs task_id= outside a task run")
        retries = request.retries if request is not None and request.id == task_id else 0
        connection = await self.app.client.connection()
        await store_state(connection, task_id, self.name, state or "PROGRESS", meta, retries)

    def check_arguments(self, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        """Raise TypeError if the arguments do not fit the function."""
        if not kwargs and len(args) == self._plain_arity:
            return  # the common case, decided without inspect's (slower) bind
        if self.options.bind:
            self.call_signature.bind(None, *args, **kwargs)
        else:
            self.call_signature.bind(*args, **kwargs)

    def message(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Unpack[SendKwargs],
    ) -> TaskMessage:
        """Build the task message apply_async would send."""
        send = send_options(options) if options else NO_OPTIONS
        zone = self.app.client.settings.timezone
        message = task_message(self.name, args, kwargs, send, zone=zone)
        if send.ignore_result is None and send.expires is not None and self.ignore_result:
            message.ignore_result = True  # lets the server drop it at expiry (see destination)
        return message

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Send the task to a worker: ``add.delay(2, 2)``.

        Returns once the message is handed to the connection; its publish is confirmed in
        the background unless ``confirm_publish`` is set (docs/tasks.md "Publish pipeline").
        """
        return self.apply_async(args, kwargs)

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult[R]:
        """Async twin of :meth:`delay`."""
        return await self.aapply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Unpack[SendKwargs],
    ) -> AsyncResult[R]:
        """Send the task with options (see :class:`actors.options.SendOptions`); returns its
        AsyncResult.

        Type checkers check the options but not ``args`` and ``kwargs``: a tuple and a map of
        the parameters ``P`` cannot be spelled in Python's types (``delay`` is checked).
        """
        message = self.message(args, kwargs, **options)
        client = self.app.client
        client.send(message, expect_result=self._stores(message))
        return AsyncResult(message.id, client, self.name)

    async def aapply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Unpack[SendKwargs],
    ) -> AsyncResult[R]:
        """Async twin of :meth:`apply_async`."""
        message = self.message(args, kwargs, **options)
        client = self.app.client
        connection = await client.connection()
        await connection.send(message, expect_result=self._stores(message))
        return AsyncResult(message.id, client, self.name)

    def _stores(self, message: TaskMessage) -> bool:
        """True when the worker will store the result of ``message``."""
        return not (self.ignore_result if message.ignore_result is None else message.ignore_result)

    # -- signatures (docs/workflows.md) -----------------------------------------------------

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of a call: ``add.s(2, 2)``; a partial one takes a parent's result.

        Not typed by ``P``: in a chain the parent's result is prepended to these arguments
        (``add.s(2)`` becomes ``add(result, 2)``), so a signature may hold only part of them.
        """
        return Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: a parent's result is not prepended to its args."""
        return Signature(self, args, kwargs, immutable=True)

    def signature(
        self,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        immutable: bool = False,
        **options: Any,
    ) -> Signature:
        """A signature with options: ``add.signature((2, 2), countdown=10)``."""
        return Signature(self, args, kwargs, immutable=immutable).set(**options)

    def map(self, items: Iterable[Any]) -> Signature:
        """One message calling the task with each item in order: ``[task(i) for i in items]``."""
        return Signature(self, (list(items),), immutable=True, mode="map")

    def starmap(self, items: Iterable[Iterable[Any]]) -> Signature:
        """One message calling ``task(*item)`` for each item in order."""
        return Signature(self, ([list(i) for i in items],), immutable=True, mode="starmap")

    def chunks(self, items: Iterable[Iterable[Any]], n: int) -> chunks:
        """The items in chunks of ``n`` argument tuples, each chunk one starmap message."""
        return chunks(Signature(self), items, n)
