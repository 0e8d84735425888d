"""The wire protocol from another language: a Node.js client written from docs/protocol.md alone.

``tests/node/client.mjs`` publishes a task message (JSON or msgpack) and waits for the result
record in the ``actors_results`` bucket; a Python worker subprocess runs the task.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest

from actors.wire.message import parse_time
from tests.integration.node_helper import node_command

pytestmark = pytest.mark.node


@pytest.fixture(scope="session")
def node_client() -> list[str]:
    """The command that runs the Node client; installs its npm dependencies once if missing."""
    return node_command("client.mjs")


def run_client(
    command: list[str], url: str, task: str, arguments: list[str], options: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Run the Node client (``arguments``: ARGS_JSON [KWARGS_JSON]); return the printed record."""
    done = subprocess.run(
        [*command, "--url", url, "--timeout", "30", *options, task, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"node client exited {done.returncode}:\n{done.stderr}"
    record: dict[str, Any] = json.loads(done.stdout)
    return record


@pytest.mark.parametrize(
    ("content_type", "arguments"),
    [("json", ["[2, 2]"]), ("msgpack", ["[2]", '{"y": 2}'])],
)
def test_node_client_runs_a_task_and_reads_success(
    node_client: list[str],
    nats_server: Any,
    worker_process: Any,
    content_type: str,
    arguments: list[str],
) -> None:
    worker_process("tests.apps.basic:app")
    task_id = f"node-{uuid.uuid4()}"
    options = ("--content-type", content_type, "--id", task_id)
    record = run_client(node_client, nats_server.url, "basic.add", arguments, options)
    assert record["status"] == "SUCCESS"
    assert record["result"] == 4
    assert record["id"] == task_id
    assert record["task"] == "basic.add"
    assert record["v"] == 1
    assert parse_time(record["date_done"]).utcoffset() is not None
    assert "error" not in record


def test_node_client_reads_a_failure(
    node_client: list[str], nats_server: Any, worker_process: Any
) -> None:
    worker_process("tests.apps.basic:app")
    record = run_client(node_client, nats_server.url, "basic.boom", ['["kaput"]'])
    assert record["status"] == "FAILURE"
    assert record["error"]["type"] == "tests.apps.basic.CustomError"
    assert record["error"]["message"] == "kaput"
    assert record["error"]["args"] == ["kaput"]
    assert "CustomError: kaput" in record["traceback"]
    assert "result" not in record


def test_node_client_sends_to_a_named_queue_with_a_priority(
    node_client: list[str], nats_server: Any, worker_process: Any
) -> None:
    proc = worker_process("tests.apps.basic:app", "-Q", "fast")
    options = ("--queue", "fast", "--priority", "9")
    record = run_client(node_client, nats_server.url, "basic.ctx", ["[1]"], options)
    assert record["status"] == "SUCCESS", record
    assert record["result"]["subject"] == "actors.queue.fast.high.basic.ctx"
    assert proc.count("task.succeeded") == 1
