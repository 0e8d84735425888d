"""What signals cost per task: the hooks a worker and a client call for one task, timed with
no receiver connected and with one receiver on every task signal.

Run by hand: ``python -m bench.signals [N] [ROUNDS]``. No server: it calls exactly what the
worker's observer (``TaskEvents``, events off) and the client's publish path call per task
(before/after publish, received, prerun, success, postrun), N times, and prints nanoseconds per
task. "no middleware" empties the hook chain, to show the cost of the dispatch itself.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from actors import App, signals
from actors.middleware import Hooks
from actors.wire.message import TaskMessage
from actors.wire.record import SUCCESS
from actors.worker.events import TaskEvents

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
TASK_SIGNALS = [
    signals.before_task_publish,
    signals.after_task_publish,
    signals.task_received,
    signals.task_prerun,
    signals.task_success,
    signals.task_postrun,
]


def one_task_loop(observer: TaskEvents, hooks: Hooks, message: TaskMessage, n: int) -> float:
    """Nanoseconds per task for ``n`` tasks' worth of hook calls."""
    began = time.perf_counter_ns()
    for _ in range(n):
        hooks.before_publish(message, "actors.task.bench.add")
        hooks.after_publish(message, "actors.task.bench.add")
        observer.received(message)
        observer.started(message)
        observer.succeeded(message, 0.0, 4)
        observer.finished(message, SUCCESS, 4)
    return (time.perf_counter_ns() - began) / n


def receiver(**_: Any) -> None:
    """A receiver that does nothing: what remains is the cost of calling it."""


def main() -> None:
    app = App("bench")

    @app.actor(name="bench.add")
    def add(x: int, y: int) -> int:
        return x + y

    hooks = app.client.hooks
    observer = TaskEvents("bench", False, hooks, app.registry.get)
    message = TaskMessage(id="t1", task="bench.add", args=[2, 2])
    bare = Hooks([])
    modes: dict[str, list[float]] = {"no middleware": [], "0 receivers": [], "1 receiver": []}
    for _ in range(ROUNDS):
        bare_observer = TaskEvents("bench", False, bare, app.registry.get)
        modes["no middleware"].append(one_task_loop(bare_observer, bare, message, N))
        modes["0 receivers"].append(one_task_loop(observer, hooks, message, N))
        for signal in TASK_SIGNALS:
            signal.connect(receiver)
        modes["1 receiver"].append(one_task_loop(observer, hooks, message, N))
        for signal in TASK_SIGNALS:
            signal.disconnect(receiver)
    print(f"N={N} tasks, {ROUNDS} rounds; per task: 2 publish hooks + 4 worker hooks")
    for mode, runs in modes.items():
        print(f"{mode:15} {statistics.median(runs):8,.0f} ns/task (median)")


if __name__ == "__main__":
    main()
