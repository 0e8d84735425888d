"""What each page shows, read from NATS and the task index, as plain JSON-ready maps; and the
actions, each one a call to what the CLI and ``app.control`` already use."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from actors.app import App
from actors.client.control import Replies
from actors.client.workers import live_workers
from actors.errors import ActorsError, ProtocolError
from actors.monitor.feed import EventFeed
from actors.monitor.index import TaskFilter, TaskIndex
from actors.nats import queues
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.wire import topology
from actors.wire.record import ResultRecord
from actors.worker import dead_letters
from schedulers.store import ScheduleStore

log = structlog.get_logger(__name__)
_FRESH = 1.0  # seconds a reading of the registry and the queues is reused
WORKER_COMMANDS = ("rate_limit", "shutdown", "add_consumer", "cancel_consumer")


class MonitorData:
    """The monitor's readings and actions over one app's connection."""

    def __init__(self, app: App, index: TaskIndex, feed: EventFeed) -> None:
        self.app = app
        self.index = index
        self.feed = feed
        self._cache: dict[str, tuple[float, Any]] = {}

    async def broker(self) -> Broker:
        """The app's connection for this event loop."""
        return (await self.app.client.connection()).broker

    async def _fresh(self, key: str, read: Callable[[Broker], Awaitable[Any]]) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < _FRESH:
            return hit[1]
        value = await read(await self.broker())
        self._cache[key] = (now, value)
        return value

    # -- pages -------------------------------------------------------------------------------

    async def workers(self) -> list[dict[str, Any]]:
        """The live workers' registry records."""
        return [r.to_json() for r in await self._fresh("workers", live_workers)]

    async def queues(self) -> list[dict[str, Any]]:
        """Per actor: pending, in flight, dead letters, consumers; and the finish rate."""
        try:
            rows = await self._fresh("queues", queues.queue_stats)
        except ActorsError as exc:  # no task stream yet: no worker ever ran here
            log.info("monitor.queues_unreadable", error=str(exc))
            rows = []
        rates = self.index.rates(time.time())
        out = [{**_fields(row), "rate": rates.pop(row.actor, 0.0)} for row in rows]
        return out + [{"actor": name, "rate": rate} for name, rate in rates.items()]

    async def dashboard(self) -> dict[str, Any]:
        """Workers, queues, task states and the outcomes of the last 15 minutes."""
        return {
            "workers": await self.workers(),
            "queues": await self.queues(),
            "states": self.index.states(),
            "outcomes": self.index.outcomes(time.time()),
            "tasks_tracked": len(self.index),
            "events_seen": self.index.events_seen,
            "events_lag": self.feed.lag(),
            "events_error": self.feed.error,
        }

    def tasks(self, where: TaskFilter, page: int, per_page: int) -> dict[str, Any]:
        """One page of tasks matching ``where``, newest first."""
        found, total = self.index.page(where, (page - 1) * per_page, per_page)
        return {
            "tasks": [t.summary() for t in found],
            "total": total,
            "page": page,
            "per_page": per_page,
            "pages": max(1, -(-total // per_page)),
        }

    async def task(self, task_id: str) -> dict[str, Any] | None:
        """Everything known about one task: its events, its stored result, its workflow."""
        view = self.index.get(task_id)
        data = await Bucket(await self.broker(), topology.RESULTS_BUCKET).get(task_id)
        if view is None and data is None:
            return None
        out: dict[str, Any] = {"id": task_id, "task": view.to_json() if view else None}
        out["result"] = None
        revoked = await Bucket(await self.broker(), topology.REVOKED_BUCKET).get(task_id)
        out["revoked"] = revoked is not None
        if data is not None:
            try:
                out["result"] = _record(ResultRecord.from_bytes(data))
            except ProtocolError as exc:
                out["result_error"] = str(exc)
        out["workflow"] = (
            [t.summary() | _links(t) for t in self.index.workflow(view)] if view else []
        )
        return out

    async def worker(self, hostname: str) -> dict[str, Any] | None:
        """A worker's record, and what it answers to ``stats``, ``active``, ``registered``."""
        record = next((w for w in await self.workers() if w["hostname"] == hostname), None)
        if record is None:
            return None
        inspect = self.app.control.inspect(hostname)
        serving = [
            name
            for name in ((await inspect.aregistered()) or {}).get(hostname) or []
            if isinstance(name, str)
        ]
        # What it could serve: what it started with, and the actors of the monitor's app.
        known = {*record["actors"], *serving, *self.app.registry}
        return {
            "record": record,
            "stats": ((await inspect.astats()) or {}).get(hostname),
            "active": ((await inspect.aactive()) or {}).get(hostname, []),
            "serving": serving,
            "actors": sorted(name for name in known if not name.startswith("actors.")),
        }

    async def dead(self, limit: int) -> list[dict[str, Any]]:
        """The oldest ``limit`` dead letters."""
        return [_letter(d) for d in await dead_letters.list_dead(await self.broker(), limit)]

    async def dead_one(self, seq: int) -> dict[str, Any] | None:
        """One dead letter with its headers and decoded body."""
        letter = await dead_letters.get_dead(await self.broker(), seq)
        if letter is None:
            return None
        return {**_letter(letter), "headers": letter.headers, "body": _body(letter)}

    async def periodic(self) -> list[dict[str, Any]]:
        """Beat entries (in the app's code and stored) with their last and next run."""
        return [info.to_dict() for info in await ScheduleStore(self.app).alist()]

    # -- actions -----------------------------------------------------------------------------

    async def revoke(self, task_id: str, terminate: bool) -> None:
        """Revoke a task, as ``actors revoke`` does."""
        await self.app.control.arevoke(task_id, terminate)

    async def replay(self, seq: int) -> int:
        """Replay one dead letter (0: there was none)."""
        return await dead_letters.replay_many(await self.broker(), seq)

    async def purge_dead(self) -> int:
        """Delete every dead letter; how many there were."""
        return await dead_letters.purge(await self.broker())

    async def switch_periodic(self, name: str, enabled: bool) -> None:
        """Enable or disable a beat entry (ScheduleNotFound when there is none)."""
        store = ScheduleStore(self.app)
        await (store.aenable(name) if enabled else store.adisable(name))

    async def control(self, hostname: str, command: str, actor: str, rate: str | None) -> Replies:
        """Send a remote-control command (one of WORKER_COMMANDS) to one worker; its replies."""
        control = self.app.control
        if command == "rate_limit":
            return await control.arate_limit(actor, rate, hostname)
        if command == "shutdown":
            return await control.ashutdown(hostname)
        if command == "add_consumer":
            return await control.aadd_consumer(actor, hostname)
        return await control.acancel_consumer(actor, hostname)


def _fields(row: queues.QueueStats) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}


def _record(record: ResultRecord) -> dict[str, Any]:
    return {
        "state": record.status,
        "result": repr(record.result)[:2000] if record.result is not None else None,
        "error": record.error,
        "traceback": record.traceback,
        "date_done": record.date_done,
        "retries": record.retries,
        "worker": record.worker,
    }


def _links(task: Any) -> dict[str, Any]:
    return {"parent_id": task.parent_id, "group_id": task.group_id, "chord": task.chord}


def _letter(letter: dead_letters.DeadLetter) -> dict[str, Any]:
    return {
        "seq": letter.seq,
        "time": letter.time.isoformat(timespec="seconds"),
        "task": letter.task,
        "task_id": letter.task_id,
        "reason": letter.reason,
        "subject": letter.subject,
    }


def _body(letter: dead_letters.DeadLetter) -> str:
    return dead_letters.describe_body(letter)[:10_000]
