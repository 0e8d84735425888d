"""Tagged argument types (docs/protocol.md "Argument types"): round trips, hostile input."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import App, ProtocolError, signature
from actors.wire.message import decode, encode
from actors.wire.topology import JSON, MSGPACK

VALUES: list[Any] = [
    datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 1, 2, 3, 4, 5),  # naive stays naive
    date(2026, 1, 2),
    time(3, 4, 5, 6),
    UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("3.14159265358979323846"),
    Decimal("-1E+3"),
]


@pytest.mark.parametrize("content_type", [MSGPACK, JSON])
def test_each_type_round_trips_inside_args_and_kwargs(content_type: str) -> None:
    body = {"args": VALUES, "kwargs": {"nested": {"when": VALUES[0], "many": [VALUES[6]]}}}
    back = decode(encode(body, content_type), content_type)
    assert back == body
    assert [type(v) for v in back["args"]] == [type(v) for v in VALUES]


def test_the_tagged_form_is_plain_data_other_languages_read() -> None:
    body = encode({"at": date(2026, 1, 2), "n": Decimal("1.5")}, JSON)
    assert json.loads(body) == {
        "at": {"__type__": "date", "__value__": "2026-01-02"},
        "n": {"__type__": "decimal", "__value__": "1.5"},
    }
    assert msgpack.unpackb(encode({"id": UUID(int=1)}))["id"] == {
        "__type__": "uuid",
        "__value__": "00000000-0000-0000-0000-000000000001",
    }


def test_tuples_become_lists_and_unknown_tags_stay_maps() -> None:
    assert decode(encode({"t": (1, (2, 3))}), MSGPACK) == {"t": [1, [2, 3]]}
    other = {"__type__": "money", "__value__": "5 EUR"}
    assert decode(encode({"x": other}), MSGPACK) == {"x": other}
    three = {"__type__": "date", "__value__": "2026-01-02", "extra": 1}
    assert decode(encode({"x": three}), MSGPACK) == {"x": three}


@pytest.mark.parametrize(
    "tagged",
    [
        {"__type__": "datetime", "__value__": "yesterday"},
        {"__type__": "date", "__value__": 20260102},
        {"__type__": "uuid", "__value__": "not-a-uuid"},
        {"__type__": "decimal", "__value__": "1.2.3"},
        {"__type__": "decimal", "__value__": "9" * 5000},
        {"__type__": "time", "__value__": "25:99"},
    ],
)
@pytest.mark.parametrize("content_type", [MSGPACK, JSON])
def test_a_bad_tagged_value_is_a_protocol_error(tagged: dict[str, Any], content_type: str) -> None:
    data = encode({"id": "t1", "args": [tagged]}, content_type)
    with pytest.raises(ProtocolError, match=f"tagged {tagged['__type__']} value"):
        decode(data, content_type)
    assert decode(data, content_type, typed=False)["id"] == "t1"


SCALARS = (
    st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text()
    | st.datetimes()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.dates()
    | st.times()
)


@given(
    st.recursive(
        SCALARS,
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_any_nesting_round_trips(value: Any) -> None:
    assert decode(encode({"v": value}), MSGPACK) == {"v": value}


@given(
    st.dictionaries(
        st.sampled_from(["__type__", "__value__", "x"]),
        st.text() | st.integers(-(2**63), 2**63 - 1) | st.sampled_from(["date", "uuid", "time"]),
    )
)
def test_decoding_hostile_maps_never_crashes_otherwise(data: dict[str, Any]) -> None:
    with contextlib.suppress(ProtocolError):
        decode(encode({"v": data}), MSGPACK)


def test_signatures_in_arguments_travel_as_maps_and_rebuild() -> None:
    app = App("typed", nats_url="nats://127.0.0.1:1")
    sig = signature("tasks.add", args=(2, 2), app=app, countdown=5)
    back = decode(encode({"args": [sig]}), MSGPACK)["args"][0]
    assert back == sig.to_wire()
    assert signature(back, app=app) == sig
    with pytest.raises(TypeError, match="can not serialize 'object'"):
        encode({"args": [object()]})
