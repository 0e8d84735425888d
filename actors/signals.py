"""Signals with Celery's names and arguments: ``@signals.task_failure.connect``.

A :class:`Signal` is a list of receivers. Sending one calls each receiver with the signal's
named arguments (and ``signal`` and ``sender``); a receiver that raises is logged and never
breaks the task or the worker. Nothing is done, not even building the arguments, while a signal
has no receiver: the hooks check :attr:`Signal.receivers` first (bench/signals.py measures it).

The signals are sent by :class:`actors.middleware.SignalMiddleware`, the built-in middleware
every App has; see docs/signals.md for each signal's arguments and where it differs from Celery.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_watchers: list[weakref.WeakMethod[Callable[[], None]]] = []


def on_change(callback: Callable[[], None]) -> None:
    """Call the bound method ``callback`` whenever a receiver is connected or disconnected
    (held weakly): the middleware chains re-index, so a signal without receivers costs nothing."""
    _watchers.append(weakref.WeakMethod(callback))


def _changed() -> None:
    alive = [w for w in _watchers if w() is not None]
    _watchers[:] = alive
    for watcher in alive:
        callback = watcher()
        if callback is not None:
            callback()


class Signal:
    """Receivers of one kind of event, connected with :meth:`connect`."""

    def __init__(self, name: str, arguments: tuple[str, ...] = ()) -> None:
        self.name = name
        self.arguments = arguments
        """The named arguments receivers get (besides ``signal`` and ``sender``)."""
        self.receivers: list[tuple[Callable[..., Any], Any]] = []
        """``(receiver, sender filter)`` pairs; empty means sending costs nothing."""

    def __repr__(self) -> str:
        return f"<Signal {self.name}>"

    def connect(self, receiver: F | None = None, *, sender: Any = None) -> Any:
        """Connect ``receiver`` (also as a decorator, bare or with ``sender=``).

        With ``sender`` the receiver only hears sends from that sender: an Actor, or a task
        name (``sender="tasks.add"``) which matches the Actor of that name too.
        """

        def connect(fn: F) -> F:
            if (fn, sender) not in self.receivers:
                self.receivers = [*self.receivers, (fn, sender)]  # a copy: sends may be running
                _changed()
            return fn

        return connect(receiver) if receiver is not None else connect

    def disconnect(self, receiver: Callable[..., Any], sender: Any = None) -> bool:
        """Disconnect ``receiver`` (connected with this ``sender``); False if it was not."""
        kept = [pair for pair in self.receivers if pair != (receiver, sender)]
        found = len(kept) != len(self.receivers)
        self.receivers = kept
        if found:
            _changed()
        return found

    def send(self, sender: Any = None, **named: Any) -> list[tuple[Callable[..., Any], Any]]:
        """Call every matching receiver; return ``(receiver, value or exception)`` pairs."""
        replies: list[tuple[Callable[..., Any], Any]] = []
        for receiver, wanted in self.receivers:
            if wanted is not None and not _matches(wanted, sender):
                continue
            try:
                replies.append((receiver, receiver(signal=self, sender=sender, **named)))
            except Exception as exc:
                log.error(
                    "signal.receiver_failed",
                    signal=self.name,
                    receiver=getattr(receiver, "__qualname__", repr(receiver)),
                    error=repr(exc),
                    exc_info=exc,
                )
                replies.append((receiver, exc))
        return replies


def _matches(wanted: Any, sender: Any) -> bool:
    if wanted is sender or wanted == sender:
        return True
    name = getattr(sender, "name", None)
    return isinstance(wanted, str) and name == wanted


# -- publish (sent by the client that publishes, sender = the task name) -----------------------
before_task_publish = Signal(
    "before_task_publish", ("body", "exchange", "routing_key", "headers", "properties")
)
after_task_publish = Signal("after_task_publish", ("body", "exchange", "routing_key", "headers"))

# -- tasks (sent by the worker, sender = the Actor unless said otherwise) ------------------------
task_received = Signal("task_received", ("request",))
task_prerun = Signal("task_prerun", ("task_id", "task", "args", "kwargs"))
task_postrun = Signal("task_postrun", ("task_id", "task", "args", "kwargs", "retval", "state"))
task_success = Signal("task_success", ("result",))
task_failure = Signal(
    "task_failure", ("task_id", "exception", "args", "kwargs", "traceback", "einfo")
)
task_retry = Signal("task_retry", ("request", "reason", "einfo"))
task_revoked = Signal("task_revoked", ("request", "terminated", "signum", "expired"))
task_rejected = Signal("task_rejected", ("message", "exc"))
task_unknown = Signal("task_unknown", ("name", "id", "message", "exc"))

# -- worker and beat (sender = the Worker, or the Beat) ---------------------------------------
worker_init = Signal("worker_init")
worker_process_init = Signal("worker_process_init")
worker_ready = Signal("worker_ready")
worker_shutdown = Signal("worker_shutdown")
beat_init = Signal("beat_init")

__all__ = [
    "Signal",
    "after_task_publish",
    "beat_init",
    "before_task_publish",
    "task_failure",
    "task_postrun",
    "task_prerun",
    "task_received",
    "task_rejected",
    "task_retry",
    "task_revoked",
    "task_success",
    "task_unknown",
    "worker_init",
    "worker_process_init",
    "worker_ready",
    "worker_shutdown",
]
