"""actors on a real three-node cluster (tests/cluster.py) built from the shipped configs: the
config shape forms a JetStream cluster, actors runs on it with R3 streams, and survives losing
a node."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import subprocess
import textwrap
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from actors import App, BrokerUnavailable
from actors.config import Settings
from actors.nats.server import find_nats_server
from actors.worker import Worker
from tests.apps.basic import register
from tests.cluster import CONFIGS, NAMES, ROOT, STREAMS, Cluster, Node
from tests.helpers import aeventually


@contextlib.asynccontextmanager
async def served(cluster: Cluster, **conf: Any) -> AsyncIterator[tuple[App, Worker]]:
    """A client App and an in-loop Worker (its own App and connection) on the cluster, R3."""
    conf = {"nats_url": cluster.url, "stream_replicas": 3, **conf}
    worker_app = App("cluster-worker", **conf)
    register(worker_app)
    client = App("cluster-client", **conf)
    register(client)
    worker = Worker(worker_app, concurrency=16)
    await worker.start()
    try:
        yield client, worker
    finally:
        await worker.stop(grace=5)
        await client.aclose()


async def stream_infos(url: str) -> dict[str, Any]:
    nc = await nats.connect(url.split(","), connect_timeout=5)
    try:
        js = nc.jetstream(timeout=5)
        return {name: await js.stream_info(name) for name in STREAMS}
    finally:
        await nc.close()


async def settled_stream_infos(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """Stream infos once every replica has caught up."""

    def lagging(infos: dict[str, Any]) -> list[str]:
        return [
            f"{name}:{r.name}"
            for name, info in infos.items()
            for r in info.cluster.replicas or []
            if not r.current
        ]

    return await aeventually(
        lambda: stream_infos(url),
        until=lambda infos: not lagging(infos),
        what="every stream replica to be current",
        timeout=timeout,
        interval=0.2,
    )


async def healthy(node: Node, query: str, timeout: float = 10.0) -> None:
    """Poll the node's ``/healthz`` until it answers ok."""
    url = f"http://127.0.0.1:{node.http_port}/healthz{query}"

    def answer() -> Any:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())

    await aeventually(
        answer,
        until=lambda status: status == {"status": "ok"},
        what=f"{node.name} /healthz{query} to be ok",
        timeout=timeout,
        interval=0.2,
        ignore=(OSError,),  # HTTPError (503 while not current) is an OSError
    )


def test_shipped_configs_differ_only_in_server_name() -> None:
    shapes = set()
    for number, name in enumerate(NAMES, start=1):
        text = (CONFIGS / f"{name}.conf").read_text()
        own = (f"server_name: {name}\n", f"# NATS node {number} of 3")
        for line in own:
            assert text.count(line) == 1, f"{name}.conf: expected {line!r} once"
            text = text.replace(line, "<own>")
        shapes.add(text)
    assert len(shapes) == 1, "the node configs differ in more than their own name"


def _seconds(pattern: str, path: Path) -> list[float]:
    found = re.findall(pattern, path.read_text(), flags=re.MULTILINE)
    assert found, f"no {pattern!r} in {path}"
    return [float(value) for value in found]


def test_stop_timeouts_outlast_the_shutdown_grace() -> None:
    """Every shipped way of stopping a worker waits longer than it drains, then kills."""
    deploy = ROOT / "deploy"
    grace = {Settings().shutdown_grace}
    for path in (deploy / "compose.yaml", deploy / "kubernetes" / "worker.yaml"):
        grace.update(_seconds(r'ACTORS_SHUTDOWN_GRACE[:\s]+(?:value:\s*)?"(\d+)"', path))
    worst = max(grace)
    stops = [
        *_seconds(r"^\s+terminationGracePeriodSeconds: (\d+)$", deploy / "kubernetes/worker.yaml"),
        *_seconds(r"^\s+stop_grace_period: (\d+)s$", deploy / "compose.yaml"),
    ]
    for unit in (deploy / "systemd").glob("*.service"):
        text = unit.read_text()
        assert "KillSignal=SIGTERM" in text and "Restart=on-failure" in text, unit.name
        assert "EnvironmentFile=" in text, unit.name
        stops += _seconds(r"^TimeoutStopSec=(\d+)$", unit)
    assert len(stops) >= 4
    assert all(stop > worst for stop in stops), f"{stops} vs shutdown_grace {worst}"


