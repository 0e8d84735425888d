"""nats-server SIGKILL + restart while a worker runs 3,000 tasks: every result arrives, and few
task bodies run twice (at-least-once stays the contract; the figure is reported)."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import Any

import pytest

from actors import BrokerUnavailable
from actors.nats.server import EmbeddedServer
from tests.apps.canvas import register
from tests.helpers import aeventually

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(300)]

COUNT = 3000


def ran(path: Path) -> collections.Counter[int]:
    """How many times each task body ran (one line per run, appended with O_APPEND)."""
    text = path.read_text() if path.exists() else ""
    return collections.Counter(int(line.split()[-1]) for line in text.splitlines())


async def test_server_sigkill_during_3000_tasks(
    nats_server: EmbeddedServer, worker_process: Any, make_app: Any, tmp_path: Path
) -> None:
    worker = worker_process("tests.apps.canvas:app", "-c", "64", ACTORS_ACK_WAIT="3")
    app = make_app("client")
    record = register(app)["record"]
    runs = tmp_path / "runs"

    async def send(i: int) -> Any:
        # Across the restart: re-send with the same id (deploy.md).
        return await aeventually(
            lambda: record.aapply_async((i, str(runs), "r", 0.005), task_id=f"crash-{i}"),
            what=f"task {i} sent",
            timeout=60,
            interval=0.2,
            ignore=(BrokerUnavailable,),
        )

    results = []
    for start in range(0, COUNT, 500):
        results += await asyncio.gather(*(send(i) for i in range(start, start + 500)))
    await aeventually(
        lambda: sum(ran(runs).values()),
        until=lambda count: count >= COUNT // 3,
        what=lambda: f"a third of the tasks run:\n{worker.output()}",
        timeout=60,
        interval=0.05,
    )
    await asyncio.to_thread(nats_server.kill)
    await asyncio.sleep(1)  # downtime, as a crash and restart take; the results are awaited
    await asyncio.to_thread(nats_server.start)
    began = time.monotonic()
    values = await asyncio.gather(*(result.aget(timeout=180) for result in results))
    assert values == list(range(COUNT))
    counts = ran(runs)
    assert set(counts) == set(range(COUNT))
    duplicates = sum(n - 1 for n in counts.values())
    skipped = worker.count("task.already_done")
    print(
        f"\nserver SIGKILL+restart during {COUNT} tasks: {duplicates} ran twice, {skipped} "
        f"repeats skipped (results all in {time.monotonic() - began:.1f}s after the restart)"
    )
    assert worker.process.poll() is None
    # Before repeats of finished or running tasks were skipped: 37-64 here (127 in the issue's
    # run); after: 0 in every run measured.
    assert duplicates <= 16
