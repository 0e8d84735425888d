"""The cost of events and heartbeats: the throughput bench with them off, then on, alternated.

Run by hand: ``python -m bench.events [N] [ROUNDS]``. Same server, same client, one worker
process per run: "off" is ACTORS_EVENTS=0 with one heartbeat an hour, "on" the defaults
(events, a heartbeat every 2 s), "on + task-sent" also has the client publish task-sent.
Events are on by default only if "on" costs at most 10% (docs/operations.md).
"""

from __future__ import annotations

import os
import statistics
import sys

from actors.cli.processes import run_loop as run
from bench import tasks
from bench.common import nats_url, worker_processes
from bench.throughput import N, fire_and_forget, with_results

ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
MODES = {
    "off": {"ACTORS_EVENTS": "0", "ACTORS_WORKER_HEARTBEAT": "3600"},
    "on": {"ACTORS_EVENTS": "1", "ACTORS_WORKER_HEARTBEAT": "2"},
    "on + task-sent": {"ACTORS_EVENTS": "1", "ACTORS_WORKER_HEARTBEAT": "2"},
}


def measure(url: str, mode: str) -> tuple[float, float]:
    """Tasks/s with results and fire-and-forget, one worker process in ``mode``."""
    os.environ.update(MODES[mode])
    app = tasks.app
    app.conf.nats_url = url
    app.conf.task_send_sent_event = mode == "on + task-sent"
    with worker_processes(url, "bench.tasks:app") as procs:
        rates = run(with_results(app, procs[0].pid)), run(fire_and_forget(app))
    app.close()
    return rates


def main() -> None:
    rates: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    with nats_url() as url:
        print(f"N={N}, {ROUNDS} rounds, one worker process, client and nats-server here")
        for round_ in range(ROUNDS):
            for mode in MODES:
                rates[mode].append(measure(url, mode))
                results, fire = rates[mode][-1]
                print(f"round {round_ + 1} {mode:15} {results:8,.0f} {fire:8,.0f} tasks/s")
    base = [statistics.median(r[i] for r in rates["off"]) for i in (0, 1)]
    print("median tasks/s     with results   fire-and-forget")
    for mode, runs in rates.items():
        med = [statistics.median(r[i] for r in runs) for i in (0, 1)]
        cost = [100 * (1 - m / b) for m, b in zip(med, base, strict=True)]
        print(f"{mode:15} {med[0]:10,.0f} ({cost[0]:+5.1f}%) {med[1]:10,.0f} ({cost[1]:+5.1f}%)")


if __name__ == "__main__":
    main()
