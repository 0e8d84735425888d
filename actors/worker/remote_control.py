"""The worker's side of remote control: answers ``app.control`` and ``actors inspect/control``.

Requests arrive over core NATS (actors/nats/scatter.py) from anyone allowed to publish on
``actors.control.>``, so each is checked as untrusted input (actors/wire/control.py): a bad
one gets an ``{"error": ...}`` reply and changes nothing. The formats are in docs/protocol.md
"Remote control".
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from actors.actor import Actor
from actors.app import App
from actors.config import Settings
from actors.errors import ActorsError, ProtocolError
from actors.nats.broker import Broker
from actors.nats.consumer import Delivery, PullConsumer
from actors.nats.scatter import Responder
from actors.nats.stored import scan
from actors.wire import control, topology
from actors.wire.message import TaskMessage, decode
from actors.worker.pools import Executor, uses_process
from actors.worker.queues import QueueConsumers, Target

log = structlog.get_logger(__name__)

MAX_LISTED = 1000
"""At most this many tasks in one ``active``/``reserved``/``scheduled`` reply."""


class Worker(Protocol):
    """What remote control reads and changes in the worker (actors/worker/worker.py), named
    here so that this module does not import the worker that imports it."""

    app: App
    settings: Settings
    hostname: str
    concurrency: int
    prefetch: int
    stopping: bool
    processed: int
    actors: list[Actor[Any, Any]]
    _broker: Broker | None
    _executor: Executor | None
    _in_hand: dict[int, tuple[Delivery, float]]
    queues: QueueConsumers

    @property
    def broker(self) -> Broker: ...

    def _dispatch(
        self, target: Target | None, delivery: Delivery, consumer: PullConsumer
    ) -> None: ...


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


class RemoteControl:
    """Answers control requests for ``worker`` while it runs.

    ``on_shutdown`` is what ``shutdown`` does; by default it sends this process SIGTERM, so
    the worker stops exactly as on SIGTERM (in-flight tasks get ``shutdown_grace``). A program
    that runs a :class:`Worker` itself without a SIGTERM handler should set it (e.g. to set
    its stop event): SIGTERM's default action ends the process at once.
    """

    def __init__(self, worker: Worker, on_shutdown: Callable[[], None] = _sigterm) -> None:
        self.worker = worker
        self.on_shutdown = on_shutdown
        self.started_at = time.time()
        self._responder: Responder | None = None
        self._cancelled: set[str] = set()
        self._commands: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "ping": self.ping,
            "active": self.active,
            "reserved": self.reserved,
            "scheduled": self.scheduled,
            "registered": self.registered,
            "stats": self.stats,
            "conf": self.conf,
            "rate_limit": self.rate_limit,
            "time_limit": self.time_limit,
            "shutdown": self.shutdown,
            "add_consumer": self.add_consumer,
            "cancel_consumer": self.cancel_consumer,
        }

    async def start(self) -> None:
        """Begin answering requests on the worker's connection."""
        subjects = control.worker_subjects(self.worker.hostname)
        self._responder = Responder(self.worker.broker, subjects, self.handle)
        await self._responder.start()

    async def stop(self) -> None:
        """Stop answering."""
        if self._responder is not None:
            await self._responder.stop()

    async def handle(self, subject: str, data: bytes) -> bytes:
        """The reply to one request; never raises for a bad request."""
        try:
            command = control.command_of(subject)
            arguments = control.decode_request(command, data)
            if self.worker.stopping and command in control.CHANGE_COMMANDS:
                reply: Any = control.error("the worker is stopping")
            else:
                reply = await self._commands[command](arguments)
        except ProtocolError as exc:
            reply = control.error(f"bad request: {exc}")
        except ActorsError as exc:
            reply = control.error(str(exc))
        except Exception as exc:  # a request must never take the worker down
            log.exception("control.failed", subject=subject)
            reply = control.error(f"internal error: {exc!r:.200}")
        log.debug("control.request", subject=subject, error=_error_of(reply))
        body = control.encode_reply(self.worker.hostname, reply)
        limit = self.worker.broker.max_payload - 1024 if self.worker._broker else len(body)
        if len(body) > limit:
            too_large = f"reply of {len(body)} bytes is over the server's max_payload"
            body = control.encode_reply(self.worker.hostname, control.error(too_large))
        return body

    # -- inspect ----------------------------------------------------------------------------

    async def ping(self, _: dict[str, Any]) -> dict[str, Any]:
        return control.ok("pong")

    async def active(self, _: dict[str, Any]) -> list[dict[str, Any]]:
        """Tasks running now, as Celery's ``inspect().active()`` lists them."""
        executor = self.worker._executor
        runs = list(executor.running.values())[:MAX_LISTED] if executor else []
        out = []
        for run in runs:
            if run.message is None:
                continue
            entry = self._task(run.message)
            entry["time_start"] = run.started_at
            actor = self._served(run.task_name)
            entry["acknowledged"] = not (actor is not None and actor.options.acks_late)
            out.append(entry)
        return out

    async def reserved(self, _: dict[str, Any]) -> list[dict[str, Any]]:
        """Messages this worker holds that have not started (waiting for a slot or a rate)."""
        executor = self.worker._executor
        running = executor.running if executor else {}
        out = []
        for delivery, _since in list(self.worker._in_hand.values())[:MAX_LISTED]:
            message = _message(delivery.data, delivery.headers.get("Content-Type"))
            if message is not None and message.id not in running:
                entry = self._task(message)
                entry["acknowledged"] = False
                entry["delivery_info"] = {"subject": delivery.subject, "seq": delivery.stream_seq}
                out.append(entry)
        return out

    async def scheduled(self, _: dict[str, Any]) -> list[dict[str, Any]]:
        """Countdown/eta tasks for this worker's actors, waiting in ACTORS_SCHEDULED.

        The server holds them, not a worker: workers serving the same actors list the same.
        """
        served = {actor.name for actor in self.worker.actors}
        out: list[dict[str, Any]] = []
        stored = await scan(
            self.worker.broker,
            topology.SCHEDULED_STREAM,
            topology.SCHEDULE_PREFIX + ">",
            MAX_LISTED,
        )
        for data, headers in stored:
            message = _message(data, headers.get("Content-Type"))
            if message is not None and message.task in served:
                request = self._task(message)
                out.append({"eta": message.eta, "priority": 0, "request": request})
        return out

    async def registered(self, _: dict[str, Any]) -> list[str]:
        return sorted(actor.name for actor in self.worker.actors)

    async def stats(self, _: dict[str, Any]) -> dict[str, Any]:
        worker = self.worker
        usage = resource.getrusage(resource.RUSAGE_SELF)
        executor = worker._executor
        return {
            "hostname": worker.hostname,
            "pid": os.getpid(),
            "clock": time.time(),
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
            "uptime": round(time.time() - self.started_at, 3),
            "concurrency": worker.concurrency,
            "actors": sorted(actor.name for actor in worker.actors),
            "processed": worker.processed,
            "active": len(executor.running) if executor else 0,
            "in_hand": len(worker._in_hand),
            "loadavg": list(os.getloadavg()),
            "rusage": {
                "utime": usage.ru_utime,
                "stime": usage.ru_stime,
                "maxrss_kb": usage.ru_maxrss,
            },
        }

    async def conf(self, _: dict[str, Any]) -> dict[str, Any]:
        """The worker's settings, passwords and tokens shown as ``***``."""
        settings = self.worker.settings
        out = {}
        for field in dataclasses.fields(settings):
            value = getattr(settings, field.name)
            if isinstance(value, str):
                value = settings.redact(value)
            elif field.name == "beat_schedule":
                value = sorted(value)
            out[field.name] = value
        return out

    # -- change -----------------------------------------------------------------------------

    async def rate_limit(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Set (or with None remove) an actor's rate limit for the tasks it starts from now."""
        actor = self._served(arguments["task_name"])
        if actor is None:
            return control.error(f"unknown task {arguments['task_name']!r}")
        actor.options = dataclasses.replace(actor.options, rate_limit=arguments["rate_limit"])
        log.warning("control.rate_limit", task=actor.name, rate_limit=arguments["rate_limit"])
        return control.ok("new rate limit set successfully")

    async def time_limit(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Set an actor's soft and hard time limits (None: none) for tasks started from now."""
        actor = self._served(arguments["task_name"])
        if actor is None:
            return control.error(f"unknown task {arguments['task_name']!r}")
        # Keep the pool the actor runs in: a hard limit alone must not move it to processes.
        pool = actor.options.pool or (
            None if actor.is_async else ("process" if uses_process(actor) else "thread")
        )
        actor.options = dataclasses.replace(
            actor.options,
            soft_time_limit=arguments["soft"],
            time_limit=arguments["hard"],
            pool=pool,
        )
        log.warning(
            "control.time_limit", task=actor.name, soft=arguments["soft"], hard=arguments["hard"]
        )
        return control.ok("time limits set successfully")

    async def shutdown(self, _: dict[str, Any]) -> dict[str, Any]:
        log.warning("control.shutdown", hostname=self.worker.hostname)
        # After this reply is queued: the worker's close flushes it.
        asyncio.get_running_loop().call_soon(self.on_shutdown)
        return control.ok("shutting down")

    async def add_consumer(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Start serving an actor of the app that this worker does not serve."""
        worker, name = self.worker, arguments["actor"]
        if self._served(name) is not None:
            return control.ok(f"already consuming from {name!r}")
        if name not in worker.app.registry:
            return control.error(f"unknown task {name!r}: it is not registered in this app")
        actor = worker.app.get_actor(name)
        await worker.queues.start(worker.broker, [actor], worker._dispatch)
        if not worker.queues.serves(actor):
            return control.error(
                f"{name!r} is consumed by other workers through a consumer shared with actors "
                "this worker does not serve (docs/routing.md)"
            )
        worker.actors.append(actor)
        self._cancelled.discard(name)
        log.warning("control.add_consumer", task=name)
        return control.ok(f"add consumer {name}")

    async def cancel_consumer(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Stop fetching an actor's messages; tasks already running finish normally."""
        worker, name = self.worker, arguments["actor"]
        actor = self._served(name)
        if actor is None:
            return control.error(f"not consuming from {name!r}")
        consumers = worker.queues.forget(actor)
        worker.actors.remove(actor)
        self._cancelled.add(name)
        # Tasks in flight still report done() to the stopped pull loops.
        await worker.queues.stop(consumers)
        log.warning("control.cancel_consumer", task=name)
        return control.ok(f"no longer consuming from {name}")

    # -- helpers ----------------------------------------------------------------------------

    def _served(self, name: str) -> Any:
        for actor in self.worker.actors:
            if actor.name == name:
                return actor
        return None

    def _task(self, message: TaskMessage) -> dict[str, Any]:
        return {
            "id": message.id,
            "name": message.task,
            "args": message.args,
            "kwargs": message.kwargs,
            "retries": message.retries,
            "eta": message.eta,
            "hostname": self.worker.hostname,
            "worker_pid": os.getpid(),
        }


def _message(data: bytes, content_type: str | None) -> TaskMessage | None:
    try:
        return TaskMessage.from_wire(decode(data, content_type))
    except (ProtocolError, TypeError):
        return None


def _error_of(reply: Any) -> str | None:
    return reply.get("error") if isinstance(reply, dict) else None
