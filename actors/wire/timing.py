"""Time fields of a task message, and where a message is published (its destination). Pure."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from actors.wire import routing, topology
from actors.wire.message import TaskMessage, format_time


def time_field(
    value: float | timedelta | datetime | str | None,
    now: datetime | None = None,
    zone: str = "UTC",
) -> str | None:
    """A ``countdown``, ``eta`` or ``expires`` value as an RFC 3339 time field.

    Seconds (a number or a timedelta) count from ``now`` (default: the current time); a
    datetime is formatted in UTC, a naive one read in ``zone`` first (the app's ``timezone``,
    UTC by default, as Celery does with ``enable_utc``); a string is taken as already RFC 3339
    (options read back from a signature's wire form); None stays None.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC if zone == "UTC" else ZoneInfo(zone))
        return format_time(value)
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return format_time((now or datetime.now(UTC)) + timedelta(seconds=seconds))


def destination(
    message: TaskMessage, msg_id: str, now: datetime | None = None
) -> tuple[str, dict[str, str]]:
    """Subject and headers to publish ``message`` with.

    A message with a future ``eta`` goes to its own schedule subject
    (``actors.sched.<id>`` or ``actors.sched.<id>.<retries>``, stream ACTORS_SCHEDULED) with
    ``Nats-Schedule: @at`` and ``Nats-Schedule-Target: actors.due.<task>``: the server
    publishes it there at that time, and ACTORS sources it as ``actors.task.<task>``.
    Anything else goes straight to the actor's subject. A message with a ``queue`` or a
    ``priority`` outside the normal band goes to ``actors.queue.<queue>.<band>.<task>``
    (scheduled: via ``actors.dueq.<queue>.<band>.<task>``), see actors/wire/routing.py.
    A message that stores no result and has ``expires`` (and no eta) also gets ``Nats-TTL``,
    so the server drops it unseen.
    """
    band = routing.band_of(message.priority)
    target = routing.subject_for(message.task, message.queue, band)
    headers = {"Nats-Msg-Id": topology.header_value(msg_id), "Content-Type": topology.MSGPACK}
    if not (message.eta or message.expires):  # most messages: no clock to read
        return target, headers
    now = now or datetime.now(UTC)
    eta = message.eta_datetime()
    if eta is not None and eta > now:
        headers[topology.SCHEDULE] = f"@at {format_time(eta)}"
        headers[topology.SCHEDULE_TARGET] = routing.due_subject_for(
            message.task, message.queue, band
        )
        return topology.schedule_subject(message.id, message.retries), headers
    expires = message.expires_datetime()
    if expires is not None and message.ignore_result:
        # Without a result record nobody waits on this task, so letting the server drop it
        # loses nothing. With one, the worker must see it to store REVOKED (expired).
        headers[topology.TTL] = f"{max(1, math.ceil((expires - now).total_seconds()))}s"
    return target, headers
