"""Signals and the middleware chain without a server: connecting, filtering, failures, and
that a signal without receivers is not even dispatched."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from actors import signals
from actors.middleware import Hooks, Middleware
from actors.wire.message import TaskMessage


def test_connect_forms_sender_filter_and_failures() -> None:
    signal = signals.Signal("demo", ("value",))
    heard: list[Any] = []

    @signal.connect
    def bare(sender: Any, value: int, **_: Any) -> int:
        heard.append(("bare", sender, value))
        return value * 2

    @signal.connect(sender="tasks.add")
    def filtered(sender: Any, **_: Any) -> None:
        heard.append(("filtered", sender))

    def broken(**_: Any) -> None:
        raise RuntimeError("bug")

    signal.connect(broken)
    signal.connect(broken)  # once only
    with capture_logs() as logs:
        replies = signal.send("tasks.other", value=2)
    assert heard == [("bare", "tasks.other", 2)]
    assert replies[0] == (bare, 4) and isinstance(replies[1][1], RuntimeError)
    assert [e["event"] for e in logs] == ["signal.receiver_failed"]
    signal.send("tasks.add", value=1)
    assert heard[-1] == ("filtered", "tasks.add")
    assert signal.disconnect(broken) and not signal.disconnect(broken)


def test_a_signal_without_receivers_is_not_dispatched() -> None:
    hooks = Hooks()
    calls: list[str] = []
    message = TaskMessage(id="t1", task="tasks.add")

    class Spy(Middleware):
        def before_start(self, actor: Any, message: TaskMessage) -> None:
            calls.append("spy")

    def receiver(**_: Any) -> None:
        calls.append("prerun")

    assert hooks._index["before_start"] == ()  # nothing at all is called per task
    signals.task_prerun.connect(receiver)
    try:
        hooks.before_start(None, message)
        assert calls == ["prerun"]
    finally:
        signals.task_prerun.disconnect(receiver)
    assert hooks._index["before_start"] == ()
    hooks.add(Spy())
    hooks.before_start(None, message)
    assert calls == ["prerun", "spy"]


def test_a_failing_hook_is_logged_and_the_next_one_runs() -> None:
    calls: list[str] = []

    class Broken(Middleware):
        def before_publish(self, message: TaskMessage, subject: str) -> None:
            raise RuntimeError("hook bug")

    class After(Middleware):
        def before_publish(self, message: TaskMessage, subject: str) -> None:
            calls.append(subject)

    hooks = Hooks([Broken(), After()])
    with capture_logs() as logs:
        hooks.before_publish(TaskMessage(id="t1", task="tasks.add"), "actors.task.tasks.add")
    assert calls == ["actors.task.tasks.add"]
    assert [(e["event"], e["middleware"].split(".")[-1], e["hook"]) for e in logs] == [
        ("middleware.failed", "Broken", "before_publish")
    ]
