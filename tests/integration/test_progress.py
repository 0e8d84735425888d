"""Progress and custom states: update_state, AsyncResult.state/.info, get(on_message=...)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from actors import App
from tests.helpers import eventually


def test_progress_is_shown_and_streamed_on_the_watch(app: App, thread_worker) -> None:
    gate = threading.Event()

    @app.actor(name="prog.steps", bind=True)
    def steps(self: Any) -> str:
        self.update_state(state="PROGRESS", meta={"step": 1})
        assert gate.wait(10)
        self.update_state(state="UPLOADING", meta={"step": 2})
        return "done"

    thread_worker(app)
    result = steps.delay()
    eventually(lambda: result.state, until=lambda s: s == "PROGRESS", what="state PROGRESS")
    assert result.info == {"step": 1} and not result.ready()
    seen: list[tuple[str, Any]] = []

    def on_message(meta: dict[str, Any]) -> None:
        seen.append((meta["status"], meta["result"]))
        assert meta["task_id"] == result.id
        if meta["result"] == {"step": 1}:
            gate.set()  # the next update comes only once this one was streamed

    assert result.get(timeout=10, on_message=on_message) == "done"
    assert seen == [("PROGRESS", {"step": 1}), ("UPLOADING", {"step": 2}), ("SUCCESS", "done")]
    assert result.state == "SUCCESS" and result.info == "done"


@pytest.mark.parametrize("state", ["SUCCESS", "progress", "PENDING", "BAD STATE"])
def test_reserved_or_malformed_states_are_refused(app: App, thread_worker, state: str) -> None:
    @app.actor(name="prog.bad", bind=True)
    def bad(self: Any, state: str) -> None:
        self.update_state(state=state, meta={})

    thread_worker(app)
    with pytest.raises(ValueError, match="state"):
        bad.delay(state).get(timeout=10)


async def test_a_plain_wait_skips_progress_records(app: App, worker) -> None:
    @app.actor(name="prog.quick", bind=True)
    async def quick(self: Any, steps: int) -> int:
        for step in range(steps):
            await self.aupdate_state(state="PROGRESS", meta={"step": step})
        return steps

    await worker(app)
    result = await quick.adelay(5)
    assert await result.aget(timeout=10) == 5
    assert await result.astate() == "SUCCESS"
