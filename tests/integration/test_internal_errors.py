"""A failure in the worker's own code dead-letters the message once instead of looping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import pytest

from actors import ActorsError, App
from actors.worker import continuations, message_checks
from tests.apps.basic import register
from tests.helpers import asettled
from tests.integration.test_bad_input import dead_letters, still_serving


def broken(*args: Any) -> NoReturn:
    raise RuntimeError("a bug in the worker")


async def test_an_internal_error_fails_the_task_once(
    make_app: Callable[..., App],
    worker: Callable[..., Any],
    nats_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(ack_wait=1.0)
    tasks = register(app)
    await worker(app)
    monkeypatch.setattr(message_checks, "check_arguments", broken)
    result = await tasks["add"].adelay(1, 2)
    with pytest.raises(ActorsError, match="internal error: RuntimeError"):
        await result.aget(timeout=10)
    [dead] = await dead_letters(app, 1)
    assert "a bug in the worker" in dead.headers["Actors-Dead-Reason"]
    [backlog] = await asettled(nats_server.url, "basic.add")
    assert backlog.redelivered == 0
    monkeypatch.undo()
    await still_serving(app, tasks)


async def test_an_internal_error_after_success_keeps_the_result(
    make_app: Callable[..., App],
    worker: Callable[..., Any],
    nats_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(ack_wait=1.0)
    tasks = register(app)
    await worker(app)
    monkeypatch.setattr(continuations, "succeeded", broken)
    result = await tasks["add"].adelay(1, 2)
    [dead] = await dead_letters(app, 1)
    assert "internal error" in dead.headers["Actors-Dead-Reason"]
    assert await result.aget(timeout=10) == 3
    [backlog] = await asettled(nats_server.url, "basic.add")
    assert backlog.redelivered == 0
