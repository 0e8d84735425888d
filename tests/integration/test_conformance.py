"""The conformance fixtures (tests/conformance/*.json) against an in-process Python worker.

Each case gets its own nats-server and worker (``unrouted_grace`` 1 s, as the fixtures'
README asks), publishes raw bytes with the given headers, and checks the expected outcome.
Afterwards the worker must still serve a plain task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors import App
from tests.apps.conformance import RUNS_FILE, register
from tests.integration.conformance import load_cases, run_case

CASES = load_cases()


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[name for name, _ in CASES])
async def test_conformance_case(
    case: dict[str, Any],
    nats_server: Any,
    make_app: Any,
    worker: Any,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    runs = tmp_path / "runs.log"
    monkeypatch.setenv(RUNS_FILE, str(runs))
    app: App = make_app(unrouted_grace=1.0)
    tasks = register(app)
    await worker(app)
    await run_case(case, nats_server.url, runs)
    assert await (await tasks["add"].adelay(20, 22)).aget(timeout=10) == 42
