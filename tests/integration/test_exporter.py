"""``actors exporter``: queue lag per actor, dead letters and workers online, from NATS."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from actors import App
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.nats.server import EmbeddedServer
from actors.worker import dead_letters
from tests.apps.basic import register
from tests.conftest import ActorsProcess, free_port
from tests.helpers import eventually
from tests.integration.test_metrics_health import get, sample


def test_the_exporter_reports_lag_dead_letters_and_workers(
    make_app: Callable[..., App], nats_server: EmbeddedServer, tmp_path: Path
) -> None:
    port = free_port()
    exporter = ActorsProcess(
        ["exporter", "--port", str(port), "--host", "127.0.0.1", "--interval", "0.2"],
        nats_server.url,
        tmp_path / "exporter.log",
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        first = eventually(lambda: get(url), until=lambda a: a[0] == 200, what="the exporter")
        assert sample(first[1], "actors_workers_online") == 0  # no registry bucket yet

        app = make_app()
        tasks = register(app)
        for n in range(4):
            tasks["add"].delay(n, n)

        async def setup() -> None:
            broker = await Broker.connect(app.conf, "test")
            try:
                await dead_letters.dead_letter(
                    broker, subject="actors.task.basic.boom", data=b"x", headers={},
                    seq=1, reason="test", task="basic.boom",
                )  # fmt: skip
                await broker.streams.ensure_bucket("actors_workers")
                workers = Bucket(broker, "actors_workers")
                for key in ("1@a", "2@b", "3@c"):
                    await workers.put(key, b"{}")
                await workers.delete("3@c")
            finally:
                await broker.close()

        asyncio.run(setup())

        def scraped() -> str:
            return get(url)[1]

        text = eventually(
            scraped,
            until=lambda t: (
                sample(t, "actors_workers_online") == 2
                and sample(t, "actors_queue_lag", actor="basic.add") == 4
            ),
            what="lag and workers reported",
        )
        assert sample(text, "actors_dead_letters", actor="basic.boom") == 1
        assert sample(text, "actors_queue_in_flight", actor="basic.add") == 0
    finally:
        assert exporter.terminate() == 0, exporter.output()
        exporter.close()
