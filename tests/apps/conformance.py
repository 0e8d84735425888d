"""Actors for the conformance fixtures (``tests.apps.conformance:app``, tests/conformance/).

``conformance.record`` appends its ``tag`` as one line to the file named by the environment
variable ``ACTORS_CONFORMANCE_RUNS`` (read at each call), so a runner in any language can
count how often a task really ran.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from actors import App

RUNS_FILE = "ACTORS_CONFORMANCE_RUNS"


def register(app: App) -> dict[str, Any]:
    """Register the conformance actors on ``app``; return them by short name."""

    @app.actor(name="conformance.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.actor(name="conformance.echo")
    def echo(*args: Any) -> list[Any]:
        return list(args)

    @app.actor(name="conformance.record")
    def record(tag: str) -> str:
        runs = os.environ.get(RUNS_FILE)
        if runs:
            with Path(runs).open("a") as f:
                f.write(f"{tag}\n")
        return tag

    @app.actor(name="conformance.fail")
    def fail(message: str) -> None:
        raise ValueError(message)

    @app.actor(name="conformance.progress", bind=True)
    def progress(self: Any, target: str, state: str, meta: Any) -> str:
        self.update_state(task_id=target, state=state, meta=meta)  # ValueError: a bad state
        return state

    def member(item: Any) -> Any:
        if isinstance(item, dict):
            return app.GroupResult(item["id"], [member(m) for m in item["results"]])
        return app.AsyncResult(item)

    @app.actor(name="conformance.save_group")
    def save_group(group_id: str, members: list[Any]) -> str:
        app.GroupResult(group_id, [member(m) for m in members]).save()
        return group_id

    return {
        "add": add,
        "echo": echo,
        "record": record,
        "fail": fail,
        "progress": progress,
        "save_group": save_group,
    }


app = App("conformance")
register(app)
