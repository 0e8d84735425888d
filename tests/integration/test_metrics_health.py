"""``actors run --metrics-port/--health-port``: Prometheus metrics and the probes."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from actors import App
from actors.nats.server import EmbeddedServer
from actors.worker.health import serve_endpoints
from tests.apps.basic import register
from tests.conftest import free_port
from tests.helpers import aeventually, eventually
from tests.integration.cli_helper import actors_cli


def get(url: str) -> tuple[int, str]:
    """Status and body of a GET; connection errors count as status 0."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, repr(exc)


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_the_tasks_and_the_probes_answer(
    app: App, worker_process: Callable[..., Any]
) -> None:
    metrics_port, health_port = free_port(), free_port()
    worker_process(
        "tests.apps.basic:app",
        "--metrics-port", str(metrics_port),
        "--health-port", str(health_port),
        "--http-host", "127.0.0.1",
    )  # fmt: skip
    tasks = register(app)
    results = [tasks["add"].delay(n, 1) for n in range(3)]
    failed = tasks["boom"].delay("no")
    assert [r.get(timeout=20) for r in results] == [1, 2, 3]
    failed.get(timeout=20, propagate=False)

    base = f"http://127.0.0.1:{metrics_port}/metrics"

    def scraped() -> str:
        return get(base)[1]

    text = eventually(
        scraped,
        until=lambda t: sample(t, "actors_tasks_total", actor="basic.boom", outcome="failed"),
        what="the failed task counted",
    )
    assert sample(text, "actors_tasks_total", actor="basic.add", outcome="succeeded") == 3
    assert sample(text, "actors_task_runtime_seconds_count", actor="basic.add") == 3
    [consumer] = re.findall(r'actors_pull_loop_up\{consumer="(q~default~normal~\w+)"', text)
    assert sample(text, "actors_pull_loop_up", consumer=consumer) == 1
    assert sample(text, "actors_nats_connected") == 1
    assert sample(text, "actors_worker_processed") == 4
    assert "actors_tasks_in_flight" in text

    assert get(f"http://127.0.0.1:{health_port}/livez") == (200, "ok\n")
    assert get(f"http://127.0.0.1:{health_port}/readyz") == (200, "ok\n")
    assert get(f"http://127.0.0.1:{health_port}/nope")[0] == 404


async def test_livez_fails_when_nats_is_gone_past_max_disconnected(
    make_app: Callable[..., App], nats_server: EmbeddedServer, worker: Callable[..., Any]
) -> None:
    app = make_app(max_disconnected=1.0)
    register(app)
    running = await worker(app)
    [endpoints] = await serve_endpoints(running, "127.0.0.1", None, 0)
    url = f"http://127.0.0.1:{endpoints.port}"
    try:
        assert await asyncio.to_thread(get, url + "/livez") == (200, "ok\n")
        nats_server.stop()

        async def livez() -> tuple[int, str]:
            return await asyncio.to_thread(get, url + "/livez")

        _, reason = await aeventually(
            livez, until=lambda answer: answer[0] == 503, what="/livez failing", timeout=15
        )
        assert "connection to NATS lost" in reason and "max_disconnected=1s" in reason
        ready = await asyncio.to_thread(get, url + "/readyz")
        assert ready[0] == 503
    finally:
        await endpoints.stop()
        # Broker.close raises on a connection that is down: let the fixture close a live one.
        await asyncio.to_thread(nats_server.start)
        await aeventually(lambda: running.broker.connected, what="a reconnect", timeout=15)


def test_a_port_in_use_is_one_clear_error(nats_server: EmbeddedServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = actors_cli(
            "run", "tests.apps.basic:app", "--health-port", str(port), "--http-host",
            "127.0.0.1", "--nats-url", nats_server.url, "--log-format", "json",
        )  # fmt: skip
    assert outcome.returncode == 2, outcome.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in outcome.stderr
    assert "Traceback" not in outcome.stderr
