"""Middleware: typed hooks around publishing and running tasks (Dramatiq's style).

Every hook of :class:`Middleware` is a no-op; subclass it and override the hooks you need, then
``app.add_middleware(MyMiddleware())``. Every App starts with :class:`SignalMiddleware`, which
sends the Celery-named signals of :mod:`actors.signals`: signals and middleware are one
mechanism. A hook that raises is logged and never breaks the publish, the task or the worker.

Where the hooks run (docs/signals.md): publish hooks in the publishing client, on its event loop;
task hooks in the worker, on its event loop, from the worker's one observer
(:class:`actors.worker.events.TaskEvents`), in the order received, before_start, one of
success/failure/retry/revoked, after_return. ``actor`` is the :class:`actors.Actor` (typed
``Any`` here because this module sits below it); ``message`` the task's
:class:`~actors.wire.message.TaskMessage`.

This module and :mod:`actors.signals` are part of the foundation: they import only
:mod:`actors.wire`, so the client layer can call the publish hooks.
"""

from __future__ import annotations

import dataclasses
import traceback as tb
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar

import structlog

from actors import signals
from actors.wire.message import TaskMessage

log = structlog.get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """An exception with its traceback, as Celery's ``einfo``."""

    exception: BaseException
    type: type[BaseException]
    tb: TracebackType | None
    traceback: str
    """The formatted traceback."""

    @classmethod
    def of(cls, exc: BaseException) -> ExceptionInfo:
        """Describe ``exc``."""
        return cls(exc, type(exc), exc.__traceback__, "".join(tb.format_exception(exc)))


class Middleware:
    """Hooks around publishing and running tasks; each is a no-op until overridden."""

    def wants(self, hook: str) -> bool:
        """Whether ``hook`` (overridden here) is called now; the chain asks again whenever a
        signal receiver is connected or disconnected."""
        return True

    # -- publishing (the client) -------------------------------------------------------------

    def before_publish(self, message: TaskMessage, subject: str) -> None:
        """``message`` is about to be encoded and published on ``subject``; changes to it
        (``message.headers``) go on the wire."""

    def after_publish(self, message: TaskMessage, subject: str) -> None:
        """``message`` was published (the server stored it)."""

    # -- a task's run (the worker) -------------------------------------------------------------

    def task_received(self, actor: Any, message: TaskMessage) -> None:
        """A delivered message passed its checks; it runs next unless revoked."""

    def before_start(self, actor: Any, message: TaskMessage) -> None:
        """The task function is about to be called."""

    def on_success(self, actor: Any, message: TaskMessage, value: Any) -> None:
        """The task returned ``value``."""

    def on_failure(self, actor: Any, message: TaskMessage, einfo: ExceptionInfo) -> None:
        """The task raised and will not be retried."""

    def on_retry(self, actor: Any, message: TaskMessage, einfo: ExceptionInfo) -> None:
        """The task will run again (``einfo.exception`` is the Retry or the error retried)."""

    def on_revoked(self, actor: Any, message: TaskMessage, reason: str) -> None:
        """The task was revoked: ``reason`` is "revoked", "expired" or "terminated"."""

    def after_return(self, actor: Any, message: TaskMessage, state: str, value: Any) -> None:
        """The run ended in ``state`` (SUCCESS, FAILURE, RETRY, REVOKED, or IGNORED when it
        called ``self.replace``) with ``value`` (the return value or the exception), its
        outcome stored and its workflow continued."""

    def on_rejected(self, task: str, task_id: str | None, reason: str, unknown: bool) -> None:
        """A message that cannot run was dead-lettered; ``unknown`` when it names a task the
        worker does not serve on that subject."""

    # -- processes -----------------------------------------------------------------------------

    def worker_init(self, worker: Any) -> None:
        """A Worker was created (not yet connected)."""

    def worker_ready(self, worker: Any) -> None:
        """The worker is connected and consuming."""

    def worker_shutdown(self, worker: Any) -> None:
        """The worker stopped."""

    def worker_process_init(self) -> None:
        """A child process of the process pool started, before it runs its task."""

    def beat_init(self, beat: Any) -> None:
        """A beat replica started."""


