"""The App: settings, the registry of actors, and the client they send through."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Concatenate, Literal, Protocol, overload

from actors.actor import Actor, P, R
from actors.client import results
from actors.client.client import Client
from actors.client.control import Control
from actors.client.result_set import GroupResults
from actors.config import Settings
from actors.errors import ConfigurationError, TaskNotRegistered
from actors.middleware import Middleware, TaskClassMiddleware
from actors.options import SendOptions, actor_options
from actors.task_class import Task, class_task, task_class
from actors.wire import topology
from actors.wire.ids import new_task_id
from actors.wire.message import TaskMessage


class Register(Protocol):
    """What ``@app.actor(...)`` returns: registers the function it decorates."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Actor[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Actor[P, R]: ...


class RegisterBound(Protocol):
    """What ``@app.actor(bind=True, ...)`` returns: the function's first parameter is the
    actor itself, so it is not among the parameters of ``delay``."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /
    ) -> Actor[P, R]: ...

    @overload
    def __call__(self, fn: Callable[Concatenate[Any, P], R], /) -> Actor[P, R]: ...


class App:
    """An actors application: ``App("tasks")``, then ``@app.actor`` on functions.

    ``nats_url`` and ``config`` override settings (see :class:`actors.config.Settings`), which
    otherwise come from ``ACTORS_*`` environment variables. ``app.client`` sends the tasks and
    reads their results.
    """

    def __init__(self, name: str = "actors", nats_url: str | None = None, **config: Any) -> None:
        self.name = name
        if nats_url is not None:
            config["nats_url"] = nats_url
        self.conf = Settings.build(config)
        self.registry: dict[str, Actor[Any, Any]] = {}
        self.client = Client(self.conf, name=f"actors:{name}")

    def __repr__(self) -> str:
        return f"<App {self.name} actors={len(self.registry)}>"

    # -- hooks (docs/signals.md) ------------------------------------------------------------

    def add_middleware(self, middleware: Middleware) -> None:
        """Add a middleware: its hooks run around every publish and task run of this app."""
        self.client.hooks.add(middleware)

    @property
    def control(self) -> Control:
        """Remote control of the app's workers: ``app.control.revoke(task_id)``."""
        return Control(self.client)

    # -- registry ---------------------------------------------------------------------------

    @overload
    def actor(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Actor[P, R]: ...

    @overload
    def actor(self, fn: Callable[P, R], /) -> Actor[P, R]: ...

    @overload
    def actor(
        self, *, name: str | None = None, bind: Literal[False] = False, **options: Any
    ) -> Register: ...

    @overload
    def actor(
        self, *, name: str | None = None, bind: Literal[True], **options: Any
    ) -> RegisterBound: ...

    def actor(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        bind: bool = False,
        **options: Any,
    ) -> Any:
        """Register a function as an actor: ``@app.actor`` or ``@app.actor(name=..., bind=True)``.

        The name defaults to ``module.function`` (``<app name>.function`` in ``__main__``).
        """
        kind = task_class(options.pop("base", None))  # base=MyTask: a Task subclass
        if kind is not Actor:
            self.client.hooks.ensure(TaskClassMiddleware)  # calls the handlers of task classes
        parsed = actor_options({"bind": bind, **options})

        def register(function: Callable[..., Any]) -> Actor[Any, Any]:
            if isinstance(function, type):  # a class-based task: @app.actor on a Task subclass
                return self.register_task(function, name=name, **options)
            task_name = topology.validate_task_name(
                name if name is not None else self._default_name(function)
            )
            existing = self.registry.get(task_name)
            if existing is not None and not _same_function(existing.fn, function):
                raise ConfigurationError(
                    f"task name {task_name!r} is already registered to {existing.fn!r}; "
                    "give one of them another name="
                )
            registered: Actor[Any, Any] = kind(self, function, task_name, parsed)
            self.registry[task_name] = registered
            self.client.router.set_actor(task_name, parsed.queue, parsed.priority)
            return registered

        return register(fn) if fn is not None else register

    task = actor

    def register_task(
        self, cls: type[Task], *, name: str | None = None, **options: Any
    ) -> Actor[Any, Any]:
        """Register a class-based task: a :class:`actors.Task` subclass with a ``run`` method.

        The name is ``name=``, else the class's ``name`` attribute, else ``module.Class``.
        """
        return class_task(self, cls, name, options)

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

    def AsyncResult(self, task_id: str) -> results.AsyncResult[Any]:
        """A handle to the result of ``task_id``."""
        return results.AsyncResult(task_id, self.client)

    @property
    def GroupResult(self) -> GroupResults:  # Celery's name
        """``app.GroupResult(id, results)`` and ``app.GroupResult.restore(id)``."""
        return GroupResults(self.client)

    def send_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        task_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> results.AsyncResult[Any]:
        """Send a task by name; the task need not be registered in this process.

        ``queue`` and ``priority`` as for ``apply_async`` (docs/routing.md)."""
        return self.client.run_blocking(
            self.asend_task(name, args, kwargs, task_id, queue, priority)
        )

    async def asend_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        task_id: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> results.AsyncResult[Any]:
        """Async twin of :meth:`send_task`."""
        SendOptions(queue=queue, priority=priority)  # checks both
        message = TaskMessage(
            id=task_id or new_task_id(),
            task=topology.validate_task_name(name),
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            queue=queue,
            priority=priority,
        )
        connection = await self.client.connection()
        await connection.send(message)
        return results.AsyncResult(message.id, self.client, name)

    async def aclose(self) -> None:
        """Close the client's connection of the running loop."""
        await self.client.aclose()

    def close(self) -> None:
        """Close the client's sync facade: its connection and background loop."""
        self.client.close()


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    return a is b or (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )
