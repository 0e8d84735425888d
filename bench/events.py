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
from bench.common import cpu_seconds, nats_url, server_pid, worker_processes
from bench.throughput import N, fire_and_forget, with_results

ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
MODES = {
    "off": {"ACTORS_EVENTS": "0", "ACTORS_WORKER_HEARTBEAT": "3600"},
    "on": {"ACTORS_EVENTS": "1", "ACTORS_WORKER_HEARTBEAT": "2"},
    "on + task-sent": {"ACTORS_EVENTS": "1", "ACTORS_WORKER_HEARTBEAT": "2"},
}


def measure(url: str, mode: str) -> tuple[float, float, float]:
    """Tasks/s with results and fire-and-forget, and the worker's and nats-server's CPU
    microseconds per task over both, one worker process in ``mode``.

    On a shared machine the rates swing with other load; CPU time per task does much less.
    """
    os.environ.update(MODES[mode])
    app = tasks.app
    app.conf.nats_url = url
    app.conf.task_send_sent_event = mode == "on + task-sent"
    server = server_pid()
    with worker_processes(url, "bench.tasks:app") as procs:
        pid = procs[0].pid
        cpu = cpu_seconds(pid) + (cpu_seconds(server) if server else 0.0)
        rates = run(with_results(app, pid)), run(fire_and_forget(app))
        cpu = cpu_seconds(pid) + (cpu_seconds(server) if server else 0.0) - cpu
    app.close()
    return (*rates, cpu / (2 * N) * 1e6)


def main() -> None:
    rates: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in MODES}
    with nats_url() as url:
        print(f"N={N}, {ROUNDS} rounds, one worker process, client and nats-server here")
        for round_ in range(ROUNDS):
            for mode in MODES:
                rates[mode].append(measure(url, mode))
                results, fire, cpu = rates[mode][-1]
                rate = f"{results:8,.0f} {fire:8,.0f} tasks/s"
                print(f"round {round_ + 1} {mode:15} {rate} {cpu:4.0f} us")
    base = [statistics.median(r[i] for r in rates["off"]) for i in (0, 1, 2)]
    print("median          with results (cost)  fire-and-forget (cost)  worker+server CPU/task")
    for mode, runs in rates.items():
        med = [statistics.median(r[i] for r in runs) for i in (0, 1, 2)]
        cost = [100 * (1 - med[i] / base[i]) for i in (0, 1)] + [100 * (med[2] / base[2] - 1)]
        print(
            f"{mode:15} {med[0]:8,.0f}/s ({cost[0]:+5.1f}%) {med[1]:8,.0f}/s ({cost[1]:+5.1f}%)"
            f"   {med[2]:5.0f} us ({cost[2]:+5.1f}%)"
        )


if __name__ == "__main__":
    main()