class SignalMiddleware(Middleware):
    """Sends the signals of :mod:`actors.signals`; a hook whose signals have no receiver is not
    called at all (see :meth:`wants`)."""

    SENDS: ClassVar[dict[str, tuple[signals.Signal, ...]]] = {
        "before_publish": (signals.before_task_publish,),
        "after_publish": (signals.after_task_publish,),
        "task_received": (signals.task_received,),
        "before_start": (signals.task_prerun,),
        "on_success": (signals.task_success,),
        "on_failure": (signals.task_failure,),
        "on_retry": (signals.task_retry,),
        "on_revoked": (signals.task_revoked,),
        "after_return": (signals.task_postrun,),
        "on_rejected": (signals.task_rejected, signals.task_unknown),
        "worker_init": (signals.worker_init,),
        "worker_ready": (signals.worker_ready,),
        "worker_shutdown": (signals.worker_shutdown,),
        "worker_process_init": (signals.worker_process_init,),
        "beat_init": (signals.beat_init,),
    }

    def wants(self, hook: str) -> bool:
        """True while a signal this hook sends has a receiver."""
        return any(signal.receivers for signal in self.SENDS.get(hook, ()))

    def before_publish(self, message: TaskMessage, subject: str) -> None:
        if signals.before_task_publish.receivers:
            signals.before_task_publish.send(
                message.task,
                body=message,
                exchange="",
                routing_key=subject,
                headers=message.headers,
                properties={"correlation_id": message.id},
            )

    def after_publish(self, message: TaskMessage, subject: str) -> None:
        if signals.after_task_publish.receivers:
            signals.after_task_publish.send(
                message.task,
                body=message,
                exchange="",
                routing_key=subject,
                headers=message.headers,
            )

    def task_received(self, actor: Any, message: TaskMessage) -> None:
        if signals.task_received.receivers:
            signals.task_received.send(actor, request=message)

    def before_start(self, actor: Any, message: TaskMessage) -> None:
        if signals.task_prerun.receivers:
            signals.task_prerun.send(
                actor, task_id=message.id, task=actor, args=message.args, kwargs=message.kwargs
            )

    def on_success(self, actor: Any, message: TaskMessage, value: Any) -> None:
        if signals.task_success.receivers:
            signals.task_success.send(actor, result=value)

    def on_failure(self, actor: Any, message: TaskMessage, einfo: ExceptionInfo) -> None:
        if signals.task_failure.receivers:
            signals.task_failure.send(
                actor,
                task_id=message.id,
                exception=einfo.exception,
                args=message.args,
                kwargs=message.kwargs,
                traceback=einfo.tb,
                einfo=einfo,
            )

    def on_retry(self, actor: Any, message: TaskMessage, einfo: ExceptionInfo) -> None:
        if signals.task_retry.receivers:
            signals.task_retry.send(actor, request=message, reason=einfo.exception, einfo=einfo)

    def on_revoked(self, actor: Any, message: TaskMessage, reason: str) -> None:
        if signals.task_revoked.receivers:
            signals.task_revoked.send(
                actor,
                request=message,
                terminated=reason == "terminated",
                signum=None,
                expired=reason == "expired",
            )

    def after_return(self, actor: Any, message: TaskMessage, state: str, value: Any) -> None:
        if signals.task_postrun.receivers:
            signals.task_postrun.send(
                actor,
                task_id=message.id,
                task=actor,
                args=message.args,
                kwargs=message.kwargs,
                retval=value,
                state=state,
            )

    def on_rejected(self, task: str, task_id: str | None, reason: str, unknown: bool) -> None:
        if unknown and signals.task_unknown.receivers:
            signals.task_unknown.send(None, name=task, id=task_id, message=reason, exc=None)
        elif not unknown and signals.task_rejected.receivers:
            signals.task_rejected.send(None, message=reason, exc=None)

    def worker_init(self, worker: Any) -> None:
        signals.worker_init.send(worker)

    def worker_ready(self, worker: Any) -> None:
        signals.worker_ready.send(worker)

    def worker_shutdown(self, worker: Any) -> None:
        signals.worker_shutdown.send(worker)

    def worker_process_init(self) -> None:
        signals.worker_process_init.send(None)

    def beat_init(self, beat: Any) -> None:
        signals.beat_init.send(beat)


class TaskClassMiddleware(Middleware):
    """Calls the handlers of task classes (:class:`actors.Task`: ``before_start``,
    ``on_success``, ``on_failure``, ``on_retry``, ``after_return``) with Celery's arguments."""

    def before_start(self, actor: Any, message: TaskMessage) -> None:
        if actor.has_handlers:
            actor.before_start(message.id, message.args, message.kwargs)

    def on_success(self, actor: Any, message: TaskMessage, value: Any) -> None:
        if actor.has_handlers:
            actor.on_success(value, message.id, message.args, message.kwargs)

    def on_failure(self, actor: Any, message: TaskMessage, einfo: ExceptionInfo) -> None:
        if actor.has_handlers:
            exc = einfo.exception
            actor.on_failure(exc, message.id, message.args, message.kwargs, einfo)

    def on_retry(self, actor: Any, message: TaskMessage, einfo: ExceptionInfo) -> None:
        if actor.has_handlers:
            exc = einfo.exception
            actor.on_retry(exc, message.id, message.args, message.kwargs, einfo)

    def after_return(self, actor: Any, message: TaskMessage, state: str, value: Any) -> None:
        if actor.has_handlers:
            einfo = ExceptionInfo.of(value) if isinstance(value, BaseException) else None
            actor.after_return(state, value, message.id, message.args, message.kwargs, einfo)


