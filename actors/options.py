"""Options: of an actor (``@app.actor(...)``) and of one send (``apply_async(...)``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypedDict

from actors.backoff import parse_rate
from actors.errors import ConfigurationError
from actors.wire.routing import check_priority, check_queue


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
    queue: str | None = None
    """The queue this actor's tasks go to unless a call or ``task_routes`` names another."""
    priority: int | None = None
    """Default priority (0-9) of this actor's tasks; None is the normal band."""


_ACTOR_OPTIONS = {f.name for f in dataclasses.fields(ActorOptions)}


def actor_options(options: dict[str, Any]) -> ActorOptions:
    """Validate ``@app.actor`` keyword options."""
    unknown = sorted(set(options) - _ACTOR_OPTIONS)
    if unknown:
        known = ", ".join(sorted(_ACTOR_OPTIONS))
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
    if values.get("queue") is not None:
        check_queue(values["queue"])
    if values.get("priority") is not None:
        check_priority(values["priority"])
    for name in ("time_limit", "soft_time_limit", "default_retry_delay", "retry_backoff_max"):
        if isinstance(values.get(name), timedelta):
            values[name] = values[name].total_seconds()
    return ActorOptions(**values)


@dataclasses.dataclass(frozen=True, slots=True)
class SendOptions:
    """How to send one task: the options of ``apply_async``, also kept in a signature's options.

    ``link``/``link_error``: a signature (or its wire map) or a list of them, sent when the task
    succeeds (with its result prepended) or fails (with ``task_id, error, traceback``
    prepended). ``countdown`` (seconds) or ``eta`` (aware datetime): do not run before then (a
    server-side schedule); countdown wins. ``expires`` (seconds from now, or a datetime): not
    started by then means not run, state REVOKED (reason ``expired``). ``queue``: the queue
    to send to (docs/routing.md); ``priority``: 0 (lowest) to 9 (most urgent).
    """

    task_id: str | None = None
    headers: Mapping[str, Any] | None = None
    ignore_result: bool | None = None
    link: Any = None
    link_error: Any = None
    countdown: float | timedelta | None = None
    eta: datetime | str | None = None
    expires: float | timedelta | datetime | str | None = None
    # Every field here is a known send option (check_send_options): routing options such as
    # ``queue`` and ``priority`` become known by being added here (docs/routing.md).
    queue: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        if self.queue is not None:
            check_queue(self.queue)
        if self.priority is not None:
            check_priority(self.priority)

    @classmethod
    def pick(cls, options: Mapping[str, Any]) -> SendOptions:
        """The send options among a signature's options (others, like ``group_id``, are left)."""
        return cls(**{name: options[name] for name in SEND_OPTION_NAMES if name in options})


SEND_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(SendOptions))
"""The names of the options of ``apply_async``."""
NO_OPTIONS = SendOptions()
_CANVAS_OPTION_NAMES = frozenset({*SEND_OPTION_NAMES, "group_id"})
"""What a signature's options may hold: the send options, and a group's id."""


def send_options(options: Mapping[str, Any]) -> SendOptions:
    """``apply_async``'s keyword options checked (ConfigurationError for an unknown one)."""
    check_send_options(options, SEND_OPTION_NAMES)
    return SendOptions(**options)


def check_send_options(options: Mapping[str, Any], known: Any = _CANVAS_OPTION_NAMES) -> None:
    """Raise ConfigurationError for an option that is not a send option: it would ride the
    wire and do nothing (e.g. Celery's ``routing_key``, or a typo)."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigurationError(
            f"unknown send option(s) {', '.join(unknown)}; known: {', '.join(SEND_OPTION_NAMES)}"
            " (docs/celery.md lists Celery's options that have no equivalent)"
        )


class SendKwargs(TypedDict, total=False):
    """The keyword arguments of ``apply_async``: the fields of :class:`SendOptions`.

    A TypedDict so that ``**options: Unpack[SendKwargs]`` gets type-checked at every call.
    """

    task_id: str | None
    headers: Mapping[str, Any] | None
    ignore_result: bool | None
    link: Any
    link_error: Any
    countdown: float | timedelta | None
    eta: datetime | str | None
    expires: float | timedelta | datetime | str | None
    queue: str | None
    priority: int | None
