"""The task message and its encodings (docs/protocol.md, "Task messages"). No server needed."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import ProtocolError
from actors.wire.message import TaskMessage, decode, encode, format_time, parse_time
from actors.wire.record import ResultRecord
from actors.wire.topology import JSON, MSGPACK

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

TASK_IDS = st.from_regex(r"[A-Za-z0-9_\-=]{1,128}", fullmatch=True)
TASK_NAMES = st.lists(
    st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True), min_size=1, max_size=8
).map(".".join)
INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
MSGPACK_VALUES = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)  # the range msgpack carries; JSON is held to it
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9998, 1, 1), timezones=st.just(UTC)
).map(format_time)
SIGNATURES = st.fixed_dictionaries(
    {"task": TASK_NAMES, "args": st.lists(INT64, max_size=3), "kwargs": st.just({})}
)


def chord_specs(size: int) -> st.SearchStrategy[dict[str, Any]]:
    """The ``chord`` field of a member of a chord of ``size``."""
    index = st.integers(0, size - 1)
    return st.fixed_dictionaries(
        {"id": TASK_IDS, "size": st.just(size), "index": index, "body": SIGNATURES}
    )


def full_message() -> TaskMessage:
    """A message with every field set to something other than its default."""
    return TaskMessage(
        id="full-1",
        task="tasks.add",
        args=[1, "two", [3.5, None], {"k": b"\x00\xff"}],
        kwargs={"flag": True, "nested": {"a": [1, 2]}},
        retries=2,
        eta="2030-01-01T12:00:00Z",
        expires="2030-01-02T12:00:00.250000Z",
        link=[{"task": "tasks.log", "args": [], "kwargs": {}, "options": {}, "immutable": False}],
        link_error=[{"task": "tasks.alert", "args": [], "kwargs": {}}],
        chain=[{"task": "tasks.mul", "args": [2], "kwargs": {}}],
        chord={"id": "chord-1", "size": 3, "index": 1, "body": {"task": "tasks.sum"}},
        group_id="group-1",
        group_index=1,
        root_id="root-1",
        parent_id="parent-1",
        ignore_result=False,
        headers={"trace": "abc"},
    )


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (so 1 != 1.0 != True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def round_trip(message: TaskMessage, content_type: str) -> TaskMessage:
    return TaskMessage.from_wire(decode(encode(message.to_wire(), content_type), content_type))


# -- round trips ----------------------------------------------------------------------------


def test_full_message_round_trips_through_msgpack() -> None:
    message = full_message()
    assert round_trip(message, MSGPACK) == message


def test_full_message_round_trips_through_json_without_bytes() -> None:
    message = full_message()
    message.args = message.args[:3]  # JSON carries no bytes
    assert round_trip(message, JSON) == message


def test_defaults_are_left_out_of_the_wire_map() -> None:
    wire = TaskMessage(id="a1", task="tasks.add").to_wire()
    assert wire == {"v": 1, "id": "a1", "task": "tasks.add", "args": [], "kwargs": {}}


def test_ignore_result_false_is_kept_on_the_wire() -> None:
    wire = TaskMessage(id="a1", task="t", ignore_result=False).to_wire()
    assert wire["ignore_result"] is False


def test_minimal_json_message_from_another_language() -> None:
    body = b'{"id":"0b9d","task":"tasks.add","args":[2,2],"kwargs":{}}'
    message = TaskMessage.from_wire(decode(body, "application/json"))
    assert (message.id, message.task) == ("0b9d", "tasks.add")
    assert (message.args, message.kwargs) == ([2, 2], {})
    assert message.v == 1 and message.retries == 0 and message.ignore_result is None


def test_missing_args_and_kwargs_read_as_empty() -> None:
    message = TaskMessage.from_wire({"id": "a1", "task": "t"})
    assert (message.args, message.kwargs) == ([], {})


def test_unknown_fields_are_ignored() -> None:
    data = {**full_message().to_wire(), "future_field": {"x": [1]}, "v": 1, "zzz": None}
    assert TaskMessage.from_wire(data) == full_message()


def test_null_optional_fields_read_as_absent() -> None:
    data = {"id": "a1", "task": "t", "eta": None, "retries": None, "headers": None, "link": None}
    message = TaskMessage.from_wire(data)
    assert (message.eta, message.retries, message.headers, message.link) == (None, 0, {}, [])


def test_first_group_member_keeps_its_index() -> None:
    message = TaskMessage(id="a1", task="t", group_id="g1", group_index=0)
    assert round_trip(message, MSGPACK).group_index == 0


# -- invalid messages -----------------------------------------------------------------------


@pytest.mark.parametrize("data", [[1, 2], "text", None, 7, b"bytes"])
def test_a_message_must_be_a_map(data: Any) -> None:
    with pytest.raises(ProtocolError, match="task message must be a map"):
        TaskMessage.from_wire(data)


@pytest.mark.parametrize(
    ("data", "missing"),
    [({"task": "t"}, "id"), ({"id": "a1"}, "task"), ({"args": []}, "id, task")],
)
def test_missing_required_fields_are_named(data: dict[str, Any], missing: str) -> None:
    with pytest.raises(ProtocolError, match=f"misses required field\\(s\\): {missing}$"):
        TaskMessage.from_wire(data)


@pytest.mark.parametrize("task_id", ["", "a.b", "with space", "x" * 129, 42, None, ["a"]])
def test_invalid_task_ids_are_refused(task_id: Any) -> None:
    with pytest.raises(ProtocolError, match="is not a valid id"):
        TaskMessage.from_wire({"id": task_id, "task": "t"})


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("task", 5, "field 'task' must be a string"),
        ("args", "abc", "field 'args' must be a list, got str"),
        ("args", {"a": 1}, "field 'args' must be a list, got dict"),
        ("kwargs", [1], "field 'kwargs' must be a map with string keys"),
        ("kwargs", {1: 2}, "field 'kwargs' must be a map with string keys"),
        ("retries", "1", "field 'retries' has the wrong type str"),
        ("retries", 1.5, "field 'retries' has the wrong type float"),
        ("eta", 1700000000, "field 'eta' has the wrong type int"),
        ("expires", [], "field 'expires' has the wrong type list"),
        ("link", {"task": "t"}, "field 'link' has the wrong type dict"),
        ("link_error", "t", "field 'link_error' has the wrong type str"),
        ("chain", {}, "field 'chain' has the wrong type dict"),
        ("chord", [], "field 'chord' has the wrong type list"),
        ("group_id", 1, "field 'group_id' has the wrong type int"),
        ("group_index", "0", "field 'group_index' has the wrong type str"),
        ("root_id", 1, "field 'root_id' has the wrong type int"),
        ("parent_id", [], "field 'parent_id' has the wrong type list"),
        ("ignore_result", "yes", "field 'ignore_result' has the wrong type str"),
        ("headers", [], "field 'headers' has the wrong type list"),
        ("v", "1", "field 'v' has the wrong type str"),
    ],
)
def test_fields_of_the_wrong_type_are_refused(field: str, value: Any, error: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(error)):
        TaskMessage.from_wire({"id": "a1", "task": "t", field: value})


# -- bodies ---------------------------------------------------------------------------------


def test_missing_content_type_means_msgpack() -> None:
    assert decode(msgpack.packb({"id": "a1"}), None) == {"id": "a1"}


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8"]
)
def test_content_type_is_read_without_case_or_parameters(content_type: str) -> None:
    assert decode(b'{"id":"a1"}', content_type) == {"id": "a1"}


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"", None, "body is not valid application/msgpack"),
        (b"\xc1", MSGPACK, "body is not valid application/msgpack"),
        (msgpack.packb({"id": "a1"})[:-1], MSGPACK, "body is not valid application/msgpack"),
        (msgpack.packb(1) + msgpack.packb(2), MSGPACK, "body is not valid application/msgpack"),
        (b"", JSON, "body is not valid application/json"),
        (b"{'id': 'a1'}", JSON, "body is not valid application/json"),
        (b'{"id": "a1"', JSON, "body is not valid application/json"),
        (b"\xff\xfe", JSON, "body is not valid application/json"),
        (b'{"id":"a1"}', "text/plain", "unsupported Content-Type 'text/plain'"),
        (b'{"id":"a1"}', "application/x-pickle", "use application/msgpack or application/json"),
    ],
)
def test_bad_bodies_raise_protocol_errors(
    body: bytes, content_type: str | None, error: str
) -> None:
    with pytest.raises(ProtocolError, match=re.escape(error)):
        decode(body, content_type)


def test_msgpack_map_with_an_unhashable_key_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode(b"\x81\x90\x00", MSGPACK)  # {[]: 0}


def test_deeply_nested_json_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode(b"[" * 5000 + b"]" * 5000, JSON)


def test_encode_refuses_values_the_wire_cannot_carry() -> None:
    with pytest.raises(TypeError):
        encode({"args": [object()]})
    with pytest.raises(TypeError):
        encode({"args": [b"bytes"]}, JSON)


# -- times ----------------------------------------------------------------------------------


def test_format_time_is_utc_with_z() -> None:
    assert format_time(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2030-01-02T03:04:05Z"
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2030, 1, 2, 3, 4, 5, 120000, tzinfo=plus_two)
    assert format_time(moment) == "2030-01-02T01:04:05.120000Z"


def test_format_time_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2030, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-02T03:04:05Z", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-02T03:04:05+00:00", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-02T05:04:05+02:00", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2030-01-02T03:04:05.5Z", datetime(2030, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        # Go and nats-server write nanoseconds; digits past microseconds are dropped.
        ("2030-01-02T03:04:05.123456789Z", datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        # No offset: read as UTC.
        ("2030-01-02T03:04:05", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["", "tomorrow", "2030-13-01T00:00:00Z", "1700000000", None, 5])
def test_parse_time_refuses_other_text(text: Any) -> None:
    with pytest.raises(ProtocolError, match="is not an RFC 3339 time"):
        parse_time(text)


def test_eta_and_expires_as_datetimes() -> None:
    message = TaskMessage(id="a1", task="t", eta="2030-01-01T00:00:00Z")
    assert message.eta_datetime() == datetime(2030, 1, 1, tzinfo=UTC)
    assert message.expires_datetime() is None


@given(TIMES)
def test_times_round_trip(text: str) -> None:
    assert text.endswith("Z")
    assert format_time(parse_time(text)) == text


# -- properties -----------------------------------------------------------------------------


@given(
    TASK_IDS,
    TASK_NAMES,
    st.lists(MSGPACK_VALUES, max_size=5),
    st.dictionaries(st.text(), MSGPACK_VALUES, max_size=5),
)
def test_any_msgpack_arguments_round_trip(
    task_id: str, task: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    message = round_trip(TaskMessage(id=task_id, task=task, args=args, kwargs=kwargs), MSGPACK)
    assert (message.id, message.task) == (task_id, task)
    assert same(message.args, args)
    assert same(message.kwargs, kwargs)


@given(
    TASK_IDS,
    st.lists(JSON_VALUES, max_size=5),
    st.dictionaries(st.text(), JSON_VALUES, max_size=5),
)
def test_any_json_arguments_round_trip(
    task_id: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    message = round_trip(TaskMessage(id=task_id, task="t", args=args, kwargs=kwargs), JSON)
    assert same(message.args, args)
    assert same(message.kwargs, kwargs)


@given(
    st.builds(
        TaskMessage,
        id=TASK_IDS,
        task=TASK_NAMES,
        retries=st.integers(min_value=0, max_value=1000),
        eta=st.none() | TIMES,
        expires=st.none() | TIMES,
        link=st.lists(SIGNATURES, max_size=2),
        link_error=st.lists(SIGNATURES, max_size=2),
        chain=st.lists(SIGNATURES, max_size=2),
        chord=st.none() | st.integers(1, 99).flatmap(chord_specs),
        group_id=st.none() | TASK_IDS,
        group_index=st.none() | st.integers(min_value=0, max_value=1000),
        root_id=st.none() | TASK_IDS,
        parent_id=st.none() | TASK_IDS,
        ignore_result=st.none() | st.booleans(),
        headers=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
    ),
    st.sampled_from([MSGPACK, JSON]),
)
def test_any_message_round_trips(message: TaskMessage, content_type: str) -> None:
    assert round_trip(message, content_type) == message


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=1))
def test_truncated_msgpack_bodies_are_protocol_errors(payload: bytes, cut: int) -> None:
    body = encode({"id": "a1", "task": "t", "args": [payload], "kwargs": {}})
    with pytest.raises(ProtocolError):
        decode(body[: len(body) - 1 - cut % len(body)], MSGPACK)


WIRE_FIELDS = [f.name for f in dataclasses.fields(TaskMessage)]


@given(
    st.dictionaries(
        st.sampled_from(WIRE_FIELDS) | st.text(max_size=5), JSON_VALUES | st.binary(), max_size=8
    )
)
def test_any_decoded_map_is_read_or_refused_with_a_protocol_error(data: dict[str, Any]) -> None:
    try:
        message = TaskMessage.from_wire(data)
    except ProtocolError:
        return
    assert message.id == data["id"] and message.task == data["task"]


# -- the document ---------------------------------------------------------------------------


def test_every_wire_field_is_documented() -> None:
    doc = PROTOCOL_DOC.read_text()
    fields = WIRE_FIELDS + [f.name for f in dataclasses.fields(ResultRecord)]
    undocumented = [name for name in fields if f"`{name}`" not in doc]
    assert not undocumented, f"fields missing from docs/protocol.md: {undocumented}"


@pytest.mark.parametrize("number", [str(2**64), str(-(2**63) - 1), "9" * 5000])
def test_a_json_integer_msgpack_cannot_carry_is_refused(number: str) -> None:
    """Values of a JSON message are re-sent as msgpack (chain steps, results): a number msgpack
    cannot carry would fail there, far from its sender. It is refused when decoded."""
    body = b'{"id":"x","task":"t","args":[' + number.encode() + b"]}"
    with pytest.raises(ProtocolError, match="body is not valid application/json"):
        decode(body, JSON)
    assert decode(b'{"args":[18446744073709551615,-9223372036854775808]}', JSON)["args"] == [
        2**64 - 1,
        -(2**63),
    ]
