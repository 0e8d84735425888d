"""The Client: publishes task messages and waits for results, from async and sync code."""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

from actors.client.background_loop import BackgroundLoop
from actors.client.connection import Connection
from actors.client.pipeline import Pipeline
from actors.client.result_waiter import ResultWaiter
from actors.client.router import Router
from actors.config import Settings
from actors.errors import BrokerUnavailable, PublishFailed
from actors.middleware import Hooks
from actors.nats.broker import Broker
from actors.wire.message import TaskMessage
from actors.wire.record import ResultRecord

T = TypeVar("T")

CLOSE_TIMEOUT = 5.0
"""Seconds ``close()`` waits for the connection to close before it stops the loop anyway."""

log = structlog.get_logger(__name__)


class Client:
    """Sends task messages and waits for results over NATS.

    Async code gets one :class:`Connection` per event loop, made on first use. Sync code
    blocks on :meth:`run_blocking`, which runs the coroutine on a background loop: the
    client's own (started on first use) or one a worker lent with :meth:`lend`. An App makes
    one client from its settings (``app.client``); actors, signatures and results use it.
    """

    def __init__(self, settings: Settings, name: str = "actors") -> None:
        self.settings = settings
        self.name = name
        """The connection name the NATS server shows."""
        self.router = Router(settings)
        """Chooses the queue and priority of messages that name none (docs/routing.md)."""
        self._connections: dict[asyncio.AbstractEventLoop, asyncio.Future[Connection]] = {}
        self._background: BackgroundLoop | None = None
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()
        self.hooks = Hooks()
        """The middleware every publish and every task run of this app goes through."""

    def __repr__(self) -> str:
        return f"<Client {self.name}>"

    async def connection(self) -> Connection:
        """The connection for the running event loop, made on first use."""
        loop = asyncio.get_running_loop()
        future = self._connections.get(loop)
        if future is not None and future.done() and future.exception() is None:
            return future.result()  # the common case, kept cheap
        if future is None or future.done():
            future = loop.create_future()
            self._connections[loop] = future
            try:
                broker = await Broker.connect(self.settings, name=self.name)
                # Look up, create when missing, never update: a client may lack the
                # permission to change streams (workers keep them current).
                await broker.streams.ensure_topology(update=False)
            except BaseException as exc:
                future.set_exception(exc)
                del self._connections[loop]
                future.exception()  # mark retrieved
                raise
            future.set_result(Connection(broker, ResultWaiter(broker), self.router, self.hooks))
        return await asyncio.shield(future)

    def lend(self, loop: asyncio.AbstractEventLoop, broker: Broker) -> Connection:
        """Send and wait through ``broker`` on ``loop``, a worker's running loop.

        Blocking calls from the worker's other threads (a sync task calling ``other.delay()``)
        then run on that loop too, over the worker's connection. Returns the connection.
        """
        connection = Connection(broker, ResultWaiter(broker), self.router, self.hooks)
        future: asyncio.Future[Connection] = loop.create_future()
        future.set_result(connection)
        self._connections[loop] = future
        self._background = BackgroundLoop(loop)
        return connection

    def run_blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the background loop and block until it returns (the sync facade)."""
        with self._lock:
            if self._background is None:
                self._background = BackgroundLoop()
                atexit.register(_close_at_exit, weakref.ref(self))
            background = self._background
        return background.run_blocking(coro)

    # -- the sync path's publish pipeline ----------------------------------------------------

    def send(self, message: TaskMessage, expect_result: bool = True) -> None:
        """Send ``message`` from sync code (``delay()``, ``apply_async()``, ``send_task()``).

        Pipelined by default: the message is handed to the connection and its PubAck is
        confirmed in the background (:mod:`actors.client.pipeline`). With ``confirm_publish``,
        or on a loop a worker lent (a task's sends are stored before the task is acked),
        this waits for the PubAck and raises when the publish fails.
        """
        pipeline = None if self.settings.confirm_publish else self._sending_pipeline()
        if pipeline is None:
            self.run_blocking(self._send_confirmed(message, expect_result))
        else:
            pipeline.put(message, expect_result)

    def _sending_pipeline(self) -> Pipeline | None:
        """The pipeline for sync sends; None on a loop a worker lent (even if this client
        pipelined sends on its own loop before the worker started: those stay confirmed
        by that pipeline, later ones are confirmed on the worker's loop)."""
        background = self._background
        if background is not None and not background.owns_loop:
            return None
        return self._pipeline or self._start_pipeline()

    async def _send_confirmed(self, message: TaskMessage, expect_result: bool) -> None:
        connection = await self.connection()
        try:
            await connection.send(message, expect_result=expect_result)
        except BrokerUnavailable as exc:
            raise PublishFailed(message.id, exc) from exc

    def _start_pipeline(self) -> Pipeline | None:
        background = self._background
        if background is not None and not background.owns_loop:
            return None  # a worker's loop: its tasks' sends are confirmed
        connection = self.run_blocking(self.connection())
        with self._lock:
            background = self._background
            if background is None or not background.owns_loop:
                return None
            if self._pipeline is None:
                self._pipeline = Pipeline(connection, background.loop, self.settings.publish_window)
            return self._pipeline

    async def confirmed(self, task_id: str) -> None:
        """Raise PublishFailed if the pipelined publish of ``task_id`` failed; on the
        pipeline's loop, first wait until it is confirmed."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        if asyncio.get_running_loop() is pipeline.loop:
            await pipeline.confirmed(task_id)
        elif (failed := pipeline.failure(task_id)) is not None:
            raise failed

    def arrived(self, task_id: str) -> ResultRecord | None:
        """The ready record of ``task_id`` if it already reached the sync path's connection
        (sent from here, stored since); from any thread, without waiting."""
        pipeline = self._pipeline
        return None if pipeline is None else pipeline.results.take_arrived(task_id)

    def publish_failure(self, task_id: str) -> PublishFailed | None:
        """The error the pipelined publish of ``task_id`` failed with, if it did."""
        pipeline = self._pipeline
        return None if pipeline is None else pipeline.failure(task_id)

    def flush(self) -> None:
        """Wait until every message sent from sync code so far is stored; raise
        PublishFailed for any that was not (and not raised already)."""
        pipeline = self._pipeline
        if pipeline is not None:
            self.run_blocking(pipeline.flush())

    async def aclose(self) -> None:
        """Close the connection of the running loop."""
        future = self._connections.pop(asyncio.get_running_loop(), None)
        if future is not None and future.done() and future.exception() is None:
            await future.result().broker.close()

    def close(self) -> None:
        """Close the sync facade's connection and stop its background loop (a lent loop and
        its connection are left to the worker). Pipelined publishes are flushed first, and a
        failure not raised yet is logged."""
        with self._lock:
            background, self._background = self._background, None
            pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.flush_and_log(self.settings.publish_timeout * 3 + 5)
        if background is not None and background.owns_loop:
            closing = asyncio.run_coroutine_threadsafe(self.aclose(), background.loop)
            try:
                closing.result(timeout=CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning("client.close_timed_out", waited_s=CLOSE_TIMEOUT)
            background.close()


def _close_at_exit(client_ref: weakref.ref[Client]) -> None:
    """Leaving the process: flush the pipelined publishes (logging any failure) and stop the
    background loop's thread, which must not still run while the interpreter shuts down."""
    client = client_ref()
    if client is not None:
        client.close()
