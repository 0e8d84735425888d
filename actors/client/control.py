"""Remote control of workers: ``app.control.revoke(...)``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from actors.client.client import Client
from actors.errors import ConfigurationError
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.wire import topology
from actors.wire.revocation import revocation_value


class Control:
    """Control commands for the workers of an app (``app.control``), sent through ``client``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def revoke(self, task_id: str | Iterable[str], terminate: bool = False) -> None:
        """Revoke tasks by id (one, or many: a group's or a chain's ids).

        A revoked task that has not started is skipped by every worker, including workers
        started later (revocations are kept for ``result_ttl``), and gets state REVOKED.
        ``terminate=True`` also stops it where it runs (see docs/tasks.md "Revoke" for the
        limits on thread-pool tasks).
        """
        self.client.run_blocking(self.arevoke(task_id, terminate))

    async def arevoke(self, task_id: str | Iterable[str], terminate: bool = False) -> None:
        """Async twin of :meth:`revoke`."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        connection = await self.client.connection()
        await self.store_revocations(connection.broker, ids, terminate)

    @staticmethod
    async def store_revocations(broker: Broker, ids: Iterable[str], terminate: bool) -> None:
        """Write the revocations of ``ids`` to the ``actors_revoked`` bucket."""
        ids = list(ids)
        for one in ids:
            if not topology.valid_task_id(one):
                raise ConfigurationError(f"{one!r} is not a task id")
        value = revocation_value(terminate)
        revoked = Bucket(broker, topology.REVOKED_BUCKET)
        await asyncio.gather(*(revoked.put(one, value) for one in ids))
