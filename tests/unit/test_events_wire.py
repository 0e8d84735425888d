"""Event batches, worker records and ``--since``: pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.cli.monitor import parse_since
from actors.errors import ConfigurationError, ProtocolError
from actors.wire import events, topology
from actors.wire.message import TaskMessage, encode
from actors.wire.registry import WorkerRecord
from actors.worker.events import TaskEvents


def record(**changes: object) -> WorkerRecord:
    fields: dict[str, object] = {
        "id": "1_h",
        "hostname": "1@h",
        "pid": 1,
        "version": "0.1.0",
        "actors": ["a.b"],
        "concurrency": 4,
        "pool": "threads",
    }
    return WorkerRecord(**{**fields, **changes})  # type: ignore[arg-type]


def test_worker_record_round_trips_and_ignores_unknown_fields() -> None:
    original = record(active=2, processed=10, failed=1, load=0.5, heartbeat_at="x")
    assert WorkerRecord.from_bytes(original.to_bytes()) == original
    newer = encode({**original.to_json(), "future": {"field": 1}})
    assert WorkerRecord.from_bytes(newer) == original


@pytest.mark.parametrize(
    "bad", [{"pid": "1"}, {"actors": [1]}, {"active": True}, {"load": "high"}, {"id": None}]
)
def test_worker_record_refuses_wrong_types(bad: dict[str, object]) -> None:
    with pytest.raises(ProtocolError):
        WorkerRecord.from_bytes(encode({**record().to_json(), **bad}))


def test_worker_record_needs_its_identity() -> None:
    raw = record().to_json()
    del raw["hostname"]
    with pytest.raises(ProtocolError, match="hostname"):
        WorkerRecord.from_bytes(encode(raw))


@given(st.text(min_size=0, max_size=50))
def test_worker_id_is_one_subject_token(hostname: str) -> None:
    token = topology.worker_token(hostname)
    assert topology.subject_token(token) == token


def test_worker_id_keeps_pid_and_host() -> None:
    assert topology.worker_token("4242@worker-1.example.com") == "4242@worker-1_example_com"


def test_task_events_batch_per_kind_in_order() -> None:
    task_events = TaskEvents("1@h", enabled=True)
    message = TaskMessage(id="abc", task="t.add", args=[2, 3], kwargs={})
    task_events.received(message)
    task_events.started(message)
    task_events.succeeded(message, 0.5, 5)
    pending = task_events._pending
    assert [e["type"] for e in pending] == ["task-received", "task-started", "task-succeeded"]
    assert [e["clock"] for e in pending] == [1, 2, 3]
    assert pending[0]["args"] == "[2, 3]" and pending[2]["result"] == "5"
    body = events.encode_batch(pending[2:])
    decoded = events.decode_batch(body, topology.event_subject("task-succeeded"))
    assert decoded == pending[2:]
    assert "task-succeeded t.add id=abc on 1@h" in events.describe(decoded[0])


def test_disabled_task_events_record_nothing() -> None:
    task_events = TaskEvents("1@h", enabled=False)
    task_events.started(TaskMessage(id="abc", task="t.add", args=[], kwargs={}))
    task_events.add(events.WORKER_HEARTBEAT, active=0)
    assert task_events._pending == []


def test_event_batch_reader_fills_the_kind_and_refuses_junk() -> None:
    subject = topology.event_subject("task-started")
    assert events.decode_batch(encode([{"uuid": "x"}]), subject) == [
        {"uuid": "x", "type": "task-started"}
    ]
    for junk in (encode({"type": "x"}), encode([1]), encode([{"timestamp": "now"}]), b"\xc1"):
        with pytest.raises(ProtocolError):
            events.decode_batch(junk, subject)


def test_since_takes_durations_and_times() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("1.5h", now) == now - timedelta(minutes=90)
    assert parse_since("2026-01-01T11:00:00Z", now) == now - timedelta(hours=1)
    with pytest.raises(ConfigurationError, match="30s, 10m"):
        parse_since("yesterday", now)


def test_reorder_puts_one_flush_back_in_clock_order() -> None:
    def ev(kind: str, clock: int, host: str = "1@h") -> dict[str, object]:
        return {"type": kind, "clock": clock, "hostname": host}

    reorder = events.Reorder()
    # One flush of 2 messages (received x2, then started x2), another worker's in between.
    assert reorder.add([ev("task-received", 1), ev("task-received", 3)], "7 2") == []
    assert reorder.add([ev("x", 1, "2@h")], None) == [ev("x", 1, "2@h")]
    ready = reorder.add([ev("task-started", 2), ev("task-started", 4)], "7 2")
    assert [e["clock"] for e in ready] == [1, 2, 3, 4]
    # A flush that lost a message is released by the next flush of the same worker.
    assert reorder.add([ev("task-received", 5)], "8 2") == []
    assert [e["clock"] for e in reorder.add([ev("task-received", 7)], "9 1")] == [5, 7]
    assert reorder.add([ev("task-received", 8)], "10 3") == []
    assert [e["clock"] for e in reorder.rest()] == [8]


def step(name: str, task_id: str | None = None) -> dict[str, object]:
    options = {"task_id": task_id} if task_id else {}
    return {"task": name, "args": [], "kwargs": {}, "options": options}


def test_task_received_carries_the_rest_of_the_chain_bounded() -> None:
    long_name = "t." + "x" * 190
    group = {"kind": "group", "tasks": [step("t.g0"), step("t.g1")], "options": {"group_id": "g1"}}
    chain = [step("t.s1", "id-1"), group, step(long_name), *[step(f"t.s{i}") for i in range(12)]]
    wire = {"v": 1, "id": "id-0", "task": "t.s0", "args": [], "kwargs": {}, "chain": chain}
    message = TaskMessage.from_wire(wire)
    task_events = TaskEvents("1@h", enabled=True)
    task_events.received(message)
    event = task_events._pending[0]
    assert event["chain"][:3] == [["t.s1", "id-1"], ["group", "g1"], [long_name[:100], None]]
    assert len(event["chain"]) == events.MAX_STEPS
    assert "chord_body" not in event
    assert len(encode([event])) < 1500  # the most a chain adds stays small
    plain = TaskMessage(id="id-9", task="t.s0")
    task_events.received(plain)
    assert "chain" not in task_events._pending[1]  # a plain task pays nothing


def test_task_received_of_a_chord_member_carries_the_body() -> None:
    body = {"kind": "chain", "tasks": [step("t.sum", "b-0"), step("t.show", "b-1")]}
    chord = {"id": "c-1", "size": 2, "index": 0, "body": body}
    wire = {"v": 1, "id": "m-0", "task": "t.add", "args": [], "kwargs": {}, "chord": chord}
    task_events = TaskEvents("1@h", enabled=True)
    task_events.received(TaskMessage.from_wire(wire))
    event = task_events._pending[0]
    assert event["chord"] == "c-1"
    assert event["chord_body"] == [["t.sum", "b-0"], ["t.show", "b-1"]]


@pytest.mark.parametrize(
    "value",
    [None, "t.a", [["t.a"]], [[1, "id"]], [["t.a", "bad id!"]], [{"t.a": "id"}], [["t.a", 5]]],
)
def test_readers_take_only_well_formed_steps(value: object) -> None:
    assert all(step_id is None for _, step_id in events.read_steps(value))
    assert all(isinstance(name, str) for name, _ in events.read_steps(value))
    assert events.read_steps([["t." + "y" * 500, "ok-1"]] * 50) == [("t." + "y" * 98, "ok-1")] * 8
