"""The shipped deploy/ files: probes, hardening, image tag, stop timing, KEDA scaling."""

from __future__ import annotations

import re
from pathlib import Path

from actors.cli.processes import _STOP_MARGIN
from actors.config import Settings
from actors.wire import routing, topology

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
WORKER = (DEPLOY / "kubernetes" / "worker.yaml").read_text()


def test_the_watchdog_fires_before_any_supervisor_kills_the_worker() -> None:
    grace = max(
        Settings().shutdown_grace,
        *(float(g) for g in re.findall(r'ACTORS_SHUTDOWN_GRACE\s*\n?\s*value: "(\d+)"', WORKER)),
    )
    watchdog = grace + _STOP_MARGIN
    compose = (DEPLOY / "compose.yaml").read_text()
    worker_service = compose[compose.index("\n  worker:") :]
    stops = [
        *re.findall(r"terminationGracePeriodSeconds: (\d+)", WORKER),
        *re.findall(r"stop_grace_period: (\d+)s", worker_service),
        *(
            value
            for unit in (DEPLOY / "systemd").glob("*.service")
            for value in re.findall(r"^TimeoutStopSec=(\d+)$", unit.read_text(), re.MULTILINE)
        ),
    ]
    assert len(stops) >= 4
    assert all(float(stop) > watchdog for stop in stops), f"{stops} vs watchdog at {watchdog}"


def test_the_worker_pod_is_probed_hardened_and_pinned() -> None:
    assert "--health-port=8080" in WORKER and "containerPort: 8080" in WORKER
    assert "--metrics-port=9090" in WORKER and "containerPort: 9090" in WORKER
    assert re.search(r"livenessProbe:\n\s+httpGet: \{ path: /livez, port: health \}", WORKER)
    assert re.search(r"readinessProbe:\n\s+httpGet: \{ path: /readyz, port: health \}", WORKER)
    assert WORKER.count("seccompProfile: { type: RuntimeDefault }") == 2  # pod and container
    images = re.findall(r"^\s+image: (\S+)", WORKER, re.MULTILINE)
    assert images and all(":" in i and not i.endswith(":latest") for i in images), images
    compose = (DEPLOY / "compose.yaml").read_text()
    assert ":latest" not in compose


def test_keda_scales_the_worker_on_its_consumers_lag() -> None:
    keda = (DEPLOY / "kubernetes" / "keda.yaml").read_text()
    assert "kind: ScaledObject" in keda and "name: actors-worker # the Deployment" in keda
    assert "name: actors-worker\n" in WORKER
    triggers = keda.split("- type: ")[1:]
    assert triggers and all(t.startswith("nats-jetstream") for t in triggers)
    for trigger in triggers:
        assert f"stream: {topology.TASK_STREAM}\n" in trigger
        assert "lagThreshold:" in trigger and ":8222" in trigger
        consumer = re.search(r"consumer: (\S+)", trigger)
        assert consumer and consumer.group(1) in {
            routing.consumer_name("reports", band) for band in routing.BANDS
        }
