"""Signatures as plain data, and how workflows turn into task messages (no server needed)."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import App, ProtocolError, Signature, chain, chord, group, signature
from actors.canvas import from_wire
from actors.signature import Hop
from tests.apps.canvas import register

app = App("unit-canvas", nats_url="nats://127.0.0.1:1")
tasks = register(app)
add, mul, tsum = tasks["add"], tasks["mul"], tasks["tsum"]


def roundtrip(sig: object) -> object:
    wire = sig.to_wire()  # type: ignore[attr-defined]
    via_json = from_wire(json.loads(json.dumps(wire)), app)
    via_msgpack = from_wire(msgpack.unpackb(msgpack.packb(wire), raw=False), app)
    assert via_json.to_wire() == wire == via_msgpack.to_wire()
    return via_json


def test_signature_forms_and_wire_map() -> None:
    sig = signature("canvas.add", args=(2, 2), kwargs={}, countdown=10)
    assert sig.to_wire() == {
        "task": "canvas.add",
        "args": [2, 2],
        "kwargs": {},
        "options": {"countdown": 10},
        "immutable": False,
    }
    assert add.signature((2, 2), countdown=10).to_wire() == sig.to_wire()
    assert add.s(2, 2).to_wire()["options"] == {}
    assert add.si(2, 2).immutable and not add.s(2, 2).immutable
    assert roundtrip(add.s(2, y=3).set(countdown=1, link=mul.s(2))) == add.s(2, y=3).set(
        countdown=1, link=mul.s(2)
    )


def test_a_signature_can_name_a_task_this_process_does_not_have() -> None:
    sig = signature("billing.charge", args=(7,), app=app)
    assert isinstance(roundtrip(sig), Signature)
    with pytest.raises(Exception, match="not registered"):
        sig()


def test_set_and_clone() -> None:
    sig = add.s(2)
    twin = sig.clone(countdown=5)
    twin.args = (9,)
    assert sig.args == (2,) and sig.options == {}
    assert twin.options == {"countdown": 5}
    assert sig.set(expires=3) is sig and sig.options == {"expires": 3}


def test_calling_a_signature_runs_it_here() -> None:
    assert add.s(2, 2)() == 4
    assert add.s(2)(5) == 7  # partial args are prepended, as in Celery
    assert add.si(2, 2)(100) == 4
    assert add.map([(1, 2)]).mode == "map"
    assert tsum.map([[1, 2], [3]])() == [3, 3]
    assert add.starmap([(1, 2), (3, 4)])() == [3, 7]


def test_pipe_builds_a_flat_chain() -> None:
    flow = add.s(2, 2) | mul.s(8) | add.s(1)
    assert isinstance(flow, chain)
    assert [t.task for t in flow.tasks] == ["canvas.add", "canvas.mul", "canvas.add"]


def test_nested_primitives_round_trip() -> None:
    flow = chain(
        add.s(1, 1),
        group(add.s(1), chain(mul.s(2), add.s(3))),
        chord([add.s(1), add.s(2)], tsum.s()),
        add.map([1, 2]),
    )
    assert roundtrip(flow).to_wire() == flow.to_wire()
    assert roundtrip(add.chunks([(1, 2), (3, 4), (5, 6)], 2)).to_wire()["kind"] == "group"


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"kind": "task"},
        {"task": "a", "args": 3},
        {"kind": "loop", "tasks": []},
        {"kind": "group"},
        {"task": "a", "map": "reduce"},
    ],
)
def test_malformed_signatures_raise_protocol_error(bad: object) -> None:
    with pytest.raises(ProtocolError):
        from_wire(bad, app)


def test_chain_messages_carry_the_remaining_steps_with_ids_fixed_up_front() -> None:
    flow = add.s(2, 2) | mul.s(8) | add.s(1)
    result = flow.freeze()
    (first,) = flow.messages([], [], Hop())
    assert first.args == [2, 2]
    assert [s["options"]["task_id"] for s in first.chain] == [result.parent.id, result.id]
    assert result.parent.parent.id == first.id


def test_group_messages_share_a_group_id() -> None:
    flow = group(add.s(i, i) for i in range(3))
    result = flow.freeze()
    messages = flow.messages([10], [], Hop())
    assert {m.group_id for m in messages} == {result.id}
    assert [m.group_index for m in messages] == [0, 1, 2]
    assert [m.args for m in messages] == [[10, 0, 0], [10, 1, 1], [10, 2, 2]]
    assert [m.id for m in messages] == [r.id for r in result.results]


def test_chord_members_carry_id_size_index_and_body() -> None:
    flow = chord([add.s(1, 1), add.s(2, 2)], tsum.s())
    result = flow.freeze()
    messages = flow.messages([], [], Hop())
    assert [m.chord["index"] for m in messages] == [0, 1]  # type: ignore[index]
    spec = messages[0].chord
    assert spec is not None and spec["size"] == 2 and spec["id"] == result.parent.id
    assert spec["body"]["options"]["task_id"] == result.id


def test_a_group_followed_by_a_task_becomes_a_chord() -> None:
    flow = chain(group(add.s(1, 1), add.s(2, 2)), tsum.s())
    result = flow.freeze()
    messages = flow.messages([], [], Hop())
    assert len(messages) == 2
    assert all(m.chord and m.chord["body"]["options"]["task_id"] == result.id for m in messages)


def test_chunks_are_a_group_of_starmaps() -> None:
    parts = add.chunks([(i, i) for i in range(5)], 2).group()
    assert isinstance(parts, group)
    assert [(t.mode, t.args) for t in parts.tasks] == [
        ("starmap", ([[0, 0], [1, 1]],)),
        ("starmap", ([[2, 2], [3, 3]],)),
        ("starmap", ([[4, 4]],)),
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@given(
    args=st.lists(json_values, max_size=4),
    kwargs=st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=3),
    immutable=st.booleans(),
)
def test_any_json_arguments_round_trip(args: list, kwargs: dict, immutable: bool) -> None:
    sig = Signature("any.task", args, kwargs, {"countdown": 1}, immutable, app)
    assert roundtrip(sig) == sig
