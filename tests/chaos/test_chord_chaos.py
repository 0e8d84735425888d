"""A chord's body runs exactly once when workers die mid-chord and members are redelivered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors import chord
from tests.apps.canvas import register
from tests.helpers import eventually, lines, settled

pytestmark = pytest.mark.chaos

FAST_REDELIVERY = {"ACTORS_ACK_WAIT": "1.5"}


def test_worker_sigkilled_mid_chord(
    worker_process: Any, make_app: Any, nats_server: Any, tmp_path: Path
) -> None:
    victim = worker_process("tests.apps.canvas:app", "-c", "4", **FAST_REDELIVERY)
    survivor = worker_process("tests.apps.canvas:app", "-c", "4", **FAST_REDELIVERY)
    app = make_app("client", ack_wait=1.5)
    tasks = register(app)
    record = tasks["record"]
    header_log, body_log = tmp_path / "header", tmp_path / "body"
    header = [record.s(i, str(header_log), "h", 0.1) for i in range(40)]
    result = chord(header, record.s(str(body_log), "body")).delay()

    eventually(
        lambda: sum(f" {victim.pid} " in line for line in lines(header_log)),
        until=lambda ran: ran >= 4,
        what="the victim to run 4 header tasks",
        timeout=20,
    )
    victim.kill()  # SIGKILL: its tasks in flight are redelivered after ack_wait
    assert result.get(timeout=30) == list(range(40))
    assert len(lines(header_log)) > 40  # some members really ran twice
    # Sentinel: the victim's unacked members come back after ack_wait; once every member and
    # the body are run and acked, a second body would have been sent and run.
    settled(nats_server.url, "canvas.record", timeout=30)
    assert len(lines(body_log)) == 1
    assert f" {survivor.pid} " in lines(body_log)[0]


def test_header_member_redelivered_after_crashing_its_worker(
    worker_process: Any, make_app: Any, nats_server: Any, tmp_path: Path
) -> None:
    """Stands in for a retried header member: ``crash_once`` kills its worker process the
    first time it runs; the message is redelivered and the member finishes on another."""
    for _ in range(2):
        worker_process("tests.apps.canvas:app", "-c", "4", **FAST_REDELIVERY)
    app = make_app("client")
    tasks = register(app)
    add, crash_once, record = tasks["add"], tasks["crash_once"], tasks["record"]
    flags, body_log = tmp_path / "crash", tmp_path / "body"
    header = [add.s(i, i) for i in range(20)]
    header.insert(7, crash_once.s(1000, str(flags)))
    result = chord(header, record.s(str(body_log), "body")).delay()
    expected = [i + i for i in range(20)]
    expected.insert(7, 1000)
    assert result.get(timeout=30) == expected
    assert Path(f"{flags}.1000").exists()  # it did crash a worker once
    # Sentinel: every member (the crashed one included) and the body run and acked.
    settled(nats_server.url, "canvas.add", "canvas.crash_once", timeout=30)
    settled(nats_server.url, "canvas.record", timeout=30)
    assert len(lines(body_log)) == 1
