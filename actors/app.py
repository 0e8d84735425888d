"""The App: settings, the registry of actors, and the client they send through."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Concatenate, Literal, Protocol, overload

from actors import app_setup, builtins, current
from actors.actor import Actor, P, R
from actors.client import results
from actors.client.client import Client
from actors.client.control import Control
from actors.client.result_set import GroupResults
from actors.config import Settings
from actors.errors import ConfigurationError, TaskNotRegistered
from actors.middleware import Middleware, TaskClassMiddleware
from actors.options import actor_options, send_options
from actors.signature import task_message
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

    ``nats_url`` (or Celery's ``broker``) and ``config`` override settings (see
    :class:`actors.config.Settings`; Celery's setting names are read too), which otherwise come
    from ``ACTORS_*`` environment variables. ``app.client`` sends the tasks and reads their
    results.
    """

    def __init__(
        self,
        name: str = "actors",
        nats_url: str | None = None,
        *,
        broker: str | None = None,
        **config: Any,
    ) -> None:
        self.name = name
        if nats_url is not None and broker is not None and nats_url != broker:
            raise ConfigurationError("give nats_url or broker (its Celery name), not both")
        url = nats_url if nats_url is not None else broker
        if url is not None:
            config["nats_url"] = url
        self.conf = Settings.build(config)
        self.registry: dict[str, Actor[Any, Any]] = {}
        self.client = Client(self.conf, name=f"actors:{name}")
        self._tracing: Middleware | None = None
        self._setting_changed("tracing")
        self.conf.watch(self._setting_changed)
        builtins.register(self)
        current.created(self)

    def __repr__(self) -> str:
        return f"<App {self.name} actors={len(self.registry)}>"

    # -- hooks (docs/signals.md) ------------------------------------------------------------

    def _setting_changed(self, name: str) -> None:
        """Apply a changed setting that acts on the App: ``tracing``, the task defaults."""
        if name == "tracing":
            self._tracing = app_setup.apply_tracing(
                self.client.hooks, self._tracing, self.conf.tracing
            )
        elif name in app_setup.TASK_DEFAULTS:
            app_setup.apply_task_default(self.registry, name, getattr(self.conf, name))

    def add_middleware(self, middleware: Middleware) -> None:
        """Add a middleware: its hooks run around every publish and task run of this app."""
        self.client.hooks.add(middleware)

    @property
    def tasks(self) -> dict[str, Actor[Any, Any]]:
        """The registered actors by name, with the built-in ``actors.accumulate`` (Celery's
        ``app.tasks``, which lists its ``celery.*`` built-ins too; a copy)."""
        return dict(self.registry)

    def set_current(self) -> None:
        """Make this the App that signatures without ``app=`` send through (actors/current.py)."""
        current.set_current(self)

    def config_from_object(self, obj: Any, namespace: str | None = None) -> None:
        """Update the settings from a module (or its name, e.g. ``"celeryconfig"``) or an
        object, as Celery does; see :func:`actors.app_setup.config_from_object`."""
        app_setup.config_from_object(self, obj, namespace)

    def autodiscover_tasks(self, packages: Sequence[str], related_name: str = "tasks") -> None:
        """Import ``<package>.tasks`` of each package that has one, registering its actors."""
        app_setup.autodiscover_tasks(packages, related_name)

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
        parsed = actor_options({**app_setup.task_defaults(self.conf), "bind": bind, **options})

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
            registered.explicit_options = frozenset(options)
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
        **options: Any,
    ) -> results.AsyncResult[Any]:
        """Send a task by name; the task need not be registered in this process.

        Pipelined like ``delay()`` (see :meth:`flush`). ``options`` are those of
        ``apply_async`` (``countdown``, ``eta``, ``link``, ...).
        """
        message = self._named_message(name, args, kwargs, task_id, options)
        self.client.send(message, expect_result=message.ignore_result is not True)
        return results.AsyncResult(message.id, self.client, name)

    async def asend_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        task_id: str | None = None,
        **options: Any,
    ) -> results.AsyncResult[Any]:
        """Async twin of :meth:`send_task`."""
        message = self._named_message(name, args, kwargs, task_id, options)
        connection = await self.client.connection()
        await connection.send(message, expect_result=message.ignore_result is not True)
        return results.AsyncResult(message.id, self.client, name)

    def flush(self) -> None:
        """Wait until every task sent from sync code so far is stored by the server.

        Raises PublishFailed for the first publish that failed and was not raised yet (by
        its ``get()`` or an earlier flush), noting how many more did. ``delay()`` returns
        before its publish is confirmed (unless ``confirm_publish``); call this where a
        script must know its tasks are queued, e.g. before it reports success.
        """
        self.client.flush()

    def _named_message(
        self,
        name: str,
        args: Sequence[Any] | None,
        kwargs: dict[str, Any] | None,
        task_id: str | None,
        options: dict[str, Any],
    ) -> TaskMessage:
        send = send_options({"task_id": task_id or new_task_id(), **options})
        return task_message(
            topology.validate_task_name(name), args, kwargs, send, zone=self.conf.timezone
        )

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
