"""Events and the worker registry with real processes: ``actors status`` and ``actors events``."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from actors import App
from actors.nats.server import EmbeddedServer
from tests.apps import basic
from tests.conftest import ROOT, WorkerProcess
from tests.helpers import aeventually, eventually
from tests.integration.cli_helper import actors_cli

pytestmark = pytest.mark.timeout(120)

HEARTBEAT = "0.5"


def status(url: str) -> list[dict[str, Any]]:
    """The live workers ``actors status --json`` lists."""
    done = actors_cli("status", "--json", "--nats-url", url)
    assert done.returncode in (0, 1), done.stderr
    records: list[dict[str, Any]] = json.loads(done.stdout)
    return records


def test_status_lists_two_workers_and_forgets_a_killed_one(
    nats_server: EmbeddedServer, worker_process: Callable[..., WorkerProcess]
) -> None:
    env = {"ACTORS_WORKER_HEARTBEAT": HEARTBEAT}
    first = worker_process("tests.apps.basic:app", **env)
    second = worker_process("tests.apps.basic:app", **env)
    url = nats_server.url
    listed = eventually(
        lambda: status(url), until=lambda r: len(r) == 2, what="2 workers listed", timeout=20
    )
    assert {r["pid"] for r in listed} == {first.pid, second.pid}
    for record in listed:
        assert record["actors"] == sorted(basic.app.registry)
        assert record["heartbeat"] == float(HEARTBEAT)
        assert record["version"] and record["started_at"] and record["heartbeat_at"]
    table = actors_cli("status", "--nats-url", url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["WORKER", "ACTORS"] and len(lines) == 3

    second.kill()  # SIGKILL: no goodbye, the record must expire
    killed = time.monotonic()
    left = eventually(
        lambda: status(url), until=lambda r: len(r) == 1, what="killed worker gone", timeout=20
    )
    gone_after = time.monotonic() - killed
    assert left[0]["pid"] == first.pid
    # About 3 heartbeats (1.5 s), plus the server's expiry sweep and the CLI's start-up.
    assert gone_after < 3 * float(HEARTBEAT) + 4, gone_after

    assert first.terminate() == 0  # a graceful stop deletes the record at once
    assert status(url) == []
    assert actors_cli("status", "--nats-url", url).returncode == 1
    replay = actors_cli("events", "--json", "--since", "1h", "--no-follow", "--nats-url", url)
    lives = [json.loads(line) for line in replay.stdout.splitlines()]
    offline = [e for e in lives if e["type"] == "worker-offline"]
    assert [e["hostname"].split("@")[0] for e in offline] == [str(first.pid)]


class Tail:
    """``actors events --json`` running, its lines read in a thread."""

    def __init__(self, url: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "actors", "events", "--json", "--nats-url", url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def until(self, done: Callable[[dict[str, Any]], bool], timeout: float = 20) -> list[Any]:
        """Events read until one passes ``done`` (included)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such event in {timeout}s; saw {seen}") from None
            seen.append(json.loads(line))
            if done(seen[-1]):
                return seen

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


