"""Retries: the ``Retry`` signal a task raises (``self.retry(...)``).

The worker turns it into the next attempt in actors/worker/retries.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from actors.errors import ActorsError, MaxRetriesExceeded
from actors.options import ActorOptions
from actors.wire.record import describe_exception, rebuild_exception
from actors.wire.timing import time_field


class RetryingActor(Protocol):
    """What retries read of an actor (an :class:`actors.Actor`): its name and options."""

    @property
    def name(self) -> str: ...

    @property
    def options(self) -> ActorOptions: ...


class Retry(ActorsError):
    """Raised by ``self.retry(...)``: run this task again later (same id, retries + 1).

    ``when`` is the RFC 3339 time of the next run (None: at once). ``args``/``kwargs`` replace
    the task's arguments when given. ``exc`` is the error that caused the retry, if any.
    """

    def __init__(
        self,
        when: str | None = None,
        exc: BaseException | None = None,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "retry requested"
        super().__init__(f"retry at {when or 'once'} ({reason})")
        self.when = when
        self.exc = exc
        self.retry_args = args
        self.retry_kwargs = kwargs

    def to_wire(self) -> dict[str, Any]:
        """A msgpack-able map (used to pass the signal out of a child process)."""
        return {
            "when": self.when,
            "exc": describe_exception(self.exc) if self.exc is not None else None,
            "args": self.retry_args,
            "kwargs": self.retry_kwargs,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Retry:
        """Rebuild a signal from :meth:`to_wire`."""
        exc = rebuild_exception(data["exc"], None) if data.get("exc") else None
        return cls(data.get("when"), exc, data.get("args"), data.get("kwargs"))


def retry_signal(
    actor: RetryingActor,
    retries: int,
    *,
    exc: BaseException | None = None,
    countdown: float | timedelta | None = None,
    eta: datetime | None = None,
    max_retries: int | None = None,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
) -> BaseException:
    """What ``self.retry(...)`` raises: a Retry signal, or the error once retries are used up.

    Past ``max_retries`` (the argument, else the actor's option; None = no limit) this is
    ``exc`` when given, else MaxRetriesExceeded.
    """
    limit = actor.options.max_retries if max_retries is None else max_retries
    if limit is not None and retries >= limit:
        if exc is not None:
            return exc
        return MaxRetriesExceeded(
            f"{actor.name} asked for retry {retries + 1} but max_retries={limit}; raise "
            "max_retries or handle the error"
        )
    if countdown is None and eta is None:
        countdown = actor.options.default_retry_delay
    if countdown is None:
        return Retry(time_field(eta), exc, args, kwargs)
    seconds = countdown.total_seconds() if isinstance(countdown, timedelta) else countdown
    return Retry(time_field(countdown) if seconds > 0 else None, exc, args, kwargs)
