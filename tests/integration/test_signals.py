"""Signals, middleware and task classes, with a real nats-server and worker (docs/signals.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from structlog.testing import capture_logs

from actors import App, Revoked, Task, signals
from actors.errors import ConfigurationError
from actors.middleware import ExceptionInfo, Middleware
from actors.wire.message import TaskMessage
from actors.wire.record import FAILURE, RETRY, SUCCESS


@pytest.fixture
def heard() -> Iterator[list[tuple[str, Any, dict[str, Any]]]]:
    """Connect one recording receiver to every signal; disconnect at teardown."""
    seen: list[tuple[str, Any, dict[str, Any]]] = []

    def record(signal: signals.Signal, sender: Any, **named: Any) -> None:
        seen.append((signal.name, sender, named))

    every = [getattr(signals, name) for name in signals.__all__ if name != "Signal"]
    for signal in every:
        signal.connect(record)
    yield seen
    for signal in every:
        assert signal.disconnect(record)


def names(seen: list[tuple[str, Any, dict[str, Any]]], task_id: str) -> list[str]:
    """The signals heard about ``task_id``, in order."""
    out = []
    for name, _, named in seen:
        ids = {named.get("task_id"), getattr(named.get("request"), "id", None)}
        body = named.get("body")
        if task_id in ids or getattr(body, "id", None) == task_id:
            out.append(name)
    return out


async def test_a_task_sends_celerys_signals_in_order(app: App, worker, heard) -> None:
    @app.actor(name="sig.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.actor(name="sig.boom")
    def boom() -> None:
        raise ValueError("boom")

    running = await worker(app)
    assert [n for n, s, _ in heard if s is running] == ["worker_init", "worker_ready"]
    result = await add.adelay(2, 3)
    assert await result.aget(timeout=10) == 5
    assert names(heard, result.id) == [
        "before_task_publish",
        "after_task_publish",
        "task_received",
        "task_prerun",
        "task_postrun",
    ]
    success = [(s, n) for name, s, n in heard if name == "task_success"]
    assert success == [(add, {"result": 5})]
    prerun = next(n for name, _, n in heard if name == "task_prerun")
    assert prerun == {"task_id": result.id, "task": add, "args": [2, 3], "kwargs": {}}
    postrun = next(n for name, _, n in heard if name == "task_postrun")
    assert postrun["retval"] == 5 and postrun["state"] == SUCCESS

    failing = await boom.adelay()
    with pytest.raises(ValueError):
        await failing.aget(timeout=10)
    failure = next(n for name, _, n in heard if name == "task_failure")
    assert failure["task_id"] == failing.id and isinstance(failure["exception"], ValueError)
    assert isinstance(failure["einfo"], ExceptionInfo) and "boom" in failure["einfo"].traceback
    postrun = [n for name, _, n in heard if name == "task_postrun"][-1]
    assert postrun["state"] == FAILURE and isinstance(postrun["retval"], ValueError)


async def test_sender_filter_and_disconnect(app: App, worker) -> None:
    @app.actor(name="sig.one")
    def one() -> int:
        return 1

    @app.actor(name="sig.two")
    def two() -> int:
        return 2

    got: list[Any] = []

    def by_name(sender: Any, result: Any, **_: Any) -> None:
        got.append(("name", result))

    def by_actor(sender: Any, result: Any, **_: Any) -> None:
        got.append(("actor", result))

    signals.task_success.connect(by_name, sender="sig.two")
    signals.task_success.connect(sender=one)(by_actor)
    try:
        await worker(app)
        assert await (await one.adelay()).aget(timeout=10) == 1
        assert await (await two.adelay()).aget(timeout=10) == 2
        assert sorted(got) == [("actor", 1), ("name", 2)]
    finally:
        assert signals.task_success.disconnect(by_name, sender="sig.two")
        assert signals.task_success.disconnect(by_actor, sender=one)
    assert not signals.task_success.disconnect(by_actor, sender=one)


async def test_a_failing_receiver_is_logged_and_the_task_succeeds(app: App, worker) -> None:
    @app.actor(name="sig.ok")
    def ok() -> str:
        return "ok"

    def broken(**_: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.task_prerun.connect(broken)
    signals.before_task_publish.connect(broken)
    try:
        await worker(app)
        with capture_logs() as logs:
            assert await (await ok.adelay()).aget(timeout=10) == "ok"
    finally:
        signals.task_prerun.disconnect(broken)
        signals.before_task_publish.disconnect(broken)
    failed = {e["signal"] for e in logs if e["event"] == "signal.receiver_failed"}
    assert failed == {"task_prerun", "before_task_publish"}


async def test_retry_and_revoke_and_unknown_signals(app: App, worker, heard) -> None:
    @app.actor(name="sig.again", bind=True, max_retries=1, default_retry_delay=0)
    def again(self: Any) -> int:
        if self.request.retries == 0:
            self.retry(exc=KeyError("once"))
        return 7

    @app.actor(name="sig.later")
    def later() -> None:
        return None

    await worker(app)
    result = await again.adelay()
    assert await result.aget(timeout=10) == 7
    retry = next(n for name, _, n in heard if name == "task_retry")
    assert retry["request"].id == result.id and isinstance(retry["reason"], KeyError)
    states = [n["state"] for name, _, n in heard if name == "task_postrun"]
    assert states == [RETRY, SUCCESS]

    expired = await later.aapply_async(expires=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(Revoked):
        await expired.aget(timeout=10)
    revoked = next(n for name, _, n in heard if name == "task_revoked")
    assert revoked["request"].id == expired.id
    assert revoked["expired"] is True and revoked["terminated"] is False
    # a message naming another task on later's subject: dead-lettered as unknown
    connection = await app.client.connection()
    forged = TaskMessage(id="forged-1", task="sig.elsewhere")
    from actors.wire import topology
    from actors.wire.message import encode

    await connection.broker.publish(
        topology.task_subject("sig.later"), encode(forged.to_wire()), {}
    )
    from tests.helpers import aeventually

    await aeventually(
        lambda: _async([n for n, _, _ in heard if n == "task_unknown"]),
        what="task_unknown heard",
    )
    unknown = next(n for name, _, n in heard if name == "task_unknown")
    assert unknown["name"] == "sig.later" and unknown["id"] == "forged-1"


async def _async(value: Any) -> Any:
    return value


class Recorder(Middleware):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def before_publish(self, message: TaskMessage, subject: str) -> None:
        message.headers["x-stamp"] = "stamped"
        self.calls.append("before_publish")

    def before_start(self, actor: Any, message: TaskMessage) -> None:
        self.calls.append(f"before_start:{message.headers.get('x-stamp')}")

    def after_return(self, actor: Any, message: TaskMessage, state: str, value: Any) -> None:
        self.calls.append(f"after_return:{state}:{value}")


async def test_middleware_hooks_run_and_may_add_headers(app: App, worker) -> None:
    @app.actor(name="mw.echo", bind=True)
    def echo(self: Any) -> str:
        return str(self.request.headers.get("x-stamp"))

    recorder = Recorder()
    app.add_middleware(recorder)
    await worker(app)
    assert await (await echo.adelay()).aget(timeout=10) == "stamped"
    assert recorder.calls == [
        "before_publish",
        "before_start:stamped",
        "after_return:SUCCESS:stamped",
    ]


class Handlers(Task):
    calls: ClassVar[list[tuple[Any, ...]]] = []

    def before_start(self, task_id: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.calls.append(("before_start", args, kwargs))

    def on_success(self, retval: Any, task_id: str, args: list[Any], kwargs: Any) -> None:
        self.calls.append(("on_success", retval))

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        self.calls.append(("on_failure", type(exc).__name__, type(einfo).__name__))

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        self.calls.append(("on_retry", type(exc).__name__))

    def after_return(self, status: str, retval: Any, task_id: str, *rest: Any) -> None:
        self.calls.append(("after_return", status))


class Multiply(Handlers):
    name = "classy.multiply"

    def run(self, x: int, y: int) -> int:
        return x * y


async def test_task_classes_base_and_class_based(app: App, worker) -> None:
    Handlers.calls = []

    @app.actor(name="classy.div", base=Handlers, bind=True, max_retries=1, default_retry_delay=0)
    def div(self: Any, x: int, y: int) -> float:
        if self.request.retries == 0 and y == 1:
            self.retry()
        return x / y

    multiply = app.actor(Multiply)
    assert isinstance(div, Handlers) and isinstance(multiply, Multiply)
    assert multiply.name == "classy.multiply" and app.get_actor("classy.multiply") is multiply
    await worker(app)
    assert await (await multiply.adelay(6, 7)).aget(timeout=10) == 42
    assert await (await div.adelay(4, 1)).aget(timeout=10) == 4
    with pytest.raises(ZeroDivisionError):
        await (await div.adelay(1, 0)).aget(timeout=10)
    assert Handlers.calls == [
        ("before_start", [6, 7], {}),
        ("on_success", 42),
        ("after_return", SUCCESS),
        ("before_start", [4, 1], {}),
        ("on_retry", "Retry"),
        ("after_return", RETRY),
        ("before_start", [4, 1], {}),
        ("on_success", 4.0),
        ("after_return", SUCCESS),
        ("before_start", [1, 0], {}),
        ("on_failure", "ZeroDivisionError", "ExceptionInfo"),
        ("after_return", FAILURE),
    ]


def test_base_must_be_a_task_class(app: App) -> None:
    with pytest.raises(ConfigurationError, match="subclass of actors.Task"):
        app.actor(name="bad.base", base=dict)(lambda: None)
    with pytest.raises(ConfigurationError, match="not a task class"):
        app.register_task(Task)


async def test_worker_process_init_in_a_process_pool_child(app: App, worker) -> None:
    from tests.apps.hooks import register

    child_heard = register(app)
    await worker(app)
    pids = await (await child_heard.adelay()).aget(timeout=20)
    assert len(pids) == 1 and pids[0] != os.getpid()


async def test_beat_init(make_app, heard) -> None:
    from schedulers import Beat

    app = make_app("beating")
    beat = Beat(app)
    await beat.start()
    try:
        assert [s for n, s, _ in heard if n == "beat_init"] == [beat]
    finally:
        await beat.stop()
