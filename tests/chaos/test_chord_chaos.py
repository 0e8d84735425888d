"""A chord's body runs exactly once when workers die mid-chord and members are redelivered."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from actors import chord
from tests.apps.canvas import register

pytestmark = pytest.mark.chaos

FAST_REDELIVERY = {"ACTORS_ACK_WAIT": "1.5"}


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_worker_sigkilled_mid_chord(worker_process: Any, make_app: Any, tmp_path: Path) -> None:
    victim = worker_process("tests.apps.canvas:app", "-c", "4", **FAST_REDELIVERY)
    survivor = worker_process("tests.apps.canvas:app", "-c", "4", **FAST_REDELIVERY)
    app = make_app("client", ack_wait=1.5)
    tasks = register(app)
    record = tasks["record"]
    header_log, body_log = tmp_path / "header", tmp_path / "body"
    header = [record.s(i, str(header_log), "h", 0.1) for i in range(40)]
    result = chord(header, record.s(str(body_log), "body")).delay()

    def victim_is_busy() -> bool:
        return sum(f" {victim.pid} " in line for line in lines(header_log)) >= 4

    wait_until(victim_is_busy, 20, "the victim never ran a header task")
    victim.kill()  # SIGKILL: its tasks in flight are redelivered after ack_wait
    assert result.get(timeout=30) == list(range(40))
    assert len(lines(header_log)) > 40  # some members really ran twice
    time.sleep(0.5)
    assert len(lines(body_log)) == 1
    assert f" {survivor.pid} " in lines(body_log)[0]


def test_header_member_redelivered_after_crashing_its_worker(
    worker_process: Any, make_app: Any, tmp_path: Path
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
    time.sleep(0.5)
    assert len(lines(body_log)) == 1
