"""Remote control against real `actors run` processes: ping, inspect, rate_limit, shutdown."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from actors import App
from actors.errors import TimeLimitExceeded
from actors.nats.scatter import scatter_gather
from actors.nats.server import EmbeddedServer
from tests.apps.basic import register
from tests.helpers import eventually, lines
from tests.integration.cli_helper import actors_cli


def hostname(pid: int) -> str:
    return f"{pid}@{socket.gethostname()}"


def test_ping_gets_a_reply_from_each_of_two_workers(app: App, worker_process) -> None:
    first = worker_process("tests.apps.basic:app")
    second = worker_process("tests.apps.basic:app")
    replies = app.control.ping(timeout=1.0)
    assert sorted(replies, key=str) == sorted(
        [{hostname(first.pid): {"ok": "pong"}}, {hostname(second.pid): {"ok": "pong"}}], key=str
    )
    aimed = app.control.ping(destination=hostname(second.pid), timeout=5.0)
    assert aimed == [{hostname(second.pid): {"ok": "pong"}}]


def test_no_worker_no_reply(app: App) -> None:
    began = time.monotonic()
    assert app.control.ping(timeout=5.0) == []
    assert app.control.inspect(timeout=5.0).active() is None
    assert time.monotonic() - began < 4  # "no responders" ends the wait at once


def test_inspect_active_shows_a_running_task(app: App, worker_process, tmp_path: Path) -> None:
    tasks = register(app)
    proc = worker_process("tests.apps.basic:app")
    marker = tmp_path / "marker"
    result = tasks["sleep"].delay(10.0, str(marker))
    eventually(lambda: lines(marker), what="the task started", timeout=20)
    active = app.control.inspect(timeout=2.0).active()
    assert active is not None
    [running] = active[hostname(proc.pid)]
    assert running["id"] == result.id
    assert running["name"] == "basic.sleep"
    assert running["args"] == [10.0, str(marker)]
    registered = app.control.inspect(timeout=2.0).registered()
    assert registered is not None and "basic.sleep" in registered[hostname(proc.pid)]
    stats = app.control.inspect(timeout=2.0).stats()
    assert stats is not None and stats[hostname(proc.pid)]["active"] == 1


def test_inspect_reserved_shows_a_task_waiting_for_a_slot(
    app: App, worker_process, tmp_path: Path
) -> None:
    tasks = register(app)
    # One slot and a prefetch of two: the add waits in hand (its consumer is the sleep's).
    proc = worker_process(
        "tests.apps.basic:app", "--concurrency", "1", ACTORS_PREFETCH_MULTIPLIER="2"
    )
    marker = tmp_path / "marker"
    tasks["sleep"].delay(10.0, str(marker))
    eventually(lambda: lines(marker), what="the task started", timeout=20)
    waiting = tasks["add"].delay(7, 8)

    def reserved() -> list[dict[str, object]]:
        replies = app.control.inspect(destination=hostname(proc.pid), timeout=5.0).reserved()
        return (replies or {}).get(hostname(proc.pid), [])

    [entry] = eventually(reserved, what="the add reserved", timeout=10)
    assert entry["id"] == waiting.id and entry["args"] == [7, 8] and not entry["acknowledged"]


def test_rate_limit_at_run_time_slows_the_actor(app: App, worker_process) -> None:
    tasks = register(app)
    proc = worker_process("tests.apps.basic:app")
    began = time.monotonic()
    assert [r.get(timeout=20) for r in [tasks["add"].delay(i, 0) for i in range(6)]] == list(
        range(6)
    )
    unlimited = time.monotonic() - began
    assert app.control.rate_limit("basic.add", "2/s", timeout=2.0) == [
        {hostname(proc.pid): {"ok": "new rate limit set successfully"}}
    ]
    began = time.monotonic()
    assert [r.get(timeout=20) for r in [tasks["add"].delay(i, 1) for i in range(6)]] == list(
        range(1, 7)
    )
    limited = time.monotonic() - began
    # 6 tasks at 2 per 1-second window need 3 windows: past at least 2 window starts.
    assert limited >= 1.0 > unlimited, (unlimited, limited)
    assert app.control.rate_limit("basic.add", None, timeout=2.0)[0][hostname(proc.pid)] == {
        "ok": "new rate limit set successfully"
    }


@pytest.mark.slow
def test_bad_requests_get_an_error_and_the_worker_carries_on(app: App, worker_process) -> None:
    proc = worker_process("tests.apps.basic:app")
    me = hostname(proc.pid)
    [reply] = app.control.rate_limit("basic.add", "fast", destination=me, timeout=5.0)
    assert "bad request" in reply[me]["error"]
    [reply] = app.control.rate_limit("no.such.task", "1/s", destination=me, timeout=5.0)
    assert reply[me] == {"error": "unknown task 'no.such.task'"}
    [reply] = app.control.time_limit("basic.add", soft=5, hard=1, destination=me, timeout=5.0)
    assert "over the hard limit" in reply[me]["error"]
    [reply] = app.control.broadcast("add_consumer", None, me, timeout=5.0)  # no actor
    assert "bad request" in reply[me]["error"]
    for body in (b"\xff\x00", b"[1, 2]", b'{"task_name": "x\\r\\nPUB"}', b"{" * 100_000):
        raw = app.client.run_blocking(_raw(app, "actors.control.time_limit", body))
        assert raw is not None and b"error" in raw
    assert app.control.ping(timeout=2.0) == [{me: {"ok": "pong"}}]
    # A reply subject that is not an inbox gets no reply: it could be a task subject.
    app.client.run_blocking(_publish(app, "actors.control.ping", "actors.task.basic.add"))
    proc.wait_for_event("control.bad_reply_subject")
    assert app.control.ping(timeout=2.0) == [{me: {"ok": "pong"}}]
    assert proc.count("task.succeeded") + proc.count("task.dead_lettered") == 0


async def _publish(app: App, subject: str, reply: str) -> None:
    broker = (await app.client.connection()).broker
    await broker.nc.publish(subject, b"", reply=reply)
    await broker.nc.flush()


async def _raw(app: App, subject: str, body: bytes) -> bytes | None:
    broker = (await app.client.connection()).broker
    replies = await scatter_gather(broker, subject, body, 2.0, 1)
    return replies[0] if replies else None


def test_shutdown_stops_a_worker_gracefully(app: App, worker_process, tmp_path: Path) -> None:
    tasks = register(app)
    first = worker_process("tests.apps.basic:app")
    second = worker_process("tests.apps.basic:app")
    marker = tmp_path / "marker"
    result = tasks["sleep"].delay(1.0, str(marker))
    eventually(lambda: lines(marker), what="the task started", timeout=20)
    runner = int(lines(marker)[0].split()[1])
    [reply] = app.control.shutdown(destination=hostname(runner), timeout=5.0)
    assert reply == {hostname(runner): {"ok": "shutting down"}}
    stopped = first if runner == first.pid else second
    assert stopped.wait(timeout=20) == 0
    assert result.get(timeout=5) == 1.0  # the running task finished first
    assert stopped.count("worker.stopped") == 1
    other = second if stopped is first else first
    assert app.control.ping(timeout=1.0) == [{hostname(other.pid): {"ok": "pong"}}]


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return actors_cli(*args, "--nats-url", url)


@pytest.mark.slow
def test_cli_inspect_and_control(
    app: App, worker_process, nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    tasks = register(app)
    proc = worker_process("tests.apps.basic:app")
    me = hostname(proc.pid)
    marker = tmp_path / "marker"
    result = tasks["sleep"].delay(10.0, str(marker))
    eventually(lambda: lines(marker), what="the task started", timeout=20)

    shown = cli(nats_server.url, "inspect", "active", "--timeout", "0.5")
    assert shown.returncode == 0, shown.stderr
    assert result.id in shown.stdout and "basic.sleep" in shown.stdout and me in shown.stdout
    as_json = cli(nats_server.url, "inspect", "active", "--json", "-d", me, "--timeout", "5")
    [[(worker, [running])]] = [list(one.items()) for one in json.loads(as_json.stdout)]
    assert worker == me and running["id"] == result.id
    assert running["args"] == [10.0, str(marker)]

    for command in ("ping", "registered", "stats", "conf", "reserved", "scheduled"):
        out = cli(nats_server.url, "inspect", command, "--timeout", "0.5")
        assert out.returncode == 0 and me in out.stdout, (command, out.stdout, out.stderr)

    limited = cli(nats_server.url, "control", "rate-limit", "basic.add", "5/s", "-t", "0.5")
    assert limited.returncode == 0 and "new rate limit set successfully" in limited.stdout
    unknown = cli(nats_server.url, "control", "rate-limit", "no.such", "5/s", "-t", "0.5")
    assert unknown.returncode == 1 and "unknown task" in unknown.stdout

    nobody = cli(nats_server.url, "inspect", "ping", "-d", "1@nowhere", "--timeout", "0.5")
    assert nobody.returncode == 1 and "no worker replied" in nobody.stderr
    usage = cli(nats_server.url, "inspect", "ping", "--timeout", "soon")
    assert usage.returncode == 2


@pytest.mark.slow
def test_cli_shutdown_cancel_and_add_consumer(
    app: App, worker_process, nats_server: EmbeddedServer
) -> None:
    tasks = register(app)
    worker_process("tests.apps.basic:app", "--actors", "basic.aadd,basic.ctx")
    # This worker's consumers deliver basic.add alone: cancelling stops them, and a task
    # sent meanwhile waits for add-consumer.
    proc = worker_process("tests.apps.basic:app", "--actors", "basic.add")
    me = hostname(proc.pid)
    cancelled = cli(nats_server.url, "control", "cancel-consumer", "basic.add", "-d", me)
    assert cancelled.returncode == 0 and "no longer consuming from basic.add" in cancelled.stdout
    registered = app.control.inspect(destination=me, timeout=5).registered()
    assert registered is not None and "basic.add" not in registered[me]
    pending = tasks["add"].delay(1, 2)
    assert tasks["aadd"].delay(1, 1).get(timeout=10) == 2  # later than `add`, and served
    assert pending.state == "PENDING"
    added = cli(nats_server.url, "control", "add-consumer", "basic.add", "-d", me)
    assert added.returncode == 0 and "add consumer basic.add" in added.stdout
    assert pending.get(timeout=10) == 3

    stopped = cli(nats_server.url, "control", "shutdown", "-d", me, "--json")
    assert stopped.returncode == 0 and json.loads(stopped.stdout) == [{me: {"ok": "shutting down"}}]
    assert proc.wait(timeout=20) == 0
    assert proc.count("worker.stopped") == 1


@pytest.mark.slow
def test_inspect_scheduled_lists_a_countdown_task(app: App, worker_process) -> None:
    tasks = register(app)
    proc = worker_process("tests.apps.basic:app", "--actors", "basic.add")
    later = tasks["add"].apply_async((4, 5), countdown=60)
    other = tasks["aadd"].apply_async((1, 1), countdown=60)  # not served by this worker
    scheduled = app.control.inspect(timeout=1.0).scheduled()
    assert scheduled is not None
    [entry] = scheduled[hostname(proc.pid)]
    assert entry["request"]["id"] == later.id and entry["request"]["args"] == [4, 5]
    assert entry["eta"] and other.id not in json.dumps(scheduled)


@pytest.mark.slow
def test_time_limit_at_run_time_stops_a_long_task(app: App, worker_process) -> None:
    tasks = register(app)
    proc = worker_process("tests.apps.basic:app")
    [reply] = app.control.time_limit("basic.asleep", hard=0.5, timeout=2.0)
    assert reply == {hostname(proc.pid): {"ok": "time limits set successfully"}}
    began = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match="time_limit of 0.5s"):
        tasks["asleep"].delay(30.0).get(timeout=20)
    assert time.monotonic() - began < 10
    app.control.time_limit("basic.asleep", timeout=2.0)  # removed again
    assert tasks["asleep"].delay(0.6).get(timeout=20) == 0.6


@pytest.mark.slow
def test_shutdown_stops_a_node_of_several_processes(app: App, worker_process) -> None:
    node = worker_process("tests.apps.basic:app", "--processes", "2")
    replies = eventually(
        lambda: app.control.ping(timeout=0.5),
        until=lambda replies: len(replies) == 2,
        what="both worker processes answering",
        timeout=20,
    )
    [child, _] = [next(iter(one)) for one in replies]
    assert app.control.shutdown(destination=child, timeout=5.0) == [
        {child: {"ok": "shutting down"}}
    ]
    assert node.wait(timeout=30) == 0  # the supervisor stopped the other one too, and exited
    assert app.control.ping(timeout=0.5) == []
