"""``actors queues``, ``purge``, ``result``, ``call`` and ``revoke`` against a real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from actors import App
from actors.nats.server import EmbeddedServer
from actors.wire.ids import new_task_id
from tests.apps.basic import register
from tests.helpers import eventually
from tests.integration.cli_helper import actors_cli


def queue_rows(url: str) -> dict[str, dict[str, Any]]:
    outcome = actors_cli("queues", "--json", "--nats-url", url)
    assert outcome.returncode == 0, outcome.stderr
    return {row["actor"]: row for row in json.loads(outcome.stdout)}


def test_queues_shows_a_backlog_and_purge_empties_it(app: App, nats_server: EmbeddedServer) -> None:
    tasks = register(app)
    assert queue_rows(nats_server.url) == {}
    for n in range(5):
        tasks["add"].delay(n, n)
    tasks["aadd"].delay(1, 1)
    rows = queue_rows(nats_server.url)
    assert rows["basic.add"]["pending"] == 5 and rows["basic.aadd"]["pending"] == 1
    assert rows["basic.add"]["in_flight"] == 0 and rows["basic.add"]["dead"] == 0

    table = actors_cli("queues", "--nats-url", nats_server.url)
    assert table.returncode == 0
    header, *lines = table.stdout.splitlines()
    assert header.split()[:3] == ["ACTOR", "PENDING", "IN"]
    assert any(line.split()[:2] == ["basic.add", "5"] for line in lines), table.stdout

    purged = actors_cli("purge", "basic.add", "--force", "--nats-url", nats_server.url)
    assert purged.returncode == 0, purged.stderr
    assert "basic.add: purged 5 message(s)" in purged.stdout
    rows = queue_rows(nats_server.url)
    assert "basic.add" not in rows and rows["basic.aadd"]["pending"] == 1

    refused = actors_cli("purge", "--nats-url", nats_server.url)  # no --force, no TTY
    assert refused.returncode == 2 and "give --force" in refused.stderr
    assert queue_rows(nats_server.url)["basic.aadd"]["pending"] == 1
    everything = actors_cli("purge", "--force", "--nats-url", nats_server.url)
    assert everything.returncode == 0 and "purged 1 message(s)" in everything.stdout
    assert queue_rows(nats_server.url) == {}


def test_call_runs_a_task_and_result_prints_it(
    nats_server: EmbeddedServer, worker_process: Any
) -> None:
    worker_process("tests.apps.basic:app")
    waited = actors_cli(
        "call", "basic.add", "--args", "[2, 3]", "--wait", "--nats-url", nats_server.url
    )
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == "5"

    sent = actors_cli(
        "call", "basic.add", "--kwargs", '{"x": 20, "y": 22}', "--nats-url", nats_server.url
    )
    assert sent.returncode == 0, sent.stderr
    task_id = sent.stdout.strip()

    def result() -> Any:
        return actors_cli("result", task_id, "--json", "--nats-url", nats_server.url)

    shown = eventually(result, until=lambda r: r.returncode == 0, what="a stored result")
    record = json.loads(shown.stdout)
    assert record["id"] == task_id and record["state"] == "SUCCESS" and record["result"] == 42
    plain = actors_cli("result", task_id, "--nats-url", nats_server.url)
    assert "state: SUCCESS" in plain.stdout and "result: 42" in plain.stdout

    later = actors_cli(
        "call", "basic.add", "-a", "[1, 1]", "--countdown", "1", "--wait", "--json",
        "--nats-url", nats_server.url,
    )  # fmt: skip
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout)["result"] == 2

    running = actors_cli("call", "basic.sleep", "--args", "[30]", "--nats-url", nats_server.url)
    assert running.returncode == 0, running.stderr
    row = eventually(
        lambda: queue_rows(nats_server.url).get("basic.sleep", {}),
        until=lambda r: r.get("in_flight") == 1,
        what="the running task in flight",
    )
    assert row["pending"] == 0 and row["consumers"] == 3  # one per priority band

    failed = actors_cli(
        "call", "basic.boom", "--args", '["no"]', "--wait", "--nats-url", nats_server.url
    )
    assert failed.returncode == 1 and "FAILURE: tests.apps.basic.CustomError" in failed.stdout


def test_result_of_an_unknown_task_exits_1(nats_server: EmbeddedServer) -> None:
    outcome = actors_cli("result", new_task_id(), "--nats-url", nats_server.url)
    assert outcome.returncode == 1
    assert "error: no result for task" in outcome.stderr and "Traceback" not in outcome.stderr


def test_call_refuses_bad_json(nats_server: EmbeddedServer) -> None:
    outcome = actors_cli("call", "basic.add", "--args", "{", "--nats-url", nats_server.url)
    assert outcome.returncode == 2 and "--args is not valid JSON" in outcome.stderr
    outcome = actors_cli("call", "basic.add", "--kwargs", "[1]", "--nats-url", nats_server.url)
    assert outcome.returncode == 2 and "--kwargs must be a JSON object" in outcome.stderr


def test_revoke_of_an_unknown_id_fails(app: App, nats_server: EmbeddedServer) -> None:
    tasks = register(app)
    queued = tasks["add"].delay(1, 2)
    unknown = new_task_id()
    outcome = actors_cli("revoke", unknown, queued.id, "--nats-url", nats_server.url)
    assert outcome.returncode == 1
    assert f"error: no task {unknown} is known" in outcome.stderr
    assert "revoked 1 task(s)" in outcome.stdout
    forced = actors_cli("revoke", unknown, "--force", "--nats-url", nats_server.url)
    assert forced.returncode == 0 and "revoked 1 task(s)" in forced.stdout
    later = tasks["add"].apply_async((1, 2), countdown=60)
    scheduled = actors_cli("revoke", later.id, "--nats-url", nats_server.url)
    assert scheduled.returncode == 0, scheduled.stderr


@pytest.mark.slow
def test_the_credential_options_reach_nats(tmp_path: Path) -> None:
    auth = ("--user", "alice", "--pass", "pw1")
    with EmbeddedServer(tmp_path / "nats", extra_args=auth) as server:
        url = ("--nats-url", server.url)
        alice = ("--nats-user", "alice")
        denied = actors_cli("queues", *url)
        assert denied.returncode == 2 and "cannot connect to NATS" in denied.stderr
        allowed = actors_cli("queues", "--json", *url, *alice, "--nats-password", "pw1")
        assert allowed.returncode == 0, allowed.stderr
        assert json.loads(allowed.stdout) == []
        wrong = actors_cli("result", new_task_id(), *url, *alice, "--nats-password", "wr0ng")
        assert wrong.returncode == 2 and "wr0ng" not in wrong.stderr + wrong.stdout
