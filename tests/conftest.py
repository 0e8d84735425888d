"""Shared fixtures: a real nats-server per test, apps bound to it, and workers.

Workers come in three kinds: ``worker`` runs in the test's own event loop (async tests),
``thread_worker`` runs on a loop in a background thread (sync tests using the sync facade),
and ``worker_process`` runs ``actors run`` as a real subprocess (signals, crashes).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import App, current
from actors.nats.server import EmbeddedServer
from actors.worker import Worker
from tests.cluster import Cluster, build_cluster
from tests.helpers import eventually

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A real nats-server with JetStream on a free loopback port; stop/kill/restart at will."""
    server = EmbeddedServer(tmp_path / "nats")
    server.start()
    yield server
    close_apps_of(server.url)
    server.stop()


def close_apps_of(url: str) -> None:
    """Close every App of this process still pointed at ``url`` (module-level test apps
    too), while its server still runs: a sync client left open would reconnect to the
    stopped server for the rest of the session and log ``nats.error`` lines into later
    tests' captured output."""
    for app in list(current._apps):
        if app.conf.nats_url == url:
            app.close()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Three nats-servers from the shipped configs, on loopback, with a JetStream meta leader."""
    cluster = build_cluster(tmp_path)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def make_app(nats_server: EmbeddedServer) -> Iterator[Callable[..., App]]:
    """Build Apps pointed at the test's server; each is closed at teardown."""
    apps: list[App] = []

    def make(name: str = "test", **conf: Any) -> App:
        conf.setdefault("nats_url", nats_server.url)
        app = App(name, **conf)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    """An empty App on the test's server."""
    return make_app()


@pytest.fixture
async def worker() -> AsyncIterator[Callable[..., Any]]:
    """Start in-loop workers: ``await worker(app, concurrency=8)``; stopped at teardown."""
    started: list[Worker] = []

    async def start(app: App, **options: Any) -> Worker:
        instance = Worker(app, **options)
        await instance.start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        await instance.stop(grace=5)


class ThreadWorker:
    """A Worker on its own event loop in a background thread."""

    def __init__(self, app: App, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.worker = Worker(app, **options)
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise TimeoutError("worker thread did not start")
        if self._error:
            raise self._error

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            try:
                await self.worker.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            await self.worker.stop(grace=5)

        self.loop.run_until_complete(main())

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)


@pytest.fixture
def thread_worker() -> Iterator[Callable[..., ThreadWorker]]:
    """Start workers in background threads: ``thread_worker(app)``; stopped at teardown."""
    started: list[ThreadWorker] = []

    def start(app: App, **options: Any) -> ThreadWorker:
        instance = ThreadWorker(app, **options)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


class ActorsProcess:
    """``python -m actors ARGS`` in a subprocess, with its JSON logs captured to a file."""

    def __init__(self, args: list[str], url: str, log_file: Path, **env: str) -> None:
        self.log_file = log_file
        environment = {**os.environ, "ACTORS_NATS_URL": url, **env}
        environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")])
        self._out = log_file.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "actors", *args, "--log-format", "json"],
            env=environment,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Logged events so far (only those named ``name`` if given)."""
        out = []
        for line in self.log_file.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                out.append(event)
        return out

    def count(self, event: str) -> int:
        return len(self.events(event))

    def wait_for_event(self, event: str, count: int = 1, timeout: float = 20) -> None:
        """Wait until ``event`` was logged ``count`` times; fail early if the process exits."""

        def logged() -> int:
            exited = self.process.poll() is not None
            seen = self.count(event)  # read after poll(): all it logged before exiting counts
            if seen < count and exited:
                raise RuntimeError(f"process exited {self.process.returncode}:\n{self.output()}")
            return seen

        eventually(
            logged,
            until=lambda seen: seen >= count,
            what=lambda: f"{count}x {event!r} logged:\n{self.output()}",
            timeout=timeout,
            interval=0.05,
        )

    def output(self) -> str:
        return self.log_file.read_text()[-5000:]

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._out.close()


class WorkerProcess(ActorsProcess):
    """``actors run APP ARGS``, returned once the worker has started."""

    def __init__(self, app_path: str, url: str, log_file: Path, *args: str, **env: str) -> None:
        super().__init__(["run", app_path, *args], url, log_file, **env)
        self.wait_for_event("worker.started", count=1, timeout=20)


@pytest.fixture
def worker_process(
    nats_server: EmbeddedServer, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``actors run APP`` subprocesses against the test's server; killed at teardown."""
    started: list[WorkerProcess] = []

    def start(app_path: str, *args: str, **env: str) -> WorkerProcess:
        log_file = tmp_path / f"worker-{len(started)}.log"
        instance = WorkerProcess(app_path, nats_server.url, log_file, *args, **env)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.close()