def test_kubernetes_nats_config_is_accepted_by_nats_server(tmp_path: Path) -> None:
    manifest = (ROOT / "deploy" / "kubernetes" / "nats.yaml").read_text()
    block = re.search(r"^  nats\.conf: \|\n((?:    .*\n|\n)+)", manifest, re.MULTILINE)
    assert block, "no nats.conf in the ConfigMap"
    config = tmp_path / "nats.conf"
    config.write_text(textwrap.dedent(block.group(1)))
    check = subprocess.run(
        [str(find_nats_server()), "-t", "-c", str(config)],
        env={"POD_NAME": "nats-0"},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert check.returncode == 0, check.stderr
    assert "server_name: $POD_NAME" in config.read_text()


async def test_tasks_round_trip_on_r3_streams(nats_cluster: Cluster) -> None:
    async with served(nats_cluster) as (client, _worker):
        add = client.registry["basic.add"]
        results = [await add.adelay(i, i) for i in range(50)]
        assert [await r.aget(timeout=20) for r in results] == [2 * i for i in range(50)]
        delayed = await add.aapply_async((2, 3), countdown=0.5)  # sourced into R3 ACTORS
        assert await delayed.aget(timeout=20) == 5

    for node in nats_cluster.nodes:  # what the compose healthcheck and Kubernetes probes ask
        for query in ("", "?js-enabled-only=true"):
            await healthy(node, query)

    infos = await settled_stream_infos(nats_cluster.url)
    for name, info in infos.items():
        assert info.config.num_replicas == 3, name
        peers = {info.cluster.leader} | {r.name for r in info.cluster.replicas or []}
        assert peers == set(NAMES), f"{name} is placed on {peers}"
        assert all(r.current for r in info.cluster.replicas), f"{name} replicas lag"


async def test_a_process_with_fewer_replicas_does_not_scale_streams_down(
    nats_cluster: Cluster,
) -> None:
    async with served(nats_cluster):
        pass  # the worker created the R3 topology
    careless = App("careless", nats_url=nats_cluster.url, stream_replicas=1)
    try:
        await careless.client.connection()
    finally:
        await careless.aclose()
    infos = await stream_infos(nats_cluster.url)
    assert {name: info.config.num_replicas for name, info in infos.items()} == dict.fromkeys(
        STREAMS, 3
    )


@pytest.mark.slow
@pytest.mark.chaos
@pytest.mark.timeout(180)
@pytest.mark.parametrize("victim", ["worker's server", "ACTORS stream leader"])
async def test_tasks_survive_killing_a_node(nats_cluster: Cluster, victim: str) -> None:
    total, kill_at = 300, 100
    async with served(nats_cluster, ack_wait=5.0, publish_timeout=5.0) as (client, worker):
        add = client.registry["basic.add"]
        assert await (await add.adelay(1, 1)).aget(timeout=20) == 2
        if victim == "worker's server":
            node = nats_cluster.node_at(str(worker.broker.nc.connected_url.geturl()))
        else:
            info = await worker.broker.js.stream_info("ACTORS")
            node = nats_cluster.node(info.cluster.leader)

        attempts = 0

        def send(i: int) -> Any:
            nonlocal attempts
            attempts += 1
            # The same task id is the same Nats-Msg-Id: a publish that did reach the stream
            # before its ack was lost is stored once.
            return add.aapply_async((i, 1), task_id=f"failover-{i}")

        results = []
        began = time.monotonic()
        for i in range(total):
            if i == kill_at:
                node.kill()
                killed_at = time.monotonic()
            sent_one = await aeventually(
                functools.partial(send, i),
                what=f"failover-{i} sent",
                timeout=30,
                interval=0.2,
                ignore=(BrokerUnavailable,),
            )
            results.append(sent_one)
            await asyncio.sleep(0.005)
        sent = time.monotonic()
        retries = attempts - total
        values = [await r.aget(timeout=60) for r in results]
        done = time.monotonic()
        info = await worker.broker.js.stream_info("ACTORS")
        assert info.cluster.leader in set(NAMES) - {node.name}

    assert values == [i + 1 for i in range(total)]
    print(
        f"\nkilled {node.name} ({victim}) after {killed_at - began:.1f}s; "
        f"send retries {retries}; all sent after {sent - began:.1f}s; "
        f"all {total} results after {done - began:.1f}s ({done - killed_at:.1f}s after the kill)"
    )
