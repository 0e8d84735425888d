"""The App: settings, the registry of actors, and the connection used to send and wait."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from actors.actor import Actor, P, R, actor_options, new_task_id
from actors.client import results
from actors.client.background_loop import Portal
from actors.client.control import Control
from actors.client.result_waiter import ResultWaiter
from actors.config import Settings
from actors.errors import ConfigurationError, TaskNotRegistered
from actors.nats.broker import Broker
from actors.wire import timing, topology
from actors.wire.message import TaskMessage, encode

T = TypeVar("T")


@dataclass(slots=True)
class Connection:
    """A broker connection bound to one event loop, with its result waiter."""

    broker: Broker
    results: ResultWaiter

    async def send(
        self, message: TaskMessage, msg_id: str | None = None, expect_result: bool = True
    ) -> None:
        """Publish a task message (msgpack). ``msg_id`` defaults to the task id.

        ``expect_result=False`` for tasks whose result is not stored.
        """
        subject, body, headers = self._wire(message, msg_id)
        if expect_result:
            self.results.sent(message.id)
        ack = await self.broker.publish(subject, body, headers)
        if expect_result and ack.duplicate:
            self.results.resent(message.id)

    async def send_many(self, messages: list[TaskMessage]) -> None:
        """Publish task messages pipelined (workflows); each is stored once by its task id."""
        wired = [self._wire(message, None) for message in messages]
        for message in messages:
            if message.ignore_result is not True:
                self.results.sent(message.id)
        await self.broker.publish_many(wired)

    def _wire(self, message: TaskMessage, msg_id: str | None) -> tuple[str, bytes, dict[str, str]]:
        try:
            body = encode(message.to_wire())
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(
                f"arguments of {message.task} cannot be sent: {exc}; use msgpack types "
                "(None, bool, int, float, str, bytes, list, dict)"
            ) from None
        limit = self.broker.settings.max_message_bytes
        if len(body) > limit:
            raise ValueError(
                f"message for {message.task} is {len(body)} bytes, over max_message_bytes="
                f"{limit}; pass a reference (a key, a URL) instead of the data"
            )
        subject, headers = timing.route(message, msg_id or message.id)
        self.broker.check_size(subject, body, headers)  # MessageTooLarge, headers counted
        return subject, body, headers


class App:
    """An actors application: ``App("tasks")``, then ``@app.actor`` on functions.

    ``nats_url`` and ``config`` override settings (see :class:`actors.config.Settings`), which
    otherwise come from ``ACTORS_*`` environment variables.
    """

    def __init__(self, name: str = "actors", nats_url: str | None = None, **config: Any) -> None:
        self.name = name
        if nats_url is not None:
            config["nats_url"] = nats_url
        self.conf = Settings.build(config)
        self.registry: dict[str, Actor[Any, Any]] = {}
        self._connections: dict[asyncio.AbstractEventLoop, asyncio.Future[Connection]] = {}
        self._portal: Portal | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<App {self.name} actors={len(self.registry)}>"

    @property
    def control(self) -> Control:
        """Remote control of the app's workers: ``app.control.revoke(task_id)``."""
        return Control(self)

    # -- registry ---------------------------------------------------------------------------

    @overload
    def actor(self, fn: Callable[P, R], /) -> Actor[P, R]: ...

    @overload
    def actor(
        self, *, name: str | None = None, **options: Any
    ) -> Callable[[Callable[P, R]], Actor[P, R]]: ...

    def actor(  # type: ignore[misc]  # mypy cannot match ParamSpec across these overloads
        self, fn: Callable[P, R] | None = None, /, *, name: str | None = None, **options: Any
    ) -> Actor[P, R] | Callable[[Callable[P, R]], Actor[P, R]]:
        """Register a function as an actor: ``@app.actor`` or ``@app.actor(name=..., bind=True)``.

        The name defaults to ``module.function`` (``<app name>.function`` in ``__main__``).
        """
        parsed = actor_options(options)

        def register(function: Callable[P, R]) -> Actor[P, R]:
            task_name = topology.validate_task_name(
                name if name is not None else self._default_name(function)
            )
            existing = self.registry.get(task_name)
            if existing is not None and not _same_function(existing.fn, function):
                raise ConfigurationError(
                    f"task name {task_name!r} is already registered to {existing.fn!r}; "
                    "give one of them another name="
                )
            registered = Actor(self, function, task_name, parsed)
            self.registry[task_name] = registered
            return registered

        return register(fn) if fn is not None else register

    task = actor

    def _default_name(self, fn: Callable[..., Any]) -> str:
        if "<locals>" in fn.__qualname__:
            raise ConfigurationError(
                f"{fn.__qualname__} is defined inside a function; give it an explicit name="
            )
        module = self.name if fn.__module__ == "__main__" else fn.__module__
        return f"{module}.{fn.__qualname__}"

    def get_actor(self, name: str) -> Actor[Any, Any]:
        """The actor registered under ``name``; TaskNotRegistered if none."""
        try:
            return self.registry[name]
        except KeyError:
            raise TaskNotRegistered(
                f"task {name!r} is not registered in app {self.name!r}"
            ) from None

    def add_periodic_task(
        self,
        schedule: Any,
        sig: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> str:
        """Add an entry to ``conf.beat_schedule`` (Celery's API); return its name.

        ``sig`` is an Actor, a task name, or a signature (anything with ``task``, ``args``,
        ``kwargs`` and ``options``; ``args`` are appended to its args, ``kwargs`` and
        ``options`` merged over its own). ``schedule`` is stored as given; beat validates it.
        ``name`` defaults to the task name.
        """
        base_args: Sequence[Any] = ()
        base_kwargs: dict[str, Any] = {}
        base_options: dict[str, Any] = {}
        if isinstance(sig, str | Actor):
            task = sig if isinstance(sig, str) else sig.name
        elif hasattr(sig, "task"):
            task = str(getattr(sig.task, "name", sig.task))
            base_args, base_kwargs = sig.args or (), sig.kwargs or {}
            base_options = getattr(sig, "options", None) or {}
        else:
            raise ConfigurationError(
                f"add_periodic_task takes an Actor, a task name or a signature, got {sig!r}"
            )
        entry = {
            "task": task,
            "schedule": schedule,
            "args": (*base_args, *args),
            "kwargs": {**base_kwargs, **(kwargs or {})},
            "options": {**base_options, **options},
        }
        key = name or task
        existing = self.conf.beat_schedule.get(key)
        if existing is not None and existing != entry:
            raise ConfigurationError(f"beat_schedule has another entry {key!r}; pass name=")
        self.conf.beat_schedule[key] = entry
        return key

    # -- sending and results ----------------------------------------------------------------

    def AsyncResult(self, task_id: str) -> results.AsyncResult:
        """A handle to the result of ``task_id``."""
        return results.AsyncResult(task_id, self)

    def send_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        task_id: str | None = None,
    ) -> results.AsyncResult:
        """Send a task by name; the task need not be registered in this process."""
        return self.run_sync(self.asend_task(name, args, kwargs, task_id))

    async def asend_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        task_id: str | None = None,
    ) -> results.AsyncResult:
        """Async twin of :meth:`send_task`."""
        message = TaskMessage(
            id=task_id or new_task_id(),
            task=topology.validate_task_name(name),
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
        )
        connection = await self.connection()
        await connection.send(message)
        return results.AsyncResult(message.id, self, name)

    # -- connections ------------------------------------------------------------------------

    async def connection(self) -> Connection:
        """The connection for the running event loop, made on first use."""
        loop = asyncio.get_running_loop()
        future = self._connections.get(loop)
        if future is not None and future.done() and future.exception() is None:
            return future.result()  # the common case, kept cheap
        if future is None or future.done():
            future = loop.create_future()
            self._connections[loop] = future
            try:
                broker = await Broker.connect(self.conf, name=f"actors:{self.name}")
                # Look up, create when missing, never update: a client may lack the
                # permission to change streams (workers keep them current).
                await broker.streams.ensure_topology(update=False)
            except BaseException as exc:
                future.set_exception(exc)
                del self._connections[loop]
                future.exception()  # mark retrieved
                raise
            future.set_result(Connection(broker, ResultWaiter(broker)))
        return await asyncio.shield(future)

    def adopt_loop(self, loop: asyncio.AbstractEventLoop, connection: Connection) -> None:
        """Use ``loop`` (a worker's) for sync calls made from other threads of this process."""
        future: asyncio.Future[Connection] = loop.create_future()
        future.set_result(connection)
        self._connections[loop] = future
        self._portal = Portal(loop)

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of this app from sync code (the sync facade)."""
        with self._lock:
            if self._portal is None:
                self._portal = Portal()
            portal = self._portal
        return portal.run(coro)

    async def aclose(self) -> None:
        """Close the connection of the running loop."""
        future = self._connections.pop(asyncio.get_running_loop(), None)
        if future is not None and future.done() and future.exception() is None:
            await future.result().broker.close()

    def close(self) -> None:
        """Close the sync facade's connection and its background loop."""
        with self._lock:
            portal, self._portal = self._portal, None
        if portal is None:
            return
        if portal.owns_loop:
            portal.run(self.aclose())
            portal.close()


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    return a is b or (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )
