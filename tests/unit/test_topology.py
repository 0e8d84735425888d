"""Names of NATS objects: task names, subjects, consumer names and task ids (docs/protocol.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import ConfigurationError
from actors.wire import topology

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

WORD = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
TASK_NAMES = st.lists(WORD, min_size=1, max_size=5).map(".".join)
TASK_IDS = st.from_regex(r"[A-Za-z0-9_\-=]{1,128}", fullmatch=True)

# What NATS accepts in a consumer name and in one subject token.
NATS_NAME = re.compile(r"[^\s.*>/\\]+")
SUBJECT_TOKEN = re.compile(r"[^\s.*>]+")


@pytest.mark.parametrize(
    "name", ["add", "tasks.add", "billing.tasks.charge", "A_1.b_2.C3", "_", "9.9", "x" * 200]
)
def test_valid_task_names_are_accepted(name: str) -> None:
    assert topology.validate_task_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        *["", ".", ".add", "add.", "tasks..add", "tasks add", "tasks-add", "tasks.*", "tasks.>"],
        *["a/b", "tâche", "tasks.add ", " tasks.add", "tasks:add", "tasks\tadd"],
    ],
)
def test_invalid_task_names_are_refused_with_a_hint(name: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        topology.validate_task_name(name)
    assert repr(name) in str(caught.value)
    assert "dot-separated words of letters, digits and underscores" in str(caught.value)


def test_task_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        topology.validate_task_name("tasks.add\n")


def test_subjects_and_consumer_names_of_a_task() -> None:
    assert topology.task_subject("tasks.add") == "actors.task.tasks.add"
    assert topology.consumer_name("tasks.add") == "tasks-add"
    assert topology.consumer_name("add") == "add"
    assert topology.dead_subject("tasks.add") == "actors.dead.tasks.add"
    assert topology.dead_subject("not a name") == "actors.dead._invalid"
    assert topology.result_subject("abc-1") == "$KV.actors_results.abc-1"


def test_task_name_from_subject() -> None:
    assert topology.task_name_from_subject("actors.task.tasks.add") == "tasks.add"
    assert topology.task_name_from_subject("actors.sched.abc") is None
    assert topology.task_name_from_subject("actors.dead.tasks.add") is None
    assert topology.task_name_from_subject("other.task.add") is None


@given(TASK_NAMES)
def test_each_valid_name_maps_to_one_subject_and_one_consumer(name: str) -> None:
    assert topology.validate_task_name(name) == name
    subject = topology.task_subject(name)
    assert subject.split(".") == ["actors", "task", *name.split(".")]
    assert all(SUBJECT_TOKEN.fullmatch(token) for token in subject.split("."))
    assert topology.task_name_from_subject(subject) == name
    consumer = topology.consumer_name(name)
    assert NATS_NAME.fullmatch(consumer)
    assert consumer.replace("-", ".") == name  # dashes never occur in names: reversible


@given(TASK_NAMES, TASK_NAMES)
def test_distinct_names_never_share_a_subject_or_consumer(a: str, b: str) -> None:
    if a == b:
        return
    assert topology.task_subject(a) != topology.task_subject(b)
    assert topology.consumer_name(a) != topology.consumer_name(b)
    assert topology.dead_subject(a) != topology.dead_subject(b)


@pytest.mark.parametrize(
    "task_id",
    ["196538da-815b-4af9-8fe2-d9a65f626c5c", "a", "abc-DEF_123=", "x" * 128, "dGFzaw==", "-", "0"],
)
def test_valid_task_ids(task_id: str) -> None:
    assert topology.valid_task_id(task_id)


@pytest.mark.parametrize(
    "task_id",
    ["", "x" * 129, "a.b", "a b", "a*", "a>", "a/b", "ä", "a\tb", None, 5, b"abc", ["a"]],
)
def test_invalid_task_ids(task_id: object) -> None:
    assert not topology.valid_task_id(task_id)


def test_task_id_with_a_trailing_newline_is_invalid() -> None:
    assert not topology.valid_task_id("abc\n")


@given(TASK_IDS)
def test_a_valid_id_is_one_kv_key_token(task_id: str) -> None:
    assert topology.valid_task_id(task_id)
    subject = topology.result_subject(task_id)
    assert subject.split(".") == ["$KV", "actors_results", task_id]
    assert SUBJECT_TOKEN.fullmatch(task_id)


def test_names_the_protocol_document_specifies() -> None:
    assert topology.PROTOCOL_VERSION == 1
    assert (topology.TASK_STREAM, topology.DEAD_STREAM) == ("ACTORS", "ACTORS_DEAD")
    assert topology.RESULTS_BUCKET == "actors_results"
    assert (topology.MSGPACK, topology.JSON) == ("application/msgpack", "application/json")
    doc = PROTOCOL_DOC.read_text()
    for name in (
        topology.TASK_STREAM,
        topology.TASK_PREFIX,
        topology.SCHEDULE_PREFIX,
        topology.SCHEDULED_STREAM,
        topology.DUE_PREFIX,
        topology.DEAD_STREAM,
        topology.DEAD_PREFIX,
        topology.RESULTS_BUCKET,
        topology.MSGPACK,
        topology.JSON,
        topology.DEAD_REASON,
        topology.DEAD_SUBJECT,
        topology.DEAD_SEQUENCE,
        topology.DEAD_TASK,
    ):
        assert name in doc, f"{name!r} is not described in docs/protocol.md"
