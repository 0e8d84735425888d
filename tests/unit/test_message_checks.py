"""The worker's checks of a delivered message before its task runs (no server needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import App
from actors.errors import ProtocolError, WorkerLost
from actors.wire.message import TaskMessage
from actors.worker.message_checks import Rejection, check_message, map_calls, message_id

app = App("unit-checks", nats_url="nats://127.0.0.1:1")


@app.actor(name="checks.add")
def add(x: int, y: int) -> int:
    return x + y


@app.actor(name="checks.fragile", max_deliveries=2)
def fragile() -> None:
    return None


SUBJECT = "actors.task.checks.add"
MAX_DELIVERIES = 5
MAX_BYTES = 1024


@dataclass
class Received:
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)
    subject: str = SUBJECT
    delivered: int = 1


def body(**fields: Any) -> bytes:
    return msgpack.packb({"id": "t-1", "task": "checks.add", "args": [1, 2], **fields})


def check(received: Received, actor: Any = add) -> TaskMessage | Rejection:
    return check_message(actor, received, MAX_DELIVERIES, MAX_BYTES)


def rejected(received: Received, actor: Any = add) -> Rejection:
    outcome = check(received, actor)
    assert isinstance(outcome, Rejection), outcome
    return outcome


def test_a_good_message_is_returned_to_run() -> None:
    message = check(Received(body(kwargs={})))
    assert isinstance(message, TaskMessage)
    assert (message.id, message.task, message.args) == ("t-1", "checks.add", [1, 2])


def test_json_is_read_by_its_content_type() -> None:
    data = json.dumps({"id": "t-1", "task": "checks.add", "args": [1, 2]}).encode()
    message = check(Received(data, {"Content-Type": "application/json"}))
    assert isinstance(message, TaskMessage) and message.args == [1, 2]


def test_too_many_deliveries_is_a_worker_lost() -> None:
    rejection = rejected(Received(body(), delivered=MAX_DELIVERIES + 1))
    assert rejection.error is WorkerLost and rejection.task_id == "t-1"
    assert "delivered 6 times" in rejection.reason and "max_deliveries=5" in rejection.reason
    assert isinstance(check(Received(body(), delivered=MAX_DELIVERIES)), TaskMessage)


def test_the_actors_max_deliveries_wins() -> None:
    data = msgpack.packb({"id": "t-2", "task": "checks.fragile"})
    rejection = rejected(Received(data, delivered=3), fragile)
    assert rejection.error is WorkerLost and "max_deliveries=2" in rejection.reason


def test_deliveries_are_checked_before_anything_is_read() -> None:
    rejection = rejected(Received(b"\xc1 not msgpack", delivered=99))
    assert rejection.error is WorkerLost and rejection.task_id is None


def test_an_oversized_message_is_refused() -> None:
    rejection = rejected(Received(body(kwargs={"pad": "x" * MAX_BYTES})))
    assert rejection.error is ProtocolError and rejection.task_id == "t-1"
    assert "over max_message_bytes" in rejection.reason


def test_an_unreadable_body_is_malformed_without_a_task_id() -> None:
    rejection = rejected(Received(b"\xc1"))
    assert rejection.reason.startswith("malformed message: body is not valid")
    assert rejection.task_id is None and rejection.error is ProtocolError


def test_an_invalid_message_keeps_a_readable_task_id() -> None:
    rejection = rejected(Received(body(retries="many")))
    assert rejection.reason.startswith("malformed message:") and rejection.task_id == "t-1"


def test_an_unusable_task_id_is_not_used() -> None:
    rejection = rejected(Received(body(id="a.b>")))
    assert rejection.task_id is None


def test_a_task_name_that_does_not_match_the_subject_is_refused() -> None:
    data = msgpack.packb({"id": "t-3", "task": "checks.fragile"})
    rejection = rejected(Received(data))
    assert rejection.task_id == "t-3" and rejection.message is None
    assert rejection.reason == f"message names task 'checks.fragile' but came on {SUBJECT}"


def test_arguments_that_do_not_fit_carry_the_message() -> None:
    rejection = rejected(Received(body(args=[1])))
    assert rejection.reason.startswith("arguments do not fit checks.add(x")
    assert rejection.reason.endswith(": missing a required argument: 'y'")
    assert rejection.task_id == "t-1" and rejection.error is ProtocolError
    assert rejection.message is not None and rejection.message.id == "t-1"


@pytest.mark.parametrize(
    ("mode", "items", "problem"),
    [
        ("map", [1, 2], "missing a required argument"),
        ("starmap", [[1, 2], [3]], "missing a required argument"),
        ("starmap", [[1, 2], 3], "every starmap item must be a list"),
    ],
)
def test_every_map_item_is_checked(mode: str, items: list[Any], problem: str) -> None:
    rejection = rejected(Received(body(args=[items], map=mode)))
    assert problem in rejection.reason and rejection.message is not None


def test_an_unknown_map_mode_is_malformed() -> None:
    rejection = rejected(Received(body(args=[[[1, 2]]], map="zip")))
    assert rejection.reason.startswith("malformed message: field 'map'")


def test_map_calls_spread_the_items() -> None:
    starmap = TaskMessage(id="m", task="checks.add", args=[[[1, 2], [3, 4]]], map="starmap")
    assert map_calls(starmap) == [([1, 2], {}), ([3, 4], {})]
    mapped = TaskMessage(id="m", task="t", args=[[1, 2]], kwargs={"y": 0}, map="map")
    assert map_calls(mapped) == [([1], {"y": 0}), ([2], {"y": 0})]
    with pytest.raises(TypeError, match="takes one argument"):
        map_calls(TaskMessage(id="m", task="t", args=[1, 2], map="map"))


def test_message_id_reads_what_it_can() -> None:
    assert message_id(body(), None) == "t-1"
    assert message_id(msgpack.packb([1, 2]), None) is None
    assert message_id(b"{", "application/json") is None
    assert message_id(body(), "text/plain") is None


@given(st.binary(max_size=200), st.integers(1, 10))
def test_any_bytes_give_a_message_or_a_rejection(data: bytes, delivered: int) -> None:
    outcome = check(Received(data, delivered=delivered))
    assert isinstance(outcome, TaskMessage | Rejection)
