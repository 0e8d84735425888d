"""Task classes (Celery's ``Task``): handlers called around a task's run.

``@app.actor(base=MyTask)`` makes the actor an instance of ``MyTask``, a :class:`Task`
subclass, whose handlers the worker calls (through :class:`actors.middleware.
TaskClassMiddleware`) with Celery's arguments. A class with a ``run`` method is a task itself:
``@app.actor`` on the class, or ``app.register_task(MyTask)``. Handlers run on the worker's
event loop: keep them short (docs/signals.md).
"""

from __future__ import annotations

from typing import Any

from actors.actor import Actor
from actors.errors import ConfigurationError
from actors.middleware import ExceptionInfo


class Task(Actor[Any, Any]):
    """Base class of task classes; each handler is a no-op until overridden."""

    has_handlers = True

    def before_start(self, task_id: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        """Called before the task function runs."""

    def on_success(
        self, retval: Any, task_id: str, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        """Called when the task returned ``retval``."""

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: list[Any],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """Called when the task raised ``exc`` and will not be retried."""

    def on_retry(
        self,
        exc: BaseException,
        task_id: str,
        args: list[Any],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo,
    ) -> None:
        """Called when the task will be retried (``exc``: the error, or the Retry)."""

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: list[Any],
        kwargs: dict[str, Any],
        einfo: ExceptionInfo | None,
    ) -> None:
        """Called after the run, its outcome stored: ``status`` is SUCCESS, FAILURE, RETRY or
        REVOKED; ``retval`` the return value or the exception."""


def task_class(base: Any) -> type[Actor[Any, Any]]:
    """The actor class for ``base=`` (Actor when None); a ConfigurationError unless a Task."""
    if base is None:
        return Actor
    if not (isinstance(base, type) and issubclass(base, Task)):
        raise ConfigurationError(f"base= must be a subclass of actors.Task, got {base!r}")
    return base


def class_task(app: Any, cls: type[Task], name: str | None, options: dict[str, Any]) -> Task:
    """Register the class-based task ``cls`` (a Task subclass with ``run``) on ``app``."""
    if not (isinstance(cls, type) and issubclass(cls, Task)) or "run" not in _members(cls):
        raise ConfigurationError(
            f"{cls!r} is not a task class: subclass actors.Task and define run(self, ...)"
        )
    given = cls.__dict__.get("name")
    task_name = name or (given if isinstance(given, str) else None)
    if task_name is None:
        module = app.name if cls.__module__ == "__main__" else cls.__module__
        task_name = f"{module}.{cls.__qualname__}"
    actor: Task = app.actor(name=task_name, bind=True, base=cls, **options)(cls.run)  # type: ignore[attr-defined]
    return actor


def _members(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ if klass is not Task for name in vars(klass)}