HOOKS = (
    "before_publish",
    "after_publish",
    "task_received",
    "before_start",
    "on_success",
    "on_failure",
    "on_retry",
    "on_revoked",
    "after_return",
    "on_rejected",
    "worker_init",
    "worker_ready",
    "worker_shutdown",
    "worker_process_init",
    "beat_init",
)


class Hooks(Middleware):
    """The middleware of one App, called in the order added; a failing hook is logged. It has
    every hook of :class:`Middleware`, typed the same, and calls each on the chain.

    It starts with :class:`SignalMiddleware` (``middleware`` replaces that default). Each hook
    calls only the middleware that override it and want it now (:meth:`Middleware.wants`),
    indexed when one is added or a signal receiver comes or goes: a signal without receivers
    costs one dict lookup per hook (bench/signals.py).
    """

    def __init__(self, middleware: list[Middleware] | None = None) -> None:
        self._index: dict[str, tuple[Callable[..., object], ...]] = {}
        self.middleware: list[Middleware] = (
            [SignalMiddleware()] if middleware is None else list(middleware)
        )
        self._reindex()
        signals.on_change(self._reindex)

    def add(self, middleware: Middleware) -> None:
        """Add ``middleware`` after those already there."""
        self.middleware = [*self.middleware, middleware]
        self._reindex()

    def ensure(self, kind: type[Middleware]) -> None:
        """Add a ``kind()`` unless one is there already."""
        if not any(type(m) is kind for m in self.middleware):
            self.add(kind())

    def _reindex(self) -> None:
        self._index = {
            hook: tuple(
                getattr(m, hook)
                for m in self.middleware
                if getattr(type(m), hook) is not getattr(Middleware, hook) and m.wants(hook)
            )
            for hook in HOOKS
        }

    def _call(self, hook: str, *args: Any) -> None:
        for method in self._index[hook]:
            try:
                method(*args)
            except Exception as exc:
                log.error(
                    "middleware.failed",
                    middleware=type(getattr(method, "__self__", method)).__qualname__,
                    hook=hook,
                    error=repr(exc),
                    exc_info=exc,
                )

    # Each hook calls the middleware indexed for it, in order; a failure is logged.

    def before_publish(self, message: TaskMessage, subject: str) -> None:
        if self._index["before_publish"]:
            self._call("before_publish", message, subject)

    def after_publish(self, message: TaskMessage, subject: str) -> None:
        if self._index["after_publish"]:
            self._call("after_publish", message, subject)

    def task_received(self, actor: Any, message: TaskMessage) -> None:
        if self._index["task_received"]:
            self._call("task_received", actor, message)

    def before_start(self, actor: Any, message: TaskMessage) -> None:
        if self._index["before_start"]:
            self._call("before_start", actor, message)

    def on_success(self, actor: Any, message: TaskMessage, value: Any) -> None:
        if self._index["on_success"]:
            self._call("on_success", actor, message, value)

    def on_failure(self, actor: Any, message: TaskMessage, einfo: ExceptionInfo) -> None:
        if self._index["on_failure"]:
            self._call("on_failure", actor, message, einfo)

    def on_retry(self, actor: Any, message: TaskMessage, einfo: ExceptionInfo) -> None:
        if self._index["on_retry"]:
            self._call("on_retry", actor, message, einfo)

    def on_revoked(self, actor: Any, message: TaskMessage, reason: str) -> None:
        if self._index["on_revoked"]:
            self._call("on_revoked", actor, message, reason)

    def after_return(self, actor: Any, message: TaskMessage, state: str, value: Any) -> None:
        if self._index["after_return"]:
            self._call("after_return", actor, message, state, value)

    def on_rejected(self, task: str, task_id: str | None, reason: str, unknown: bool) -> None:
        if self._index["on_rejected"]:
            self._call("on_rejected", task, task_id, reason, unknown)

    def worker_init(self, worker: Any) -> None:
        if self._index["worker_init"]:
            self._call("worker_init", worker)

    def worker_ready(self, worker: Any) -> None:
        if self._index["worker_ready"]:
            self._call("worker_ready", worker)

    def worker_shutdown(self, worker: Any) -> None:
        if self._index["worker_shutdown"]:
            self._call("worker_shutdown", worker)

    def worker_process_init(self) -> None:
        if self._index["worker_process_init"]:
            self._call("worker_process_init")

    def beat_init(self, beat: Any) -> None:
        if self._index["beat_init"]:
            self._call("beat_init", beat)
