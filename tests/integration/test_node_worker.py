"""The wire protocol from another language: a Node.js worker written from docs/protocol.md alone.

``tests/node/worker.mjs`` serves ``node.add`` and ``node.echo`` next to a Python worker
serving ``tests.apps.conformance``: a Python client gets results from the Node worker, and
chain steps cross between the two with the same derived ids (the UUID5 rule of the doc).
"""

from __future__ import annotations

import json
import selectors
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import nats
import pytest

from actors import App
from actors.canvas import chain, signature
from actors.wire.ids import derived_id
from tests.integration.node_helper import node_command

pytestmark = pytest.mark.node


@pytest.fixture
def node_worker(nats_server: Any, worker_process: Any) -> Iterator[Callable[[], None]]:
    """Start the Node worker (after a Python worker, which creates the streams and buckets)."""
    worker_process("tests.apps.conformance:app")
    command = node_command("worker.mjs")
    process = subprocess.Popen(
        [*command, "--url", nats_server.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=30) and process.stdout.readline().strip() == "ready"
        if not ready:
            process.kill()
            _, errors = process.communicate(timeout=10)
            pytest.fail(f"the Node worker did not start:\n{errors}")
        yield lambda: None
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_python_client_gets_a_result_from_the_node_worker(
    node_worker: Any, make_app: Callable[..., App]
) -> None:
    app = make_app()
    assert signature("node.add", app=app).delay(2, 3).get(timeout=15) == 5
    assert app.send_task("node.echo", ("a", [1])).get(timeout=15) == ["a", [1]]


def test_python_chain_runs_across_node_and_python(
    node_worker: Any, make_app: Callable[..., App]
) -> None:
    app = make_app()
    steps = chain(
        signature("node.add", (1, 2), app=app),
        signature("conformance.add", (10,), app=app),
        signature("node.add", (100,), app=app),
    )
    assert steps.apply_async().get(timeout=15) == 113


async def publish(url: str, subject: str, body: dict[str, Any]) -> None:
    nc = await nats.connect(url)
    try:
        headers = {"Nats-Msg-Id": body["id"], "Content-Type": "application/json"}
        await nc.jetstream().publish(subject, json.dumps(body).encode(), headers=headers)
    finally:
        await nc.close()


def step(task: str, *args: Any) -> dict[str, Any]:
    return {"task": task, "args": list(args), "kwargs": {}, "options": {}, "immutable": False}


async def test_derived_ids_agree_between_node_and_python(
    node_worker: Any, nats_server: Any, make_app: Callable[..., App]
) -> None:
    app = make_app()
    # Node runs the first step and derives the ids of its link and the next (Python) step.
    first = f"node-first-{uuid.uuid4()}"
    body = {
        "v": 1,
        "id": first,
        "task": "node.add",
        "args": [1, 2],
        "kwargs": {},
        "link": [step("conformance.add", 1000)],
        "chain": [step("conformance.add", 10), step("node.add", 100)],
    }
    await publish(nats_server.url, "actors.task.node.add", body)
    after_node = derived_id(f"{first}.next")
    assert await app.AsyncResult(after_node).aget(timeout=15) == 13
    assert await app.AsyncResult(derived_id(f"{first}.link.0")).aget(timeout=15) == 1003
    # Python ran the second step and derived the id of the third (Node) one.
    assert await app.AsyncResult(derived_id(f"{after_node}.next")).aget(timeout=15) == 113
