"""Remote control of workers: ``app.control.revoke(...)``, ``ping()``, ``inspect()``,
``rate_limit()``, ``time_limit()``, ``shutdown()``, ``add_consumer()``, ``cancel_consumer()``.

Every command but ``revoke`` is a core NATS request to every worker (or to those named by
``destination``), and returns the replies that came within ``timeout`` seconds, as Celery
does: a list of ``{worker hostname: reply}``; ``inspect()`` methods a dict of them, or None
when no worker replied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from actors.client.client import Client
from actors.errors import ConfigurationError
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.nats.scatter import scatter_gather
from actors.wire import control, topology
from actors.wire.revocation import revocation_value

Destination = str | Sequence[str] | None
"""Worker hostname(s) a command is for; None: every worker."""
Replies = list[dict[str, Any]]
DEFAULT_TIMEOUT = 1.0


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

    # -- requests to running workers --------------------------------------------------------

    def inspect(self, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT) -> Inspect:
        """Read-only questions to the workers: ``inspect().active()``, ``.stats()``, ..."""
        return Inspect(self, destination, timeout)

    def broadcast(
        self,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Destination = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Replies:
        """Send ``command`` to the workers; the replies within ``timeout`` s, as
        ``[{hostname: reply}, ...]``."""
        return self.client.run_blocking(self.abroadcast(command, arguments, destination, timeout))

    async def abroadcast(
        self,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Destination = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Replies:
        """Async twin of :meth:`broadcast`."""
        broker = (await self.client.connection()).broker
        return await self.request(broker, command, arguments, destination, timeout)

    @staticmethod
    async def request(
        broker: Broker,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Destination = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Replies:
        """:meth:`broadcast` on ``broker`` (the CLI has no app)."""
        body = control.encode_request(arguments)
        if destination is None:
            subjects, limit = [control.control_subject(command)], None
        else:
            names = [destination] if isinstance(destination, str) else list(destination)
            subjects, limit = [control.control_subject(command, name) for name in names], 1
        gathered = await asyncio.gather(
            *(scatter_gather(broker, subject, body, timeout, limit) for subject in subjects)
        )
        replies = []
        for data in (one for batch in gathered for one in batch):
            decoded = control.decode_reply(data)
            if decoded is not None:
                replies.append({decoded[0]: decoded[1]})
        return replies

    def ping(self, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT) -> Replies:
        """``[{hostname: {"ok": "pong"}}, ...]`` from every worker that answered."""
        return self.broadcast("ping", None, destination, timeout)

    async def aping(
        self, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Replies:
        """Async twin of :meth:`ping`."""
        return await self.abroadcast("ping", None, destination, timeout)

    def rate_limit(
        self,
        task_name: str,
        rate_limit: str | int | None,
        destination: Destination = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Replies:
        """Change an actor's ``rate_limit`` (``"10/s"``, ``"100/m"``; None removes it) on the
        running workers, for the tasks they start from now. Not kept across restarts."""
        return self.client.run_blocking(
            self.arate_limit(task_name, rate_limit, destination, timeout)
        )

    async def arate_limit(
        self,
        task_name: str,
        rate_limit: str | int | None,
        destination: Destination = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Replies:
        """Async twin of :meth:`rate_limit`."""
        arguments = {"task_name": task_name, "rate_limit": rate_limit}
        return await self.abroadcast("rate_limit", arguments, destination, timeout)

    def time_limit(
        self,
        task_name: str,
        soft: float | None = None,
        hard: float | None = None,
        destination: Destination = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Replies:
        """Change an actor's soft and hard time limits (seconds; None: no limit) on the
        running workers, for the tasks they start from now. Not kept across restarts."""
        return self.client.run_blocking(
            self.atime_limit(task_name, soft, hard, destination, timeout)
        )

    async def atime_limit(
        self,
        task_name: str,
        soft: float | None = None,
        hard: float | None = None,
        destination: Destination = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Replies:
        """Async twin of :meth:`time_limit`."""
        arguments = {"task_name": task_name, "soft": soft, "hard": hard}
        return await self.abroadcast("time_limit", arguments, destination, timeout)

    def shutdown(
        self, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Replies:
        """Stop workers gracefully, as SIGTERM does (running tasks get ``shutdown_grace``)."""
        return self.broadcast("shutdown", None, destination, timeout)

    async def ashutdown(
        self, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Replies:
        """Async twin of :meth:`shutdown`."""
        return await self.abroadcast("shutdown", None, destination, timeout)

    def add_consumer(
        self, actor: str, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Replies:
        """Make workers start serving ``actor`` (registered in their app)."""
        return self.client.run_blocking(self.aadd_consumer(actor, destination, timeout))

    async def aadd_consumer(
        self, actor: str, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Replies:
        """Async twin of :meth:`add_consumer`."""
        return await self.abroadcast("add_consumer", {"actor": actor}, destination, timeout)

    def cancel_consumer(
        self, actor: str, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Replies:
        """Make workers stop fetching ``actor``'s messages (running tasks finish)."""
        return self.client.run_blocking(self.acancel_consumer(actor, destination, timeout))

    async def acancel_consumer(
        self, actor: str, destination: Destination = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Replies:
        """Async twin of :meth:`cancel_consumer`."""
        return await self.abroadcast("cancel_consumer", {"actor": actor}, destination, timeout)


def merge(replies: Replies) -> dict[str, Any] | None:
    """``[{worker: reply}, ...]`` as one ``{worker: reply}`` dict; None when empty (Celery)."""
    merged = {worker: reply for one in replies for worker, reply in one.items()}
    return merged or None


class Inspect:
    """Read-only questions to workers (``app.control.inspect()``); each method returns
    ``{hostname: reply}`` of the workers that answered within the timeout, or None."""

    def __init__(self, control: Control, destination: Destination, timeout: float) -> None:
        self.control = control
        self.destination = destination
        self.timeout = timeout

    def _ask(self, command: str) -> dict[str, Any] | None:
        return self.control.client.run_blocking(self._aask(command))

    async def _aask(self, command: str) -> dict[str, Any] | None:
        replies = await self.control.abroadcast(command, None, self.destination, self.timeout)
        return merge(replies)

    def ping(self) -> dict[str, Any] | None:
        """``{"ok": "pong"}`` per worker."""
        return self._ask("ping")

    def active(self) -> dict[str, Any] | None:
        """Tasks running now: id, name, args, kwargs, time_start ... per worker."""
        return self._ask("active")

    def reserved(self) -> dict[str, Any] | None:
        """Messages fetched but not started (waiting for a slot or a rate limit)."""
        return self._ask("reserved")

    def scheduled(self) -> dict[str, Any] | None:
        """Countdown/eta tasks of the actors each worker serves: ``{eta, priority, request}``."""
        return self._ask("scheduled")

    def registered(self) -> dict[str, Any] | None:
        """Names of the actors each worker serves."""
        return self._ask("registered")

    def stats(self) -> dict[str, Any] | None:
        """Counters and process figures per worker."""
        return self._ask("stats")

    def conf(self) -> dict[str, Any] | None:
        """Each worker's settings, secrets shown as ``***``."""
        return self._ask("conf")

    async def aping(self) -> dict[str, Any] | None:
        """Async twin of :meth:`ping`."""
        return await self._aask("ping")

    async def aactive(self) -> dict[str, Any] | None:
        """Async twin of :meth:`active`."""
        return await self._aask("active")

    async def areserved(self) -> dict[str, Any] | None:
        """Async twin of :meth:`reserved`."""
        return await self._aask("reserved")

    async def ascheduled(self) -> dict[str, Any] | None:
        """Async twin of :meth:`scheduled`."""
        return await self._aask("scheduled")

    async def aregistered(self) -> dict[str, Any] | None:
        """Async twin of :meth:`registered`."""
        return await self._aask("registered")

    async def astats(self) -> dict[str, Any] | None:
        """Async twin of :meth:`stats`."""
        return await self._aask("stats")

    async def aconf(self) -> dict[str, Any] | None:
        """Async twin of :meth:`conf`."""
        return await self._aask("conf")
