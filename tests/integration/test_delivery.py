"""acks_late, per-actor max_deliveries with a task that kills its worker, `actors dead`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from actors import App, WorkerLost
from actors.client.results import SUCCESS
from actors.wire import topology
from tests.apps.semantics import app as semantics_app
from tests.apps.semantics import register, tasks
from tests.integration.cli_helper import actors_cli

APP = "tests.apps.semantics:app"


def consumer_state(app: App, task: str) -> tuple[int, int]:
    async def read() -> tuple[int, int]:
        connection = await app.client.connection()
        info = await connection.broker.js.consumer_info(
            topology.TASK_STREAM, topology.consumer_name(task)
        )
        return info.num_pending, info.num_ack_pending

    return app.client.run_blocking(read())


@pytest.mark.chaos
def test_a_task_that_kills_its_worker_is_dead_lettered(
    nats_server, worker_process, tmp_path: Path
) -> None:
    marker = tmp_path / "runs"
    semantics_app.conf.nats_url = nats_server.url
    try:
        supervisor = worker_process(APP, "--processes", "2", ACTORS_ACK_WAIT="1")
        result = tasks["crash"].delay(str(marker))
        with pytest.raises(WorkerLost, match="max_deliveries=2"):
            result.get(timeout=40)
        assert marker.read_text().count("run") == 2  # not looping for ever
        assert supervisor.process.poll() is None
    finally:
        semantics_app.close()
        semantics_app.conf.nats_url = None


@pytest.mark.chaos
def test_acks_late_false_never_runs_twice(
    make_app, nats_server, worker_process, tmp_path: Path
) -> None:
    app = make_app()
    register(app)
    marker = tmp_path / "runs"
    worker = worker_process(APP, ACTORS_ACK_WAIT="1")
    app.registry["sem.crash_early"].delay(str(marker))
    worker.process.wait(20)  # the task killed it
    second = worker_process(APP, ACTORS_ACK_WAIT="1")
    # A redelivery would come 1 s (ack_wait) after the crash; a late ack would show as pending.
    stamp = app.registry["sem.stamp"].delay()
    assert stamp.get(timeout=10) > 0
    time.sleep(1.5)
    assert consumer_state(app, "sem.crash_early") == (0, 0)
    assert marker.read_text().count("run") == 1
    assert second.count("task.succeeded") == 1


def test_dead_list_show_replay_purge(make_app, nats_server, thread_worker) -> None:
    app = make_app(unrouted_grace=0.5)
    tasks_ = register(app)
    thread_worker(app, actor_names=["sem.stamp"])
    lost = tasks_["busy"].delay(0)  # nobody serves sem.busy: dead-lettered after the grace
    other = tasks_["busy"].delay(0)
    with pytest.raises(Exception, match="no worker serves"):
        lost.get(timeout=15)
    with pytest.raises(Exception, match="no worker serves"):
        other.get(timeout=15)
    url = ["--nats-url", nats_server.url]

    listed = actors_cli("dead", "list", *url)
    assert listed.returncode == 0, listed.stdout
    lines = [line for line in listed.stdout.splitlines() if "\t" in line]
    assert len(lines) == 2 and lost.id in listed.stdout and "no worker serves" in lines[0]
    seq = next(line.split("\t")[0] for line in lines if lost.id in line)

    shown = actors_cli("dead", "show", seq, *url)
    assert shown.returncode == 0 and f"task id: {lost.id}" in shown.stdout
    assert "sem.busy" in shown.stdout
    assert actors_cli("dead", "show", "9999", *url).returncode == 1

    thread_worker(app, actor_names=["sem.busy"])
    replayed = actors_cli("dead", "replay", seq, *url)
    assert replayed.returncode == 0 and "replayed 1" in replayed.stdout, replayed.stdout
    deadline = time.monotonic() + 15
    while app.AsyncResult(lost.id).state != SUCCESS:
        assert time.monotonic() < deadline, "replayed task did not run"
        time.sleep(0.05)
    assert app.AsyncResult(other.id).state != SUCCESS

    remaining = actors_cli("dead", "list", *url).stdout
    assert lost.id not in remaining and other.id in remaining
    purged = actors_cli("dead", "purge", *url)
    assert purged.returncode == 0 and "purged 1" in purged.stdout
    assert "no dead letters" in actors_cli("dead", "list", *url).stdout
    assert actors_cli("dead", "replay", *url).returncode == 2
