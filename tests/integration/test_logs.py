"""Logs: stdlib logging from tasks through structlog, and whole JSON lines from N processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from actors import App
from actors.nats.server import EmbeddedServer
from tests.conftest import ROOT
from tests.helpers import eventually


def test_stdlib_logging_in_a_task_carries_the_task_and_is_json(
    make_app: Callable[..., App], worker_process: Callable[..., Any]
) -> None:
    worker = worker_process("tests.apps.ops:app")
    client = make_app("ops-client")
    result = client.send_task("ops.stdlib_log", ["world"])
    assert result.get(timeout=20) == "world"
    worker.wait_for_event("hello world")
    [line] = worker.events("hello world")
    assert line["task"] == "ops.stdlib_log" and line["task_id"] == result.id
    assert line["logger"] == "ops.tasks" and line["level"] == "info"
    assert line["timestamp"].endswith("Z")


def test_stdlib_logging_in_a_process_pool_child_is_json_with_the_task(
    make_app: Callable[..., App], worker_process: Callable[..., Any]
) -> None:
    worker = worker_process("tests.apps.ops:app")
    result = make_app("ops-client").send_task("ops.process_log", ["hi"])
    assert result.get(timeout=30) != worker.pid
    worker.wait_for_event("child says hi")
    [line] = worker.events("child says hi")
    assert line["task"] == "ops.process_log" and line["task_id"] == result.id
    assert line["logger"] == "ops.tasks" and "timestamp" in line


def test_json_lines_of_several_processes_never_interleave(
    make_app: Callable[..., App], nats_server: EmbeddedServer
) -> None:
    env = {**os.environ, "ACTORS_NATS_URL": nats_server.url, "PYTHONPATH": str(ROOT)}
    command = ["run", "tests.apps.ops:app", "-p", "3", "-c", "8", "--log-format", "json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "actors", *command],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # a pipe: writes over 4 KiB are not atomic there
    )
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        # All three must serve, or the lines would come from fewer writers than claimed.
        eventually(
            lambda: sum(b'"worker.started"' in line for line in list(lines)),
            until=lambda started: started == 3,
            what="three worker processes to start",
            timeout=60,
        )
        client = make_app("ops-client")
        results = [client.send_task("ops.long_lines", [n]) for n in range(60)]
        assert sorted(r.get(timeout=60) for r in results) == list(range(60))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        reader.join(10)
    events = [json.loads(line) for line in lines]  # every line whole: each one parses
    long_lines = [e for e in events if e.get("event") == "long.line"]
    assert len(long_lines) == 180
    assert all(len(json.dumps(e)) > 9000 for e in long_lines)
    assert len({e["task_id"] for e in long_lines}) == 60
    assert sum(1 for e in events if e.get("event") == "worker.started") == 3
