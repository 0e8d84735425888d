"""A receiver of ``worker_process_init`` connected at import, and a process-pool actor that
reports what it heard (``pool="process"`` children import this module)."""

from __future__ import annotations

import os
from typing import Any

from actors import App, signals

app = App("hooks")
heard: list[int] = []


@signals.worker_process_init.connect
def _child_started(**_: Any) -> None:
    heard.append(os.getpid())


def register(target: App) -> Any:
    """Register the actor on ``target``; return it."""

    @target.actor(name="hooks.child_heard", pool="process")
    def child_heard() -> list[int]:
        return [pid for pid in heard if pid == os.getpid()]

    return child_heard


register(app)
