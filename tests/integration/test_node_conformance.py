"""The conformance fixtures run from Node.js (tests/node/conformance.mjs) against a Python worker.

One worker subprocess and one nats-server per fixture file; the Node runner checks every case
of the file and prints one line per case, so a failure names the cases that did not hold.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.apps.conformance import RUNS_FILE
from tests.integration.conformance import FIXTURES
from tests.integration.node_helper import node_command

pytestmark = pytest.mark.node

FILES = sorted(FIXTURES.glob("*.json"))


@pytest.mark.parametrize("fixture", FILES, ids=[path.stem for path in FILES])
def test_node_conformance(
    fixture: Path, nats_server: Any, worker_process: Any, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.log"
    worker_process(
        "tests.apps.conformance:app", ACTORS_UNROUTED_GRACE="1", **{RUNS_FILE: str(runs)}
    )
    cases = len(json.loads(fixture.read_text())["cases"])
    command = node_command("conformance.mjs")
    done = subprocess.run(
        [*command, "--url", nats_server.url, "--runs-file", str(runs), str(fixture)],
        capture_output=True,
        text=True,
        timeout=30 * cases,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    failed = [f"{line['case']}: {line['problem']}" for line in lines if not line["ok"]]
    assert not failed, "\n".join(failed)
    assert done.returncode == 0, done.stderr
    assert len(lines) == cases, done.stderr