def test_events_json_shows_the_life_of_one_task(
    nats_server: EmbeddedServer,
    worker_process: Callable[..., WorkerProcess],
    make_app: Callable[..., App],
) -> None:
    url = nats_server.url
    worker = worker_process("tests.apps.basic:app", ACTORS_WORKER_HEARTBEAT=HEARTBEAT)
    tail = Tail(url)
    try:
        # The tail is live once it prints the worker's next heartbeat.
        tail.until(lambda e: e["type"] == "worker-heartbeat")
        app = make_app("client", task_send_sent_event=True)
        basic.register(app)
        result = app.registry["basic.add"].delay(2, 3)
        assert result.get(timeout=10) == 5
        live = tail.until(lambda e: e["type"] == "task-succeeded" and e["uuid"] == result.id)
    finally:
        tail.close()
    life = [e for e in live if e.get("uuid") == result.id]
    assert [e["type"] for e in life] == [
        "task-sent",
        "task-received",
        "task-started",
        "task-succeeded",
    ]
    assert all(e["name"] == "basic.add" for e in life)
    assert (
        life[1]["args"] == "[2, 3]"
        and life[1]["hostname"] == f"{worker.pid}@" + life[1]["hostname"].split("@", 1)[1]
    )
    assert life[-1]["result"] == "5" and life[-1]["runtime"] >= 0

    # A monitor started later replays the same history from the stream.
    replay = actors_cli("events", "--json", "--since", "10m", "--no-follow", "--nats-url", url)
    assert replay.returncode == 0, replay.stderr
    replayed = [json.loads(line) for line in replay.stdout.splitlines()]
    assert replayed[0]["type"] == "worker-online"
    assert [e["type"] for e in replayed if e.get("uuid") == result.id] == [e["type"] for e in life]
    text = actors_cli("events", "--since", "10m", "--no-follow", "--nats-url", url)
    assert f"task-succeeded basic.add id={result.id}" in text.stdout


async def test_worker_publishes_failures_retries_revocations_and_rejections(
    make_app: Callable[..., App], worker: Callable[..., Any]
) -> None:
    from actors.client.events import read_events
    from actors.nats.broker import Broker

    app = make_app("events", events_flush_interval=0.05)

    @app.actor(name="ev.boom")
    def boom() -> None:
        raise ValueError("no")

    @app.actor(name="ev.flaky", bind=True)
    def flaky(self: Any) -> int:
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return 1

    @app.actor(name="ev.ok")
    def ok() -> int:
        return 1

    running = await worker(app)
    failing = await boom.adelay()
    with pytest.raises(ValueError):
        await failing.aget(timeout=10)
    retried = await flaky.adelay()
    assert await retried.aget(timeout=10) == 1
    await app.control.arevoke("revoked-id")
    revoked = await ok.aapply_async(task_id="revoked-id")
    assert revoked.id == "revoked-id"
    broker = await Broker.connect(app.conf)
    try:
        await broker.publish("actors.task.ev.ok", b"not msgpack", {"Nats-Msg-Id": "junk"})

        async def kinds() -> dict[str | None, list[str]]:
            seen: dict[str | None, list[str]] = {}
            async for event in read_events(broker, since=datetime_min(), follow=False):
                seen.setdefault(event.get("uuid"), []).append(event["type"])
            return seen

        def complete(seen: dict[str | None, list[str]]) -> bool:
            return "task-rejected" in seen.get(None, []) and "task-revoked" in seen.get(
                "revoked-id", []
            )

        seen = await aeventually(kinds, until=complete, what="all events stored")
    finally:
        await broker.close()
    assert seen[failing.id] == ["task-received", "task-started", "task-failed"]
    assert seen[retried.id] == [
        "task-received",
        "task-started",
        "task-retried",
        "task-received",
        "task-started",
        "task-succeeded",
    ]
    assert seen["revoked-id"] == ["task-received", "task-revoked"]
    assert "worker-online" in seen[None]
    assert running.failed == 1 and running.active == 0


def datetime_min() -> Any:
    from datetime import UTC, datetime

    return datetime(2000, 1, 1, tzinfo=UTC)


def test_a_worker_run_with_no_events_publishes_none_but_is_listed(
    nats_server: EmbeddedServer,
    worker_process: Callable[..., WorkerProcess],
    make_app: Callable[..., App],
) -> None:
    url = nats_server.url
    quiet = worker_process("tests.apps.basic:app", "--no-events")
    app = make_app("client")
    basic.register(app)
    assert app.registry["basic.add"].delay(1, 1).get(timeout=10) == 2
    assert [r["pid"] for r in status(url)] == [quiet.pid]
    assert quiet.terminate() == 0
    replay = actors_cli("events", "--json", "--since", "1h", "--no-follow", "--nats-url", url)
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout == ""
