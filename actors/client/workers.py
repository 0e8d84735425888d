"""The live workers, read from the ``actors_workers`` bucket (``actors status``)."""

from __future__ import annotations

import structlog

from actors.errors import ProtocolError
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.nats.events import stream_exists
from actors.wire import topology
from actors.wire.registry import WorkerRecord

log = structlog.get_logger(__name__)


async def live_workers(broker: Broker) -> list[WorkerRecord]:
    """The record of every live worker, sorted by hostname. A worker that died without a
    goodbye stays listed until its record expires, about three heartbeats after its last."""
    bucket = Bucket(broker, topology.WORKERS_BUCKET)
    if not await stream_exists(broker, bucket.stream):  # no worker of this version ever ran
        return []
    found: dict[str, bytes | None] = {}

    async def collect(key: str, value: bytes | None) -> None:
        found[key] = value

    watch = await bucket.watch(collect, initial=True)
    await watch.stop()
    records = []
    for key, value in found.items():
        if value is None:
            continue
        try:
            records.append(WorkerRecord.from_bytes(value))
        except ProtocolError as exc:
            log.warning("worker.record_unreadable", key=key, error=str(exc))
    return sorted(records, key=lambda r: r.hostname)
