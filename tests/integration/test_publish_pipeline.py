"""The sync path's publish pipeline: delay() returns before its PubAck, and a failed publish
surfaces in get()/ready()/flush(), in delay() with confirm_publish, and in the log at exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from actors import App, PublishFailed
from actors.config import Settings
from actors.nats.server import EmbeddedServer
from actors.wire import topology
from actors.wire.message import decode
from tests.apps.basic import register

ROOT = Path(__file__).resolve().parents[2]


def _delete_task_stream(app: App) -> None:
    """Make every later task publish fail: no stream captures the task subjects."""

    async def delete() -> None:
        connection = await app.client.connection()
        await connection.broker.js.delete_stream(topology.TASK_STREAM)

    app.client.run_blocking(delete())


def _serve(make_app, thread_worker, **options) -> None:
    """A worker on an App of its own: a worker lends its loop to its App's client, whose
    sync calls then run there, confirmed (the pipeline is for the client's own loop)."""
    served = make_app("worker")
    register(served)
    thread_worker(served, **options)


def test_many_delays_then_gets_are_all_correct(app: App, make_app, thread_worker) -> None:
    tasks = register(app)
    _serve(make_app, thread_worker, concurrency=32)
    results = [tasks["aadd"].delay(i, i) for i in range(1000)]
    app.flush()
    assert [r.get(timeout=30) for r in results] == [2 * i for i in range(1000)]


def test_small_window_blocks_and_does_not_deadlock(make_app, thread_worker) -> None:
    app = make_app(publish_window=2)
    tasks = register(app)
    _serve(make_app, thread_worker)
    results = [tasks["aadd"].delay(i, 1) for i in range(100)]
    assert [r.get(timeout=30) for r in results] == [i + 1 for i in range(100)]


def test_threads_delay_concurrently(app: App, make_app, thread_worker) -> None:
    tasks = register(app)
    _serve(make_app, thread_worker, concurrency=32)
    sent: dict[int, list] = {}

    def send(n: int) -> None:
        sent[n] = [tasks["aadd"].delay(n, i) for i in range(200)]

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    app.flush()
    for n in range(4):
        assert [r.get(timeout=30) for r in sent[n]] == [n + i for i in range(200)]


def test_failed_publish_is_raised_by_get_ready_and_flush(make_app) -> None:
    app = make_app(publish_timeout=0.5)
    tasks = register(app)
    tasks["aadd"].delay(0, 0)
    app.flush()
    _delete_task_stream(app)
    lost = tasks["aadd"].delay(1, 1)  # returns: the failure comes later
    with pytest.raises(PublishFailed, match=lost.id) as caught:
        lost.get(timeout=10)
    assert caught.value.task_id == lost.id
    with pytest.raises(PublishFailed, match=lost.id):
        lost.ready()
    with pytest.raises(PublishFailed, match=lost.id):
        lost.wait(timeout=10)
    app.flush()  # get() raised it already: flush has nothing new to say

    others = [tasks["aadd"].delay(i, i) for i in range(3)]
    with pytest.raises(PublishFailed) as flushed:
        app.flush()
    assert flushed.value.task_id == others[0].id
    assert "and 2 more publishes failed" in flushed.value.__notes__
    app.flush()  # each failure is raised once by flush


def test_confirm_publish_raises_in_delay(make_app) -> None:
    app = make_app(publish_timeout=0.5, confirm_publish=True)
    tasks = register(app)
    tasks["aadd"].delay(0, 0)
    _delete_task_stream(app)
    with pytest.raises(PublishFailed, match="not sent"):
        tasks["aadd"].delay(1, 1)


def test_confirm_publish_from_the_environment() -> None:
    env = {"ACTORS_CONFIRM_PUBLISH": "true", "ACTORS_PUBLISH_WINDOW": "7"}
    settings = Settings.build({}, environ=env)
    assert settings.confirm_publish is True
    assert settings.publish_window == 7


def test_failure_left_at_exit_is_logged(nats_server: EmbeddedServer, tmp_path: Path) -> None:
    script = tmp_path / "leave.py"
    script.write_text(
        textwrap.dedent(
            """
            from actors import App
            from actors.wire import topology
            from tests.apps.basic import register

            app = App("leave", publish_timeout=0.5)
            tasks = register(app)
            tasks["aadd"].delay(0, 0)
            app.flush()

            async def delete():
                connection = await app.client.connection()
                await connection.broker.js.delete_stream(topology.TASK_STREAM)

            app.client.run_blocking(delete())
            print("LOST", tasks["aadd"].delay(1, 1).id, flush=True)
            """
        )
    )
    env = {**os.environ, "ACTORS_NATS_URL": nats_server.url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lost = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("LOST"))
    logged = [line for line in (done.stdout + done.stderr).splitlines() if "publish.failed" in line]
    assert len(logged) == 1 and lost in logged[0], done.stdout + done.stderr


def test_leaving_the_process_stops_the_background_loop(
    nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    """A loop thread still running while the interpreter shuts down can crash it (a rare
    segfault at exit was seen): the client's exit handler stops it after the flush."""
    script = tmp_path / "leave.py"
    script.write_text(
        textwrap.dedent(
            """
            import atexit, threading

            def check():  # registered first, so it runs after the client's exit handler
                alive = [t.name for t in threading.enumerate() if t.name.startswith("actors")]
                print("ALIVE", alive, flush=True)

            atexit.register(check)

            from actors import App
            from tests.apps.basic import register

            app = App("leave")
            tasks = register(app)
            tasks["aadd"].delay(0, 0)
            """
        )
    )
    env = {**os.environ, "ACTORS_NATS_URL": nats_server.url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ALIVE []" in done.stdout, done.stdout + done.stderr


def test_publishes_across_a_server_restart_are_stored(
    make_app, thread_worker, nats_server: EmbeddedServer
) -> None:
    app = make_app(publish_timeout=20.0)
    tasks = register(app)
    before = [tasks["aadd"].delay(i, 0) for i in range(20)]
    app.flush()
    nats_server.stop()
    during = [tasks["aadd"].delay(i, 1) for i in range(20)]  # buffered, or re-sent later
    nats_server.start()
    app.flush()  # every one stored: nothing failed
    _serve(make_app, thread_worker)
    assert [r.get(timeout=30) for r in before] == list(range(20))
    assert [r.get(timeout=30) for r in during] == [i + 1 for i in range(20)]


def test_one_threads_publishes_are_stored_in_call_order(app: App) -> None:
    tasks = register(app)
    sent = [tasks["aadd"].delay(i, i).id for i in range(300)]
    app.flush()

    async def stored_ids() -> list[str]:
        broker = (await app.client.connection()).broker
        ids, seq = [], 0
        subject = topology.task_subject("basic.aadd")
        while (
            stored := await broker.stored_message(topology.TASK_STREAM, subject, seq)
        ) is not None:
            ids.append(decode(stored.data, None)["id"])
            seq = stored.seq
        return ids

    assert app.client.run_blocking(stored_ids()) == sent
