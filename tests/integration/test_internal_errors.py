"""A failure in the worker's own code dead-letters the message once instead of looping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NoReturn

import pytest

from actors import ActorsError, App
from actors.worker import worker as worker_module
from tests.apps.basic import register
from tests.integration.test_bad_input import dead_letters, still_serving


def broken(*args: Any) -> NoReturn:
    raise RuntimeError("a bug in the worker")


async def settled(app: App, durable: str, timeout: float = 10) -> Any:
    """The consumer's info once no message is waiting for an ack."""
    js = (await app.client.connection()).broker.js
    async with asyncio.timeout(timeout):
        while (info := await js.consumer_info("ACTORS", durable)).num_ack_pending:
            await asyncio.sleep(0.05)
    return info


async def test_an_internal_error_fails_the_task_once(
    make_app: Callable[..., App], worker: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(ack_wait=1.0)
    tasks = register(app)
    await worker(app)
    monkeypatch.setattr(worker_module.routing, "check_arguments", broken)
    result = await tasks["add"].adelay(1, 2)
    with pytest.raises(ActorsError, match="internal error: RuntimeError"):
        await result.aget(timeout=10)
    [dead] = await dead_letters(app, 1)
    assert "a bug in the worker" in dead.headers["Actors-Dead-Reason"]
    info = await settled(app, "basic-add")
    assert info.num_redelivered == 0 and info.num_pending == 0
    monkeypatch.undo()
    await still_serving(app, tasks)


async def test_an_internal_error_after_success_keeps_the_result(
    make_app: Callable[..., App], worker: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(ack_wait=1.0)
    tasks = register(app)
    await worker(app)
    monkeypatch.setattr(worker_module.routing, "succeeded", broken)
    result = await tasks["add"].adelay(1, 2)
    [dead] = await dead_letters(app, 1)
    assert "internal error" in dead.headers["Actors-Dead-Reason"]
    assert await result.aget(timeout=10) == 3
    info = await settled(app, "basic-add")
    assert info.num_redelivered == 0
