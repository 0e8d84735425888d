"""The role permission sets of deploy/nats/permissions.conf against a real nats-server.

The server runs deploy/nats/auth.conf and its include as shipped, less the store_dir line
(EmbeddedServer passes -sd; its -a/-p override the listen line), with the role passwords in
its environment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from structlog.testing import capture_logs

from actors import App, BrokerUnavailable, chord
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.nats.server import EmbeddedServer
from actors.wire import control, topology
from schedulers import Beat
from tests.apps.canvas import register
from tests.conftest import ROOT
from tests.helpers import aeventually
from tests.monitor_process import Monitor

ROLES = ("client", "worker", "beat", "operator")
DEPLOY = ROOT / "deploy" / "nats"


def password(role: str) -> str:
    return f"pw-{role}-9f3"


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedServer]:
    for role in ROLES:
        monkeypatch.setenv(f"ACTORS_{role.upper()}_PASSWORD", password(role))
    # Not ACTORS_MONITOR_PASSWORD: that is the monitor's own basic-auth password.
    monkeypatch.setenv("ACTORS_MONITOR_NATS_PASSWORD", password("monitor"))
    conf = tmp_path / "auth.conf"
    shipped = (DEPLOY / "auth.conf").read_text()
    conf.write_text("\n".join(x for x in shipped.splitlines() if "store_dir" not in x))
    (tmp_path / "permissions.conf").write_text((DEPLOY / "permissions.conf").read_text())
    server = EmbeddedServer(tmp_path / "nats", extra_args=("-c", str(conf)))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def role_app(secured: EmbeddedServer) -> Iterator[Callable[[str], tuple[App, dict[str, Any]]]]:
    """An App logged in as ``role``, and the canvas actors registered on it."""
    apps: list[App] = []

    def make(role: str, **conf: Any) -> tuple[App, dict[str, Any]]:
        app = App(
            "perm", nats_url=secured.url, nats_user=role, nats_password=password(role), **conf
        )
        apps.append(app)
        tasks = register(app)

        @app.actor(name="perm.flaky", bind=True, max_retries=3, rate_limit="100/s")
        def flaky(self: Any) -> int:
            if self.request.retries == 0:
                raise self.retry(countdown=0.3)  # the worker publishes a schedule
            return int(self.request.retries)

        tasks["flaky"] = flaky
        return app, tasks

    yield make
    for app in apps:
        app.close()


class RawClient:
    """A plain nats-py connection as ``role``, recording the permission errors it gets."""

    def __init__(self, url: str, role: str) -> None:
        self.url = url
        self.role = role
        self.errors: list[str] = []
        self.nc: Any = None

    async def __aenter__(self) -> RawClient:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(
            self.url, user=self.role, password=password(self.role), error_cb=on_error
        )
        self.js = self.nc.jetstream(timeout=1.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()

    async def refused(self, subject: str, attempt: Callable[[], Any]) -> None:
        """``attempt`` fails, and the server reports a permission violation on ``subject``."""
        with pytest.raises((nats.errors.Error, nats.js.errors.Error, TimeoutError)):
            await attempt()
        wanted = f'violation for publish to "{subject.lower()}"'
        await aeventually(
            lambda: self.errors,
            until=lambda errors: any(wanted in e.lower() for e in errors),
            what=f"a permission violation for {subject}",
            timeout=5,
        )


async def test_worker_and_client_roles_run_tasks_end_to_end(
    role_app, worker, secured: EmbeddedServer
) -> None:
    with capture_logs() as logs:
        await worker(role_app("worker", unrouted_grace=0.5)[0])
        client, tasks = role_app("client")
        started = time.monotonic()
        await client.client.connection()  # streams exist: looked up only, no permission to wait out
        assert time.monotonic() - started < 2
        add, tsum = tasks["add"], tasks["tsum"]
        assert await (await add.adelay(2, 3)).aget(timeout=10) == 5
        sent = time.monotonic()
        assert await (await add.aapply_async((4, 4), countdown=1)).aget(timeout=10) == 8
        assert time.monotonic() - sent >= 0.9
        result = await chord((add.s(i, i) for i in range(5)), tsum.s()).aapply_async()
        assert await result.aget(timeout=15) == 20
        assert await (await tasks["flaky"].adelay()).aget(timeout=10) == 1  # delayed retry
        # Dead letters: a malformed message, and one on a subject no actor serves.
        async with RawClient(secured.url, "client") as raw:
            await raw.js.publish(topology.task_subject("canvas.add"), b"\xc1")
            await raw.js.publish(topology.task_subject("perm.nobody"), b"\xc1")
        operator = await Broker.connect(role_app("operator")[0].conf)

        async def dead() -> int:
            return int((await operator.js.stream_info(topology.DEAD_STREAM)).state.messages)

        await aeventually(dead, until=lambda n: n >= 2, what="2 dead letters", timeout=15)
        assert (await operator.js.stream_info(topology.TASK_STREAM)).state.messages == 0
        await operator.close()
    assert not [log for log in logs if "violation" in str(log).lower()]


async def test_a_client_on_a_server_without_streams_fails_clearly(secured) -> None:
    app = App(
        "perm",
        nats_url=secured.url,
        nats_user="client",
        nats_password=password("client"),
        publish_timeout=1.0,
    )
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="start a worker"):
        await app.client.connection()
    assert time.monotonic() - started < 5
    await app.aclose()


async def test_a_client_cannot_delete_purge_or_write_results(
    role_app, worker, secured: EmbeddedServer
) -> None:
    running = await worker(role_app("worker")[0])
    add = role_app("client")[1]["add"]
    done = await add.adelay(1, 1)
    assert await done.aget(timeout=10) == 2
    await running.stop(grace=5)
    for i in range(3):
        await add.adelay(i, i)  # queued: no worker runs them now

    operator = await Broker.connect(role_app("operator")[0].conf)
    results = Bucket(operator, topology.RESULTS_BUCKET)
    record = await results.get(done.id)
    assert record is not None

    async with RawClient(secured.url, "client") as raw:
        seq = (await raw.js.stream_info(topology.TASK_STREAM)).state.first_seq
        api = "$JS.API.STREAM."
        await raw.refused(api + "DELETE.ACTORS", lambda: raw.js.delete_stream("ACTORS"))
        await raw.refused(api + "PURGE.ACTORS", lambda: raw.js.purge_stream("ACTORS"))
        await raw.refused(api + "MSG.DELETE.ACTORS", lambda: raw.js.delete_msg("ACTORS", seq))
        await raw.refused(
            api + "UPDATE.ACTORS",
            lambda: raw.js.update_stream(name="ACTORS", subjects=["actors.task.>"]),
        )
        key = topology.result_subject(done.id)
        await raw.refused(key, lambda: raw.js.publish(key, b"forged", timeout=1.0))

    info = await operator.js.stream_info(topology.TASK_STREAM)
    assert info.state.messages == 3
    assert await results.get(done.id) == record
    await operator.close()


async def test_the_operator_role_can_purge(role_app) -> None:
    add = role_app("client")[1]["add"]
    operator = await Broker.connect(role_app("operator")[0].conf)
    await operator.streams.ensure_topology()
    for i in range(3):
        await add.adelay(i, i)
    assert (await operator.js.stream_info(topology.TASK_STREAM)).state.messages == 3
    await operator.streams.purge(topology.TASK_STREAM)
    assert (await operator.js.stream_info(topology.TASK_STREAM)).state.messages == 0
    await operator.close()


@pytest.mark.parametrize("role", ["beat", "worker"])
async def test_beat_runs_as_the_beat_or_the_worker_role(role_app, worker, role: str) -> None:
    await worker(role_app("worker")[0])
    app, _ = role_app(role)
    app.conf.beat_schedule = {"fast": {"task": "canvas.add", "schedule": 0.5, "args": [1, 2]}}
    with capture_logs() as logs:
        beat = Beat(app)
        await beat.start()
        try:
            await aeventually(
                lambda: beat.published, until=lambda n: n >= 2, what="2 ticks published"
            )
        finally:
            await beat.stop()
    assert not [log for log in logs if "violation" in str(log).lower()]


async def test_a_client_may_inspect_workers_but_not_change_or_stop_them(
    role_app, worker, secured: EmbeddedServer
) -> None:
    running = await worker(role_app("worker")[0])
    shutdowns: list[str] = []
    running.remote_control.on_shutdown = lambda: shutdowns.append("shutdown")
    me = running.hostname
    client = role_app("client")[0]
    with capture_logs() as logs:
        assert await client.control.aping(timeout=5.0, destination=me) == [{me: {"ok": "pong"}}]
        inspect = client.control.inspect(timeout=0.5)
        assert (await inspect.aactive()) == {me: []}
        assert (await inspect.ascheduled()) == {me: []}  # the worker may read the schedules
        assert "canvas.add" in ((await inspect.aregistered()) or {})[me]
        # Refused by the server: no worker hears them, so none replies.
        assert await client.control.ashutdown(timeout=0.5) == []
        assert await client.control.ashutdown(destination=me, timeout=0.5) == []
        assert await client.control.arate_limit("canvas.add", "1/m", timeout=0.5) == []
        assert await client.control.atime_limit("canvas.add", 1, 2, timeout=0.5) == []
        assert await client.control.acancel_consumer("canvas.add", timeout=0.5) == []
    assert shutdowns == []
    assert running.app.get_actor("canvas.add").options.rate_limit is None
    violations = [str(log) for log in logs if "violation" in str(log).lower()]
    assert violations, "the client's refused requests are logged"
    # Only the client's: the worker may subscribe, reply and read the schedules.
    assert all(any(c in v for c in control.CHANGE_COMMANDS) for v in violations), violations
    async with RawClient(secured.url, "client") as raw:
        for subject in ("actors.control.shutdown", f"actors.control.{me}.rate_limit"):
            await raw.refused(subject, lambda s=subject: raw.nc.request(s, b"{}", timeout=0.5))

    operator = role_app("operator")[0]
    limited = await operator.control.arate_limit("canvas.add", "100/s", me, timeout=5.0)
    assert limited == [{me: {"ok": "new rate limit set successfully"}}]
    assert running.app.get_actor("canvas.add").options.rate_limit == "100/s"
    assert await operator.control.ashutdown(me, timeout=5.0) == [{me: {"ok": "shutting down"}}]
    await aeventually(lambda: shutdowns, what="the shutdown requested", timeout=5)


async def test_a_read_only_monitor_serves_every_page(
    role_app, worker, secured: EmbeddedServer, tmp_path: Path
) -> None:
    running = await worker(role_app("worker")[0])
    tasks = role_app("client")[1]
    done = await (tasks["add"].s(1, 1) | tasks["add"].s(2)).aapply_async()
    assert await done.aget(timeout=10) == 4
    async with RawClient(secured.url, "client") as raw:  # a dead letter
        await raw.js.publish(topology.task_subject("canvas.add"), b"\xc1")
    # The HTTP calls run in a thread: this loop runs the worker that answers the monitor.
    monitor = await asyncio.to_thread(
        Monitor,
        secured.url,
        tmp_path / "monitor.log",
        ACTORS_NATS_USER="monitor",
        ACTORS_NATS_PASSWORD=password("monitor"),
    )
    try:
        pages = ["/", "/tasks", f"/tasks/{done.id}", "/workers", f"/workers/{running.hostname}"]
        pages += ["/dead", "/dead/1", "/periodic", "/metrics", "/api/dashboard", "/api/dead"]

        async def served() -> dict[str, int]:
            return {p: (await asyncio.to_thread(monitor.get, p))[0] for p in pages}

        await aeventually(
            served,
            until=lambda codes: set(codes.values()) == {200},
            what="every page served",
            timeout=15,
        )
        dashboard = await aeventually(
            lambda: asyncio.to_thread(monitor.get, "/api/dashboard"),
            until=lambda found: found[1]["tasks_tracked"] >= 2,
            what=lambda: f"the tasks' events read:\n{monitor.process.output()}",
            timeout=10,
        )
        assert dashboard[1]["events_error"] is None
        assert [q["dead"] for q in dashboard[1]["queues"] if q["actor"] == "canvas.add"] == [1]
        assert (await asyncio.to_thread(monitor.get, "/healthz", False))[0] == 200
    finally:
        monitor.process.close()
    # Nothing it did needed more: no request of the monitor was refused.
    assert not [e for e in monitor.process.events() if "violation" in str(e).lower()]
