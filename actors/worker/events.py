"""Task events of one worker: the observer the worker calls, gathering events and publishing
them once per flush interval, one message per kind (docs/protocol.md "Events").

Events are best effort: a batch that cannot be published is dropped with a warning, and at
most ``_MAX_PENDING`` events wait, so a NATS outage never holds up tasks or fills memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from actors.errors import ActorsError
from actors.middleware import ExceptionInfo, Hooks
from actors.nats.broker import Broker
from actors.wire import events, topology
from actors.wire.message import TaskMessage

log = structlog.get_logger(__name__)

_MAX_PENDING = 50_000
_REPR = 200  # characters of args, results and errors kept in an event


class TaskEvents:
    """Records what becomes of each task a worker handles, as events and as calls to the
    middleware ``hooks`` (signals, task class handlers); ``actor`` finds the Actor of a task
    name. With ``enabled`` False no event is recorded, so the worker calls every method
    unconditionally."""

    def __init__(
        self,
        hostname: str,
        enabled: bool,
        hooks: Hooks | None = None,
        actor: Callable[[str], Any] | None = None,
    ) -> None:
        self.hostname = hostname
        self.enabled = enabled
        self.hooks = hooks or Hooks()
        self._actor = actor or (lambda name: None)
        self._pending: list[dict[str, Any]] = []
        self._clock = 0
        self._flushes = 0
        self._dropped = 0

    # -- the observer ------------------------------------------------------------------------
    # Called three times or more per task: each builds one dict and nothing else (measured
    # ~2 us), so that events stay well under 10% of a worker's CPU per task.

    def received(self, message: TaskMessage) -> None:
        """A delivered message passed its checks and will run (or be skipped as revoked)."""
        actor = self._actor(message.task)
        self.hooks.task_received(actor, message)
        if self.enabled:
            extra = {"args": repr(message.args)[:_REPR], "kwargs": repr(message.kwargs)[:_REPR]}
            if message.eta:
                extra["eta"] = message.eta
            if message.expires:
                extra["expires"] = message.expires
            # The workflow around the task, for monitors (only what is set: a plain task
            # adds nothing).
            for name in ("root_id", "parent_id", "group_id"):
                if getattr(message, name):
                    extra[name] = getattr(message, name)
            if message.chord:
                extra["chord"] = str(message.chord.get("id"))
            self._task(events.TASK_RECEIVED, message, extra)

    def started(self, message: TaskMessage) -> None:
        """The task function is about to be called."""
        actor = self._actor(message.task)
        self.hooks.before_start(actor, message)
        if self.enabled:
            self._task(events.TASK_STARTED, message, None)

    def succeeded(self, message: TaskMessage, runtime: float, value: Any) -> None:
        """The task returned ``value`` after ``runtime`` seconds."""
        actor = self._actor(message.task)
        self.hooks.on_success(actor, message, value)
        if self.enabled:
            extra = {"runtime": runtime, "result": repr(value)[:_REPR]}
            self._task(events.TASK_SUCCEEDED, message, extra)

    def failed(self, message: TaskMessage, runtime: float, exc: BaseException) -> None:
        """The task raised ``exc`` and will not be retried."""
        actor, einfo = self._actor(message.task), ExceptionInfo.of(exc)
        self.hooks.on_failure(actor, message, einfo)
        if self.enabled:
            extra = {"runtime": runtime, "exception": repr(exc)[:_REPR]}
            self._task(events.TASK_FAILED, message, extra)

    def retried(
        self,
        message: TaskMessage,
        exc: BaseException | None,
        eta: Any,
        signal: BaseException | None = None,
    ) -> None:
        """The task asked for (or was given) another attempt: ``exc`` is the error retried,
        ``signal`` the Retry the task raised (the hooks get ``exc``, else ``signal``)."""
        cause = exc if exc is not None else signal
        if cause is not None:
            actor, einfo = self._actor(message.task), ExceptionInfo.of(cause)
            self.hooks.on_retry(actor, message, einfo)
        if self.enabled:
            extra = {"eta": _text(eta)}
            if exc is not None:
                extra["exception"] = repr(exc)[:_REPR]
            self._task(events.TASK_RETRIED, message, extra)

    def revoked(self, message: TaskMessage, reason: str) -> None:
        """The task was revoked: skipped, or terminated while it ran."""
        actor = self._actor(message.task)
        self.hooks.on_revoked(actor, message, reason)
        if self.enabled:
            self._task(events.TASK_REVOKED, message, {"reason": reason})

    def finished(self, message: TaskMessage, state: str, value: Any) -> None:
        """The run ended in ``state`` with ``value``, its outcome stored (hooks only)."""
        actor = self._actor(message.task)
        self.hooks.after_return(actor, message, state, value)

    def rejected(self, task: str, task_id: str | None, reason: str, unknown: bool = False) -> None:
        """A message that cannot run was dead-lettered (``unknown``: it names another task)."""
        self.hooks.on_rejected(task, task_id, reason, unknown)
        if self.enabled:
            self.add(events.TASK_REJECTED, uuid=task_id, name=task, reason=reason)

    # -- gathering and publishing ------------------------------------------------------------

    def add(self, kind: str, **fields: Any) -> None:
        """Record one event of ``kind`` now (worker events use this too)."""
        if self.enabled:
            self._append(
                {
                    "type": kind,
                    "hostname": self.hostname,
                    "timestamp": time.time(),
                    **{k: v for k, v in fields.items() if v is not None},
                }
            )

    def _task(self, kind: str, message: TaskMessage, extra: dict[str, Any] | None) -> None:
        event = {
            "type": kind,
            "hostname": self.hostname,
            "timestamp": time.time(),
            "uuid": message.id,
            "name": message.task,
            "retries": message.retries,
        }
        if extra:
            event.update(extra)
        self._append(event)

    def _append(self, event: dict[str, Any]) -> None:
        if len(self._pending) >= _MAX_PENDING:
            self._dropped += 1
            return
        self._clock += 1
        event["clock"] = self._clock
        self._pending.append(event)

    async def flush(self, broker: Broker) -> None:
        """Publish the events gathered so far: per kind, batches of up to MAX_BATCH events.

        Every message of one flush carries ``Actors-Batch: <flush> <messages>``, so that a
        reader puts the events of one flush back in order (by ``clock``) across kinds.
        """
        if not self._pending or not broker.connected:
            # While NATS is away, keep them (up to _MAX_PENDING): nats-py would buffer the
            # publish, and a buffer still full when the worker gives up fails its close.
            return
        pending, self._pending = self._pending, []
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for event in pending:
            by_kind.setdefault(event["type"], []).append(event)
        bodies = [
            (topology.event_subject(kind), events.encode_batch(batch[i : i + events.MAX_BATCH]))
            for kind, batch in by_kind.items()
            for i in range(0, len(batch), events.MAX_BATCH)
        ]
        self._flushes += 1
        header = {events.BATCH_HEADER: f"{self._flushes} {len(bodies)}"}
        try:
            await broker.publish_many([(subject, body, header) for subject, body in bodies])
        except (ActorsError, TypeError, ValueError) as exc:
            log.warning("events.dropped", events=len(pending), error=str(exc))
        if self._dropped:
            log.warning("events.dropped", events=self._dropped, error="too many pending")
            self._dropped = 0

    async def run(self, broker: Broker, interval: float) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.flush(broker)


def _text(value: Any) -> Any:
    """``value`` as msgpack can carry it: a time stays as it is, anything else as text."""
    return value if value is None or isinstance(value, str | int | float) else str(value)
