"""The process-pool child, run as a subprocess without a server: it times the soft limit
itself from the task's start, so a slow start-up neither kills it nor eats into the limit."""

from __future__ import annotations

import os
import subprocess
import sys

from actors.wire.message import decode, encode

MESSAGE = {"v": 1, "id": "0b7a3c36-8f43-4cf6-9d2c-4d1f6a7b8c9d", "task": "sem.psoft"}


def run_child(request: dict[str, object]) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, "-m", "actors.worker.process_child"],
        input=encode(request),
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    reply = decode(done.stdout, "application/msgpack")
    assert isinstance(reply, dict)
    return reply


def test_soft_limit_raises_inside_the_task() -> None:
    request = {"module": "tests.apps.semantics", "task": "sem.psoft", "message": MESSAGE}
    reply = run_child({**request, "soft": 0.3})
    assert isinstance(reply["result"], list) and reply["result"][0] == "cleaned up"


def test_without_a_soft_limit_errors_come_back_described() -> None:
    message = {**MESSAGE, "task": "sem.pboom"}
    request = {"module": "tests.apps.semantics", "task": "sem.pboom", "message": message}
    reply = run_child(request)
    error = reply["error"]
    assert isinstance(error, dict) and str(error["type"]).endswith("CustomError")
