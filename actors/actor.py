"""The task type: an actor. Call it locally, or send it to workers with delay/apply_async."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, NoReturn, ParamSpec, TypeVar

from actors.backoff import parse_rate
from actors.canvas import Signature, chunks
from actors.client.results import AsyncResult
from actors.errors import ActorsError, ConfigurationError
from actors.retry import retry_signal
from actors.signature import link_list
from actors.wire import timing
from actors.wire.message import TaskMessage

if TYPE_CHECKING:
    from actors.app import App

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass(frozen=True, slots=True)
class ActorOptions:
    """Per-actor options given in ``@app.actor(...)``; None means "use the app's setting"."""

    bind: bool = False
    ignore_result: bool | None = None
    track_started: bool | None = None
    # Retries (docs/tasks.md "Retries"): max_retries=None retries for ever.
    max_retries: int | None = 3
    default_retry_delay: float = 180.0
    autoretry_for: tuple[type[BaseException], ...] = ()
    retry_backoff: bool | float = False
    retry_backoff_max: float = 600.0
    retry_jitter: bool = True
    retry_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    throws: tuple[type[BaseException], ...] = ()
    # Limits and delivery (docs/tasks.md): None means the worker's setting.
    time_limit: float | None = None
    soft_time_limit: float | None = None
    rate_limit: str | None = None
    acks_late: bool = True
    max_deliveries: int | None = None
    pool: str | None = None
    """``"thread"`` or ``"process"`` for sync tasks; default thread, process with time_limit."""


_OPTION_NAMES = {f.name for f in dataclasses.fields(ActorOptions)}


def actor_options(options: dict[str, Any]) -> ActorOptions:
    """Validate ``@app.actor`` keyword options."""
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        known = ", ".join(sorted(_OPTION_NAMES))
        raise ConfigurationError(f"unknown actor option(s) {', '.join(unknown)}; known: {known}")
    values = dict(options)
    for name in ("autoretry_for", "throws"):
        kinds = values.get(name, ())
        kinds = tuple(kinds) if isinstance(kinds, list | tuple) else (kinds,)
        if not all(isinstance(k, type) and issubclass(k, BaseException) for k in kinds):
            raise ConfigurationError(f"{name} must be exception classes, got {kinds!r}")
        values[name] = kinds
    if values.get("rate_limit") is not None:
        values["rate_limit"] = str(parse_rate(values["rate_limit"]))
    if values.get("pool") not in (None, "thread", "process"):
        raise ConfigurationError(f"pool must be 'thread' or 'process', got {values['pool']!r}")
    for name in ("time_limit", "soft_time_limit", "default_retry_delay", "retry_backoff_max"):
        if isinstance(values.get(name), timedelta):
            values[name] = values[name].total_seconds()
    return ActorOptions(**values)


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


def new_task_id() -> str:
    """A fresh task id: a random UUID (version 4) string, as Celery uses.

    Built from ``os.urandom`` directly: ``str(uuid.uuid4())`` costs several times more, and
    a client makes one per task.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Actor(Generic[P, R]):
    """A task type registered on an App. Created by ``@app.actor``."""

    def __init__(self, app: App, fn: Callable[P, R], name: str, options: ActorOptions) -> None:
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
        return self.app.conf.ignore_result if value is None else value

    @property
    def track_started(self) -> bool:
        """Whether a STARTED record is stored when the task begins."""
        value = self.options.track_started
        return self.app.conf.track_started if value is None else value

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here, in this process (no message is sent)."""
        if self.options.bind:
            return self.fn(self, *args, **kwargs)  # type: ignore[arg-type]
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
        *,
        task_id: str | None = None,
        headers: dict[str, Any] | None = None,
        ignore_result: bool | None = None,
        link: Any = None,
        link_error: Any = None,
        countdown: float | timedelta | None = None,
        eta: datetime | None = None,
        expires: float | timedelta | datetime | None = None,
    ) -> TaskMessage:
        """Build the task message apply_async would send."""
        now = datetime.now(UTC)
        eta_field = timing.resolve_eta(countdown, eta, now)
        if ignore_result is None and expires is not None and self.ignore_result:
            ignore_result = True  # lets the server drop it at expiry (see timing.route)
        return TaskMessage(
            id=task_id or new_task_id(),
            task=self.name,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            headers=dict(headers or {}),
            ignore_result=ignore_result,
            link=link_list(link),
            link_error=link_list(link_error),
            eta=eta_field,
            expires=timing.resolve_expires(expires, now),
        )

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Send the task to a worker: ``add.delay(2, 2)``."""
        return self.app.run_sync(self.aapply_async(args, kwargs))

    async def adelay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        """Async twin of :meth:`delay`."""
        return await self.aapply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        task_id: str | None = None,
        headers: dict[str, Any] | None = None,
        ignore_result: bool | None = None,
        link: Any = None,
        link_error: Any = None,
        countdown: float | timedelta | None = None,
        eta: datetime | None = None,
        expires: float | timedelta | datetime | None = None,
    ) -> AsyncResult:
        """Send the task with options; returns its AsyncResult.

        ``link``/``link_error``: a signature or a list of them, sent when the task succeeds
        (with its result prepended) or fails (with ``task_id, error, traceback`` prepended).
        ``countdown`` (seconds) or ``eta`` (aware datetime): do not run before then (a
        server-side schedule). ``expires`` (seconds from now, or a datetime):
        not started by then means not run, state REVOKED (reason ``expired``).
        """
        return self.app.run_sync(
            self.aapply_async(
                args,
                kwargs,
                task_id=task_id,
                headers=headers,
                ignore_result=ignore_result,
                link=link,
                link_error=link_error,
                countdown=countdown,
                eta=eta,
                expires=expires,
            )
        )

    async def aapply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        task_id: str | None = None,
        headers: dict[str, Any] | None = None,
        ignore_result: bool | None = None,
        link: Any = None,
        link_error: Any = None,
        countdown: float | timedelta | None = None,
        eta: datetime | None = None,
        expires: float | timedelta | datetime | None = None,
    ) -> AsyncResult:
        """Async twin of :meth:`apply_async`."""
        message = self.message(
            args,
            kwargs,
            task_id=task_id,
            headers=headers,
            ignore_result=ignore_result,
            link=link,
            link_error=link_error,
            countdown=countdown,
            eta=eta,
            expires=expires,
        )
        connection = await self.app.connection()
        stores = not (self.ignore_result if ignore_result is None else ignore_result)
        await connection.send(message, expect_result=stores)
        return AsyncResult(message.id, self.app, self.name)

    # -- signatures (docs/workflows.md) -----------------------------------------------------

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature of a call: ``add.s(2, 2)``; a partial one takes a parent's result."""
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
        return Signature(self, args, kwargs, options, immutable=immutable)

    def map(self, items: Iterable[Any]) -> Signature:
        """One message calling the task with each item in order: ``[task(i) for i in items]``."""
        return Signature(self, (list(items),), immutable=True, mode="map")

    def starmap(self, items: Iterable[Iterable[Any]]) -> Signature:
        """One message calling ``task(*item)`` for each item in order."""
        return Signature(self, ([list(i) for i in items],), immutable=True, mode="starmap")

    def chunks(self, items: Iterable[Iterable[Any]], n: int) -> chunks:
        """The items in chunks of ``n`` argument tuples, each chunk one starmap message."""
        return chunks(Signature(self), items, n)
