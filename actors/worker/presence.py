"""A worker's presence: its record in the ``actors_workers`` bucket, refreshed every heartbeat,
and the worker-online/heartbeat/offline events (docs/protocol.md "Worker registry")."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata

import structlog

from actors.errors import ActorsError
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.wire import events, topology
from actors.wire.message import format_time
from actors.wire.registry import WorkerRecord
from actors.worker.events import TaskEvents

log = structlog.get_logger(__name__)


def _version() -> str:
    try:
        return metadata.version("actors")
    except metadata.PackageNotFoundError:
        return "unknown"


class Presence:
    """Keeps the record of one worker; ``snapshot`` fills in the live counters each beat."""

    def __init__(
        self,
        record: WorkerRecord,
        snapshot: Callable[[WorkerRecord], None],
        task_events: TaskEvents,
    ) -> None:
        self.record = record
        self._snapshot = snapshot
        self._events = task_events

    @classmethod
    def of(
        cls,
        hostname: str,
        actors: list[str],
        concurrency: int,
        heartbeat: float,
        snapshot: Callable[[WorkerRecord], None],
        task_events: TaskEvents,
    ) -> Presence:
        """The presence of worker ``hostname`` (``<pid>@<host>``) serving ``actors``."""
        record = WorkerRecord(
            id=topology.worker_token(hostname),
            hostname=hostname,
            pid=os.getpid(),
            version=_version(),
            actors=actors,
            concurrency=concurrency,
            pool="threads",
            started_at=format_time(datetime.now(UTC)),
            heartbeat=heartbeat,
        )
        return cls(record, snapshot, task_events)

    async def beat(self, bucket: Bucket, kind: str = events.WORKER_HEARTBEAT) -> None:
        """Refresh the record and record a worker event of ``kind``."""
        record = self.record
        self._snapshot(record)
        record.load = round(os.getloadavg()[0], 2)
        record.heartbeat_at = format_time(datetime.now(UTC))
        await bucket.put(record.id, record.to_bytes())
        self._events.add(
            kind,
            freq=record.heartbeat,
            active=record.active,
            processed=record.processed,
            failed=record.failed,
            loadavg=record.load,
        )

    async def run(self, broker: Broker) -> None:
        """Announce the worker, then beat every ``heartbeat`` seconds until cancelled."""
        bucket = Bucket(broker, topology.WORKERS_BUCKET)
        kind = events.WORKER_ONLINE
        while True:
            try:
                if broker.connected:  # else nats-py would buffer it (see TaskEvents.flush)
                    await self.beat(bucket, kind)
                    kind = events.WORKER_HEARTBEAT
            except ActorsError as exc:  # NATS away for a while: beat again next time
                log.warning("worker.heartbeat_failed", error=str(exc))
            await asyncio.sleep(self.record.heartbeat)

    async def leave(self, broker: Broker) -> None:
        """Delete the record and publish worker-offline (a graceful stop)."""
        try:
            await Bucket(broker, topology.WORKERS_BUCKET).delete(self.record.id)
            self._snapshot(self.record)
            self._events.add(
                events.WORKER_OFFLINE,
                active=self.record.active,
                processed=self.record.processed,
                failed=self.record.failed,
            )
            await self._events.flush(broker)
        except ActorsError as exc:
            log.warning("worker.offline_failed", error=str(exc))
