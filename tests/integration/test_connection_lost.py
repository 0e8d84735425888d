"""Workers never sit dead: a lost NATS connection ends the process with status 4."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors import App
from actors.cli.processes import EXIT_CONNECTION_LOST
from actors.config import Settings
from actors.nats.broker import Broker
from actors.nats.server import EmbeddedServer
from actors.worker import Worker
from tests.apps.basic import register
from tests.helpers import aeventually


@pytest.mark.timeout(60)
def test_worker_exits_when_nats_stays_down(
    nats_server: EmbeddedServer, worker_process: Callable[..., Any]
) -> None:
    process = worker_process("tests.apps.basic:app", ACTORS_MAX_DISCONNECTED="2")
    nats_server.stop()
    assert process.wait(timeout=30) == EXIT_CONNECTION_LOST
    [lost] = process.events("worker.connection_lost")
    assert "disconnected for" in lost["reason"]


@pytest.mark.timeout(60)
def test_worker_exits_when_its_connection_is_closed(
    make_app: Callable[..., App], worker_process: Callable[..., Any]
) -> None:
    process = worker_process("tests.apps.lifeline:app")
    client = make_app("lifeline-client")
    assert client.send_task("lifeline.ping").get(timeout=10) == "pong"
    client.send_task("lifeline.oversize")
    assert process.wait(timeout=30) == EXIT_CONNECTION_LOST
    [lost] = process.events("worker.connection_lost")
    assert "connection closed" in lost["reason"]


async def test_a_closed_connection_ends_the_serve_wait(make_app: Callable[..., App]) -> None:
    app = make_app()
    register(app)
    worker = Worker(app)
    await worker.start()
    stop = asyncio.Event()
    serving = asyncio.create_task(worker.wait_stopped(stop))
    await worker.broker.nc.close()
    await asyncio.wait_for(serving, 10)
    assert stop.is_set()
    assert worker.lost_reason is not None and "connection closed" in worker.lost_reason
    await worker.stop()


@pytest.mark.timeout(60)
async def test_closing_a_broker_while_nats_is_down_does_not_raise(tmp_path: Path) -> None:
    # nats-py still holds data buffered while the server is gone; closing must not raise
    # (uvloop's RuntimeError, ConnectionResetError), or a worker's stop would crash.
    server = EmbeddedServer(tmp_path / "nats")
    server.start()
    try:
        broker = await Broker.connect(Settings.build({"nats_url": server.url}))
        server.stop()
        await aeventually(lambda: not broker.connected, what="the broker to see NATS gone")
        with contextlib.suppress(Exception):
            await broker.nc.publish("actors.test", b"x" * 1000)  # buffered for a reconnect
        await asyncio.wait_for(broker.close(), 10)
        assert broker.nc.is_closed
    finally:
        server.stop()
