"""The embedded default: `actors run` starts a local nats-server when none is reachable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors import App
from actors.cli.loading import reachable
from actors.nats.server import EmbeddedServer
from tests.apps.basic import register
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = "nats://127.0.0.1:4222"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(reachable(DEFAULT), reason="something already listens on 127.0.0.1:4222")
def test_run_starts_and_stops_an_embedded_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTORS_")}
    env["PYTHONPATH"] = str(ROOT)
    log_file = tmp_path / "worker.log"
    with log_file.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "actors", "run", "tests.apps.basic:app", "--log-format", "json"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def worker_started() -> bool:
            assert proc.poll() is None, log_file.read_text()
            return '"worker.started"' in log_file.read_text()

        eventually(
            worker_started, what=lambda: f"worker.started:\n{log_file.read_text()}", timeout=20
        )
        events = [json.loads(line) for line in log_file.read_text().splitlines()]
        started = next(e for e in events if e["event"] == "server.embedded_started")
        assert started["url"] == DEFAULT
        assert Path(started["store_dir"]) == (tmp_path / ".actors" / "nats").resolve()
        server_pids = subprocess.run(
            ["pgrep", "-P", str(proc.pid), "nats-server"], capture_output=True, text=True
        ).stdout.split()
        assert len(server_pids) == 1

        app = App("client", nats_url=DEFAULT)
        try:
            assert register(app)["add"].delay(2, 2).get(timeout=10) == 4
        finally:
            app.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        eventually(lambda: not pid_alive(int(server_pids[0])), what="the embedded server to exit")
        assert not reachable(DEFAULT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_configured_url_is_used_without_embedding(
    nats_server: EmbeddedServer, worker_process
) -> None:
    proc = worker_process("tests.apps.basic:app")
    assert proc.count("server.embedded_started") == 0
    banner = next(e for e in proc.events() if e["event"] == "worker.started")
    assert banner["nats"] == nats_server.url


def test_server_command_runs_in_the_foreground(tmp_path: Path) -> None:
    from tests.conftest import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "actors",
            "server",
            "--port",
            str(port),
            "--store-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def listening() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return reachable(f"nats://127.0.0.1:{port}")

        eventually(listening, what=f"the server on port {port}", timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert not reachable(f"nats://127.0.0.1:{port}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
