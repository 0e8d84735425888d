"""Real `actors run` processes: sharing work, SIGTERM drain, SIGKILL redelivery, --processes."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from actors import App
from actors.cli.processes import GC_THRESHOLDS
from tests.apps.basic import register
from tests.helpers import eventually, lines


def wait_for_lines(path: Path, prefix: str, count: int) -> list[str]:
    """Lines of ``path`` starting with ``prefix``, once there are ``count`` of them."""
    return eventually(
        lambda: [line for line in lines(path) if line.startswith(prefix)],
        until=lambda found: len(found) >= count,
        what=f"{count} lines starting {prefix!r} in {path}",
        timeout=20,
    )


def test_two_worker_processes_share_the_work(app: App, worker_process) -> None:
    tasks = register(app)
    first = worker_process("tests.apps.basic:app", "--concurrency", "4")
    second = worker_process("tests.apps.basic:app", "--concurrency", "4")
    results = [tasks["pid"].delay() for _ in range(400)]
    pids = [r.get(timeout=30) for r in results]
    assert set(pids) == {first.pid, second.pid}
    assert first.count("task.succeeded") + second.count("task.succeeded") == 400


def test_task_logs_carry_task_name_and_id(app: App, worker_process) -> None:
    tasks = register(app)
    proc = worker_process("tests.apps.basic:app")
    result = tasks["add"].delay(2, 3)
    assert result.get(timeout=10) == 5
    proc.wait_for_event("adding")
    line = next(e for e in proc.events() if e["event"] == "adding")
    assert line["task"] == "basic.add" and line["task_id"] == result.id
    assert line["x"] == 2 and line["y"] == 3
    banner = next(e for e in proc.events() if e["event"] == "worker.started")
    assert "basic.add" in banner["actors"] and banner["concurrency"] == 64


def test_a_worker_process_collects_garbage_less_often(app: App, worker_process) -> None:
    tasks = register(app)
    worker_process("tests.apps.basic:app")
    state = tasks["gc_state"].delay().get(timeout=10)
    assert state["threshold"] == list(GC_THRESHOLDS)
    assert state["frozen"] > 10_000  # the app and its modules are out of the collector's way


def test_sigterm_lets_the_running_task_finish(app: App, worker_process, tmp_path: Path) -> None:
    tasks = register(app)
    proc = worker_process("tests.apps.basic:app")
    marker = tmp_path / "marker"
    result = tasks["sleep"].delay(1.0, str(marker))
    wait_for_lines(marker, "start", 1)
    assert proc.terminate() == 0
    assert result.get(timeout=5) == 1.0
    assert wait_for_lines(marker, "done", 1) == [f"done {proc.pid}"]


@pytest.mark.chaos
def test_task_unfinished_at_shutdown_is_redelivered(
    app: App, worker_process, tmp_path: Path
) -> None:
    tasks = register(app)
    env = {"ACTORS_SHUTDOWN_GRACE": "0.2", "ACTORS_ACK_WAIT": "2"}
    first = worker_process("tests.apps.basic:app", **env)
    marker = tmp_path / "marker"
    result = tasks["sleep"].delay(1.5, str(marker))
    wait_for_lines(marker, "start", 1)
    assert first.terminate() == 0  # exits after the grace period, task unfinished
    second = worker_process("tests.apps.basic:app", **env)
    assert result.get(timeout=20) == 1.5
    assert wait_for_lines(marker, "done", 1) == [f"done {second.pid}"]


@pytest.mark.chaos
def test_sigkill_mid_task_loses_nothing(app: App, worker_process, tmp_path: Path) -> None:
    tasks = register(app)
    env = {"ACTORS_ACK_WAIT": "2"}
    doomed = worker_process("tests.apps.basic:app", "--concurrency", "20", **env)
    marker = tmp_path / "marker"
    sleepers = [tasks["sleep"].delay(0.5, str(marker)) for _ in range(20)]
    wait_for_lines(marker, "start", 20)
    doomed.kill()
    survivor = worker_process("tests.apps.basic:app", "--concurrency", "20", **env)
    assert [r.get(timeout=30) for r in sleepers] == [0.5] * 20
    done = wait_for_lines(marker, "done", 20)
    assert set(done) == {f"done {survivor.pid}"}


def test_processes_option_runs_several_worker_processes(app: App, worker_process) -> None:
    tasks = register(app)
    parent = worker_process("tests.apps.basic:app", "--processes", "2", "--concurrency", "2")
    parent.wait_for_event("worker.started", count=2)
    pids = {tasks["pid"].delay().get(timeout=20) for _ in range(200)}
    assert len(pids) == 2 and parent.pid not in pids, (pids, parent.output())
    parent.process.send_signal(signal.SIGTERM)
    assert parent.process.wait(30) == 0, parent.output()
    assert parent.count("worker.stopped") == 2, parent.output()


def test_actors_option_limits_what_a_worker_serves(app: App, worker_process) -> None:
    tasks = register(app)
    proc = worker_process("tests.apps.basic:app", "--actors", "basic.add")
    banner = next(e for e in proc.events() if e["event"] == "worker.started")
    assert banner["actors"] == ["basic.add"]
    assert tasks["add"].delay(1, 1).get(timeout=10) == 2


STUCK = """
import asyncio, sys
sys.path.insert(0, {root!r})
from actors.cli.processes import stop_on_signals

async def main():
    stop = asyncio.Event()
    stop_on_signals(asyncio.get_running_loop(), stop, 0.5)
    print("ready", flush=True)
    await stop.wait()
    await asyncio.sleep(60)  # a shutdown that never finishes

asyncio.run(main())
"""


def test_a_stuck_shutdown_is_ended_by_the_watchdog() -> None:
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK.format(root=root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 3
    assert "shutdown.stuck" in proc.stdout.read()


@pytest.mark.chaos
def test_worker_processes_stop_when_their_supervisor_is_killed(worker_process) -> None:
    import os

    parent = worker_process("tests.apps.basic:app", "--processes", "2")
    parent.wait_for_event("worker.started", count=2)
    children = [int(e["hostname"].split("@")[0]) for e in parent.events("worker.started")]
    parent.kill()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    eventually(
        lambda: [pid for pid in children if alive(pid)],
        until=lambda living: not living,
        what=lambda: f"the worker processes to stop:\n{parent.output()}",
        timeout=15,
        interval=0.1,
    )
