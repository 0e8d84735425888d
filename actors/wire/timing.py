"""When a task message may run: countdown/eta/expires resolution and schedule routing. Pure."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from actors.wire import topology
from actors.wire.message import TaskMessage, format_time


def resolve_eta(
    countdown: float | timedelta | None, eta: datetime | None, now: datetime
) -> str | None:
    """The ``eta`` field for ``countdown`` seconds or an ``eta`` datetime (countdown wins)."""
    if countdown is not None:
        seconds = countdown.total_seconds() if isinstance(countdown, timedelta) else countdown
        return format_time(now + timedelta(seconds=float(seconds)))
    if eta is not None:
        return format_time(eta)
    return None


def resolve_expires(expires: float | timedelta | datetime | None, now: datetime) -> str | None:
    """The ``expires`` field; seconds count from now, also when there is an eta (as in Celery)."""
    if expires is None:
        return None
    if isinstance(expires, datetime):
        return format_time(expires)
    seconds = expires.total_seconds() if isinstance(expires, timedelta) else float(expires)
    return format_time(now + timedelta(seconds=seconds))


def route(
    message: TaskMessage, msg_id: str, now: datetime | None = None
) -> tuple[str, dict[str, str]]:
    """Subject and headers to publish ``message`` with.

    A message with a future ``eta`` goes to its own schedule subject
    (``actors.sched.<id>`` or ``actors.sched.<id>.<retries>``, stream ACTORS_SCHEDULED) with
    ``Nats-Schedule: @at`` and ``Nats-Schedule-Target: actors.due.<task>``: the server
    publishes it there at that time, and ACTORS sources it as ``actors.task.<task>``.
    Anything else goes straight to the actor's subject. A message that stores no result and
    has ``expires`` (and no eta) also gets ``Nats-TTL``, so the server drops it unseen.
    """
    now = now or datetime.now(UTC)
    target = topology.task_subject(message.task)
    headers = {"Nats-Msg-Id": topology.header_value(msg_id), "Content-Type": topology.MSGPACK}
    eta = message.eta_datetime()
    if eta is not None and eta > now:
        headers[topology.SCHEDULE] = f"@at {format_time(eta)}"
        headers[topology.SCHEDULE_TARGET] = topology.due_subject(message.task)
        return topology.schedule_subject(message.id, message.retries), headers
    expires = message.expires_datetime()
    if expires is not None and message.ignore_result:
        # Without a result record nobody waits on this task, so letting the server drop it
        # loses nothing. With one, the worker must see it to store REVOKED (expired).
        headers[topology.TTL] = f"{max(1, math.ceil((expires - now).total_seconds()))}s"
    return target, headers
