"""Helpers shared by bench scripts: a server and worker processes to measure against."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nats.js import JetStreamContext

from actors.cli.loading import reachable
from actors.nats.server import EmbeddedServer

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def nats_url() -> Iterator[str]:
    """ACTORS_NATS_URL if set, else a fresh embedded server in a temp dir."""
    url = os.environ.get("ACTORS_NATS_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory() as tmp, EmbeddedServer(Path(tmp)) as server:
        os.environ["BENCH_NATS_PID"] = str(server.pid)
        try:
            yield server.url
        finally:
            del os.environ["BENCH_NATS_PID"]


def server_pid() -> int | None:
    """The embedded nats-server's pid while :func:`nats_url` runs one."""
    pid = os.environ.get("BENCH_NATS_PID")
    return int(pid) if pid else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def worker_processes(
    url: str, app: str, count: int = 1, *args: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run ``count`` ``actors run`` processes (warning-level logs) while the block runs."""
    env = {**os.environ, "ACTORS_NATS_URL": url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "actors", "run", app, "--log-level", "warning", *args]
    procs = [subprocess.Popen(command, env=env, cwd=ROOT) for _ in range(count)]
    try:
        time.sleep(1.0)  # bench only: let workers connect before timing starts
        assert reachable(url)
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def percentile(values: list[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of the sorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def stored_for(js: JetStreamContext, task: str) -> int:
    """Messages of ``task`` still stored in the task stream on any queue: work-queue retention
    removes a message when it is acked, so 0 means every one was acked."""
    info = await js.stream_info("ACTORS", subjects_filter="actors.>")
    subjects = info.state.subjects or {}
    return sum(n for subject, n in subjects.items() if subject.endswith(f".{task}"))
