"""Validation of untrusted task messages at the edge (actors/validation.py). No server needed.

A hostile publisher may put anything into a message; everything a worker would send or
store after the task ran must be refused before it runs, and only with a ProtocolError.
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any
from unittest import mock

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import App, chain, chord, group
from actors.canvas import from_wire
from actors.errors import ConfigurationError, ProtocolError
from actors.signature import Hop
from actors.wire import topology
from actors.wire.message import TaskMessage, clip_text, decode, encode
from actors.wire.validation import MAX_NESTING
from tests.apps.canvas import register

app = App("unit-validation", nats_url="nats://127.0.0.1:1")
tasks = register(app)
add, mul, tsum = tasks["add"], tasks["mul"], tasks["tsum"]

INJECTION = "x\r\nPUB $JS.API.STREAM.DELETE.ACTORS 0\r\n\r\n"
HOSTILE_TEXT = [
    INJECTION,
    "a\rb",
    "a\nb",
    "a\x00b",
    "a b",
    "a\tb",
    "*",
    ">",
    "a.*",
    "a.>",
    "",
    "tâche",
    "a\u2028b",
    "x" * 201,
]
HOSTILE_IDS = [*HOSTILE_TEXT, "a.b", "x" * 129, 7, None, True, ["a"]]
HOSTILE_NAMES = [*HOSTILE_TEXT, "a..b", ".a", "a.", "a-b", 7, None, ["a"]]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def task(name: str = "canvas.add", **options: Any) -> dict[str, Any]:
    return {"task": name, "args": [1], "kwargs": {}, "options": options}


def message(**fields: Any) -> dict[str, Any]:
    return {"id": "m1", "task": "canvas.add", "args": [1, 2], "kwargs": {}, **fields}


def refused(data: Any, error: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(error)):
        TaskMessage.from_wire(data)


def header_member(**fields: Any) -> dict[str, Any]:
    """A message of a chord header member."""
    return message(chord={"id": "c1", "size": 2, "index": 0, "body": task("canvas.tsum")}, **fields)


# -- names and ids, wherever they are ---------------------------------------------------------

NAME_PLACES = {
    "task": lambda bad: message(task=bad),
    "link[0].task": lambda bad: message(link=[task(bad)]),
    "link_error[0].task": lambda bad: message(link_error=[task(bad)]),
    "chain[1].task": lambda bad: message(chain=[task(), task(bad)]),
    "chord.body.task": lambda bad: (
        header_member() | {"chord": {"id": "c1", "size": 1, "index": 0, "body": task(bad)}}
    ),
    "link[0].options.link[0].task": lambda bad: message(link=[task(link=[task(bad)])]),
    "link[0].tasks[1].task": lambda bad: message(
        link=[{"kind": "group", "tasks": [task(), task(bad)]}]
    ),
    "chain[0].header.tasks[0].task": lambda bad: message(
        chain=[{"kind": "chord", "header": {"kind": "group", "tasks": [task(bad)]}, "body": task()}]
    ),
    "chain[0].body.tasks[0].task": lambda bad: message(
        chain=[{"kind": "chord", "header": task(), "body": {"kind": "chain", "tasks": [task(bad)]}}]
    ),
}
ID_PLACES = {
    "id": lambda bad: message(id=bad),
    "group_id": lambda bad: message(group_id=bad),
    "root_id": lambda bad: message(root_id=bad),
    "parent_id": lambda bad: message(parent_id=bad),
    "chord.id": lambda bad: (
        header_member() | {"chord": {"id": bad, "size": 1, "index": 0, "body": task()}}
    ),
    "link[0].options.task_id": lambda bad: message(link=[task(task_id=bad)]),
    "link_error[0].options.task_id": lambda bad: message(link_error=[task(task_id=bad)]),
    "chain[0].options.task_id": lambda bad: message(chain=[task(task_id=bad)]),
    "chord.body.options.task_id": lambda bad: (
        header_member() | {"chord": {"id": "c1", "size": 1, "index": 0, "body": task(task_id=bad)}}
    ),
    "link[0].options.group_id": lambda bad: message(
        link=[{"kind": "group", "tasks": [task()], "options": {"group_id": bad}}]
    ),
    "chain[0].tasks[0].options.link_error[0].options.task_id": lambda bad: message(
        chain=[{"kind": "chain", "tasks": [task(link_error=[task(task_id=bad)])]}]
    ),
}


@pytest.mark.parametrize("bad", HOSTILE_NAMES, ids=repr)
@pytest.mark.parametrize("place", NAME_PLACES)
def test_hostile_task_names_are_refused_wherever_they_are(place: str, bad: Any) -> None:
    with pytest.raises(ProtocolError) as caught:
        TaskMessage.from_wire(NAME_PLACES[place](bad))
    assert f"field '{place}'" in str(caught.value)
    assert "\r" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("bad", HOSTILE_IDS, ids=repr)
@pytest.mark.parametrize("place", ID_PLACES)
def test_hostile_ids_are_refused_wherever_they_are(place: str, bad: Any) -> None:
    if bad is None and place in ("group_id", "root_id", "parent_id"):
        return  # null means absent
    with pytest.raises(ProtocolError) as caught:
        TaskMessage.from_wire(ID_PLACES[place](bad))
    assert f"field '{place}'" in str(caught.value)


def test_a_name_of_200_characters_is_the_longest() -> None:
    name = "a" * 200
    assert TaskMessage.from_wire(message(task=name, link=[task(name)])).task == name
    refused(message(link=[task(name + "a")]), "at most 200 characters")


def test_error_messages_show_hostile_values_cut_short() -> None:
    with pytest.raises(ProtocolError) as caught:
        TaskMessage.from_wire(message(link=[task("x" * 100_000)]))
    assert len(str(caught.value)) < 300


# -- fields of the message -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"v": 2}, "unsupported protocol version 2"),
        ({"v": 0}, "unsupported protocol version 0"),
        ({"v": True}, "field 'v' has the wrong type bool"),
        ({"retries": -1}, "field 'retries' must be between 0 and 10000000"),
        ({"retries": 10_000_001}, "field 'retries' must be between 0 and 10000000"),
        ({"retries": True}, "field 'retries' has the wrong type bool"),
        ({"eta": "tomorrow"}, "field 'eta': 'tomorrow' is not an RFC 3339 time"),
        ({"expires": "2030-02-30T00:00:00Z"}, "field 'expires': '2030-02-30T00:00:00Z' is not"),
        ({"eta": "9999-12-31T23:59:59-01:00"}, "field 'eta': '9999-12-31T23:59:59-01:00' is not"),
        ({"eta": 1.5}, "field 'eta' has the wrong type float"),
        ({"group_index": -1}, "field 'group_index' must be 0 or more"),
        ({"group_index": False}, "field 'group_index' has the wrong type bool"),
        ({"ignore_result": 1}, "field 'ignore_result' has the wrong type int"),
        ({"headers": {1: "a"}}, "field 'headers' must be a map with string keys"),
        ({"map": "reduce"}, "field 'map' must be map or starmap, not 'reduce'"),
        ({"args": 5}, "field 'args' must be a list, got int"),
        ({"kwargs": [1]}, "field 'kwargs' must be a map with string keys"),
        ({"link": [5]}, "field 'link[0]' must be a signature map, got int"),
        ({"chain": ["canvas.add"]}, "field 'chain[0]' must be a signature map, got str"),
    ],
)
def test_fields_are_checked(fields: dict[str, Any], error: str) -> None:
    refused(message(**fields), error)


@pytest.mark.parametrize(
    ("chord_field", "error"),
    [
        ({"id": "c1", "size": 2, "index": 0}, "field 'chord.body' is missing"),
        ({"size": 2, "index": 0, "body": task()}, "field 'chord.id' is not a valid id: None"),
        ({"id": "c1", "index": 0, "body": task()}, "field 'chord.size' is missing"),
        ({"id": "c1", "size": 0, "index": 0, "body": task()}, "field 'chord.size' must be 1"),
        ({"id": "c1", "size": "2", "index": 0, "body": task()}, "'chord.size' has the wrong type"),
        ({"id": "c1", "size": 2, "body": task()}, "field 'chord.index' is missing"),
        ({"id": "c1", "size": 2, "index": 2, "body": task()}, "field 'chord.index' must be 0"),
        ({"id": "c1", "size": 2, "index": -1, "body": task()}, "field 'chord.index' must be 0"),
        ({"id": "c1", "size": 2, "index": 0, "body": "x"}, "'chord.body' must be a signature map"),
        (
            {"id": "c1", "size": 2, "index": 0, "body": {"kind": "group", "tasks": []}},
            "field 'chord.body' holds no task",
        ),
    ],
)
def test_the_chord_field_is_checked(chord_field: dict[str, Any], error: str) -> None:
    refused(message(chord=chord_field), error)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"countdown": math.nan}, "field 'link[0].options.countdown' must be a finite number"),
        ({"countdown": math.inf}, "must be a finite number"),
        ({"countdown": 10**30}, "must be a finite number"),
        ({"countdown": True}, "field 'link[0].options.countdown' has the wrong type bool"),
        ({"countdown": "10"}, "has the wrong type str"),
        ({"eta": "tomorrow"}, "field 'link[0].options.eta': 'tomorrow' is not an RFC 3339 time"),
        ({"expires": -math.inf}, "field 'link[0].options.expires' must be a finite number"),
        ({"expires": [1]}, "field 'link[0].options.expires' has the wrong type list"),
        ({"ignore_result": "no"}, "field 'link[0].options.ignore_result' has the wrong type"),
        ({"headers": {2: 1}}, "field 'link[0].options.headers' must be a map with string keys"),
        ({"link": task()}, "field 'link[0].options.link' has the wrong type dict"),
        ({"link_error": [[]]}, "field 'link[0].options.link_error[0]' must be a signature map"),
        ({"task_id": None}, "field 'link[0].options.task_id' is not a valid id: None"),
    ],
)
def test_signature_options_are_checked(options: dict[str, Any], error: str) -> None:
    refused(message(link=[task(**options)]), error)


def test_signature_times_may_be_rfc3339_or_seconds() -> None:
    link = task(countdown=1.5, eta="2030-01-01T00:00:00Z", expires=-30)
    assert TaskMessage.from_wire(message(link=[link])).link == [link]


@pytest.mark.parametrize(
    ("signature", "error"),
    [
        ({"kind": "loop", "tasks": []}, "field 'link[0].kind' is not a signature kind: 'loop'"),
        ({"kind": None, "task": "a"}, "field 'link[0].kind' is not a signature kind: None"),
        ({"kind": ["task"], "task": "a"}, "is not a signature kind: ['task']"),
        ({"task": "a", "options": [1]}, "field 'link[0].options' has the wrong type list"),
        ({"task": "a", "args": {}}, "field 'link[0].args' must be a list, got dict"),
        ({"task": "a", "kwargs": {1: 1}}, "field 'link[0].kwargs' must be a map with string keys"),
        ({"task": "a", "immutable": "yes"}, "field 'link[0].immutable' has the wrong type str"),
        ({"task": "a", "map": ["map"]}, "field 'link[0].map' must be map or starmap"),
        ({"kind": "group"}, "field 'link[0].tasks' must be a list, got NoneType"),
        ({"kind": "chain", "tasks": []}, "field 'link[0].tasks' is empty"),
        ({"kind": "chord", "header": task()}, "field 'link[0].body' is missing"),
        ({"kind": "chord", "body": task()}, "field 'link[0].header' must be a signature map"),
        (
            {"kind": "group", "tasks": [task()], "options": {"link": [task()]}},
            "field 'link[0].options.link' is set on a group: a group has no link",
        ),
        (
            {"kind": "chain", "tasks": [task(), {"kind": "group", "tasks": [task()]}]}
            | {"options": {"link": [task()]}},
            "field 'link[0].options.link' is set on a chain ending in a group",
        ),
    ],
)
def test_signatures_are_checked(signature: dict[str, Any], error: str) -> None:
    refused(message(link=[signature]), error)


# -- what a chord header can hold ----------------------------------------------------------

GROUP = {"kind": "group", "tasks": [task(), task()]}
CHORD = {"kind": "chord", "header": GROUP, "body": task("canvas.tsum")}


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ({"kind": "group", "tasks": [GROUP]}, "field 'link[0].header.tasks[0]' is a group in a"),
        ({"kind": "group", "tasks": [CHORD]}, "field 'link[0].header.tasks[0]' is a chord in a"),
        (CHORD, "field 'link[0].header' is a chord in a chord header"),
        (
            {"kind": "chain", "tasks": [task(), GROUP]},
            "field 'link[0].header.tasks[1]' is a group in a chord header",
        ),
        (
            {
                "kind": "chain",
                "tasks": [task(), {"kind": "chain", "tasks": [task()], "options": {"x": 1}}],
            },
            "field 'link[0].header.tasks[1]' is a chain with options in a chain in a chord header",
        ),
    ],
)
def test_a_chord_header_holds_only_tasks_and_chains_of_tasks(
    header: dict[str, Any], error: str
) -> None:
    refused(message(link=[{"kind": "chord", "header": header, "body": task()}]), error)


def test_a_group_followed_by_steps_is_a_chord_header() -> None:
    steps = [task(), {"kind": "group", "tasks": [GROUP]}, task("canvas.tsum")]
    refused(message(chain=steps), "field 'chain[1].tasks[0]' is a group in a chord header")
    nested = {"kind": "chain", "tasks": [{"kind": "group", "tasks": [GROUP]}, task()]}
    refused(message(link=[nested]), "field 'link[0].tasks[0].tasks[0]' is a group in a chord")
    # Last in the chain, a group of groups is fine: nothing follows it.
    assert TaskMessage.from_wire(message(chain=[task(), {"kind": "group", "tasks": [GROUP]}]))


def test_the_steps_of_a_chord_member_stay_in_the_header() -> None:
    refused(header_member(chain=[GROUP]), "field 'chain[0]' is a group in a chord header")
    refused(header_member(chain=[CHORD]), "field 'chain[0]' is a chord in a chord header")
    assert TaskMessage.from_wire(header_member(chain=[task(), task()]))


def test_signatures_nest_at_most_32_deep() -> None:
    def nested(depth: int) -> dict[str, Any]:
        sig = task()
        for _ in range(depth - 1):
            sig = task(link=[sig])
        return sig

    assert TaskMessage.from_wire(message(link=[nested(MAX_NESTING)]))
    refused(message(link=[nested(MAX_NESTING + 1)]), "nested more than 32 signatures deep")
    refused(message(link=[nested(10_000)]), "nested more than 32 signatures deep")


# -- our own workflows pass ----------------------------------------------------------------


def workflows() -> list[Any]:
    return [
        add.s(1, 1),
        add.s(1).set(countdown=3, expires=60, link=mul.s(2), link_error=add.si(0, 0)),
        add.s(1) | mul.s(2) | add.s(3),
        group(add.s(i, i) for i in range(3)),
        add.s(1, 1) | group(add.s(1), mul.s(2) | add.s(3)) | tsum.s(),
        chord([add.s(1, 1), add.s(2, 2) | mul.s(3)], tsum.s() | mul.s(2)),
        chain(add.s(1, 1), chord([add.s(1), add.s(2)], tsum.s()), add.s(1)),
        group(group(add.s(1, 1), add.s(2, 2)), add.s(3, 3)),
        chord(group([], app=app), tsum.s()),
        add.map([1, 2]) | tsum.s(),
        add.chunks([(1, 2), (3, 4), (5, 6)], 2),
    ]


@pytest.mark.parametrize("flow", workflows(), ids=repr)
def test_every_message_our_workflows_send_is_valid(flow: Any) -> None:
    flow.freeze()
    sent = flow.messages([], [], Hop())
    for sent_message in sent:
        assert_valid_and_routable(sent_message)


# -- properties ----------------------------------------------------------------------------

ODD = st.sampled_from(HOSTILE_TEXT) | st.none() | st.booleans() | st.integers() | st.text()


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good``, and about one time in twenty something odd."""
    return st.integers(0, 19).flatmap(lambda n: ODD if n == 0 else good)


NAMES = mostly(st.sampled_from(["canvas.add", "canvas.mul", "canvas.tsum"]))
IDS = mostly(st.sampled_from(["id-1", "id_2", "id=3"]))
NUMBERS = mostly(st.integers() | st.floats())
TIMES = mostly(st.sampled_from(["2030-01-01T00:00:00Z", "2020-01-01T00:00:00+02:00", "tomorrow"]))


def options(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "task_id": IDS,
            "group_id": IDS,
            "countdown": NUMBERS,
            "eta": TIMES | NUMBERS,
            "expires": TIMES | NUMBERS,
            "link": mostly(st.lists(inner, max_size=2)),
            "link_error": st.lists(inner, max_size=2),
            "ignore_result": mostly(st.booleans()),
            "headers": st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
            "priority": ODD,
        },
    )


def task_signatures(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"task": NAMES},
        optional={
            # What a decoder can produce: msgpack's integers (JSON's are held to the same range).
            "args": mostly(st.lists(st.integers(-(2**63), 2**64 - 1), max_size=2)),
            "kwargs": mostly(st.just({})),
            "options": mostly(options(inner)),
            "immutable": mostly(st.booleans()),
            "map": mostly(st.sampled_from(["map", "starmap"])),
            "kind": mostly(st.just("task")),
        },
    )


def canvases(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    steps = st.lists(inner, max_size=3)
    return (
        task_signatures(inner)
        | st.fixed_dictionaries(
            {"kind": st.sampled_from(["group", "chain"]), "tasks": steps},
            optional={"options": options(inner)},
        )
        | st.fixed_dictionaries(
            {"kind": st.just("chord"), "header": inner},
            optional={"body": inner, "options": options(inner)},
        )
    )


PLAIN_TASKS = st.fixed_dictionaries({"task": NAMES}, optional={"args": st.just([1])})
SIGNATURES = st.recursive(PLAIN_TASKS, canvases, max_leaves=6)
CHORD_FIELDS = st.fixed_dictionaries(
    {"id": IDS, "size": mostly(st.integers(0, 3)), "index": mostly(st.integers(-1, 3))},
    optional={"body": SIGNATURES},
)
MESSAGES = st.fixed_dictionaries(
    {"id": IDS, "task": NAMES},
    optional={
        "args": mostly(st.lists(st.integers(), max_size=2)),
        "link": mostly(st.lists(SIGNATURES, max_size=2)),
        "link_error": st.lists(SIGNATURES, max_size=2),
        "chain": st.lists(SIGNATURES, max_size=3),
        "chord": mostly(CHORD_FIELDS),
        "eta": TIMES,
        "expires": TIMES,
        "group_index": mostly(st.integers(-2, 3)),
        "retries": mostly(st.integers(-1, 3)),
        "v": mostly(st.just(1)),
    },
)


@SETTINGS
@given(MESSAGES)
def test_any_message_is_refused_with_a_protocol_error_or_safe_to_route(data: Any) -> None:
    try:
        read = TaskMessage.from_wire(data)
    except ProtocolError as exc:
        assert len(str(exc)) < 600
        return
    assert_valid_and_routable(read)


KEYS = ["id", "task", "kind", "tasks", "header", "body", "options", "link", "chain", "chord"]
KEYS += ["task_id", "group_id", "size", "index", "args", "kwargs", "countdown", "eta"]
ANY_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(KEYS) | st.text(max_size=3),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@SETTINGS
@given(ANY_VALUES)
def test_any_decoded_value_is_refused_with_a_protocol_error_only(data: Any) -> None:
    with contextlib.suppress(ProtocolError):
        TaskMessage.from_wire(data)


def assert_valid_and_routable(read: TaskMessage) -> None:
    """Every name and id in ``read`` is safe in a subject, and what a worker sends after it
    (built here without a server, as actors/worker/continuations.py and chords.py do) is valid."""
    for name in names_in(read):
        topology.task_subject(name)
    for task_id in ids_in(read):
        topology.subject_token(task_id)
    for sent in sent_after(read):
        again = TaskMessage.from_wire(decode(encode(sent.to_wire()), None))
        assert again == sent
        for name in names_in(again):
            topology.task_subject(name)


def sent_after(read: TaskMessage) -> list[TaskMessage]:
    """The messages a worker publishes after ``read`` succeeded and after it failed."""
    hop = Hop(root_id=read.root_id or read.id, parent_id=read.id)
    out: list[TaskMessage] = []
    for index, wire in enumerate(read.link):
        out += frozen(wire, f"{read.id}.link.{index}").messages([1], [], hop)
    for index, wire in enumerate(read.link_error):
        errback = frozen(wire, f"{read.id}.{read.id}.errback.{index}")
        out += errback.messages([read.id, {"type": "x"}, "trace"], [], hop)
    if read.chain:
        carried = Hop(hop.root_id, hop.parent_id, read.chord, read.group_id, read.group_index)
        out += frozen(read.chain[0], f"{read.id}.next").messages([1], read.chain[1:], carried)
        for wire in read.chain:  # when the task failed: the steps that will not run
            assert all(t.task for t in from_wire(wire, app).tasks_in())
    if read.chord and not read.chain:
        chord_id = read.chord["id"]
        out += frozen(read.chord["body"], f"{chord_id}.body").messages([[1]], [], hop)
        first = frozen(read.chord["body"], f"{chord_id}.body").tasks_in()[0]  # chord failed
        for index, wire in enumerate(first.options.get("link_error") or []):
            out += frozen(wire, f"{read.id}.{first.id}.errback.{index}").messages([], [], hop)
    return out


def frozen(wire: dict[str, Any], seed: str) -> Any:
    sig = from_wire(wire, app)
    sig.freeze(seed)
    return sig


def names_in(read: TaskMessage) -> list[str]:
    wires = [*read.link, *read.link_error, *read.chain]
    if read.chord:
        wires.append(read.chord["body"])
    return [read.task, *(t.task for w in wires for t in from_wire(w, app).tasks_in())]


def ids_in(read: TaskMessage) -> list[str]:
    found = [read.id, read.group_id, read.root_id, read.parent_id]
    found += [(read.chord or {}).get("id")]
    wires = [*read.link, *read.link_error, *read.chain]
    if read.chord:
        wires.append(read.chord["body"])
    found += [t.id for w in wires for t in from_wire(w, app).tasks_in()]
    return [task_id for task_id in found if task_id is not None]


# -- the guard, decoding, clipping ---------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [INJECTION, "a\rb", "a\nb", "a\x00b", "a b", "a\tb", "*", ">", "a*", "", "a.b"], ids=repr
)
def test_the_subject_guard_refuses_what_nats_would_misread(bad: str) -> None:
    with pytest.raises(ProtocolError, match="cannot be a NATS subject token"):
        topology.subject_token(bad)


@pytest.mark.parametrize("bad", ["a\x7fb", "a\x1bb", "a\u2028b", "a\u00a0b"], ids=repr)
def test_the_subject_guard_refuses_any_control_character_or_space(bad: str) -> None:
    with pytest.raises(ProtocolError):
        topology.subject_token(bad)
    assert topology.subject_token("tâche-1=") == "tâche-1="


@pytest.mark.parametrize("bad", ["a b", INJECTION, "", "a..b", ".a", "a.", "a.*", "a.>"])
def test_subjects_built_from_data_go_through_the_guard(bad: str) -> None:
    for build in (
        topology.task_subject,
        topology.schedule_subject,
        topology.result_subject,
        topology.chord_counter_subject,
        lambda key: topology.kv_subject(topology.CHORDS_BUCKET, key),
    ):
        with pytest.raises(ProtocolError):
            build(bad)


def test_dead_letters_of_unnamed_tasks_go_to_one_subject() -> None:
    assert topology.dead_subject("a b\r\n") == "actors.dead._invalid"


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", INJECTION])
def test_header_values_refuse_cr_lf_and_nul(bad: str) -> None:
    with pytest.raises(ProtocolError, match="cannot be a NATS header value"):
        topology.header_value(bad)
    assert topology.header_value("a b*>.") == "a b*>."


def test_decode_errors_do_not_carry_the_body() -> None:
    body = msgpack.packb({"id": "a1"}) + b"SECRET" * 100_000
    with pytest.raises(ProtocolError) as caught:
        decode(body, None)
    assert "SECRET" not in str(caught.value)
    assert "ExtraData" in str(caught.value)
    assert len(str(caught.value)) < 300
    with pytest.raises(ProtocolError) as caught:
        decode(b"{}", "x" * 100_000)
    assert len(str(caught.value)) < 300


@given(st.text(max_size=3000), st.integers(min_value=0, max_value=2000))
def test_clip_text_caps_the_length_and_says_how_much_was_cut(text: str, limit: int) -> None:
    clipped = clip_text(text, limit)
    assert len(clipped) <= limit
    if len(text) <= limit:
        assert clipped == text
    elif found := re.search(r"\.\.\.\[truncated (\d+) chars\]$", clipped):
        kept = clipped[: found.start()]
        assert text.startswith(kept) and len(kept) + int(found.group(1)) == len(text)
    else:
        assert clipped == text[:limit]  # no room for the marker


def test_clip_text_on_one_line() -> None:
    assert clip_text("a\r\nb\x00", one_line=True) == "a  b "
    assert clip_text("x" * 2000) == "x" * 975 + "...[truncated 1025 chars]"


def test_task_names_over_200_characters_cannot_be_registered() -> None:
    assert topology.validate_task_name("x" * 200)
    with pytest.raises(ConfigurationError, match="at most 200 characters"):
        topology.validate_task_name("x" * 201)


@pytest.mark.parametrize(
    "chain",
    [
        [{"kind": "group", "tasks": [{"task": "canvas.add"}]}, {"kind": "group", "tasks": []}],
        [
            {
                "kind": "chain",
                "tasks": [
                    {"kind": "group", "tasks": [{"task": "canvas.add"}]},
                    {"kind": "group", "tasks": []},
                ],
            }
        ],
    ],
)
def test_steps_after_a_group_must_hold_a_task(chain: list[Any]) -> None:
    # Found by hypothesis: the steps after a group become a chord body, and an empty one
    # was accepted here but refused when the worker built the body.
    with pytest.raises(ProtocolError, match="holds no task"):
        TaskMessage.from_wire({"id": "id-1", "task": "canvas.add", "chain": chain})


_STEP_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from(["task", "chain", "group", "", "t1", "bad name!", "canvas.add", "map"]),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["task_id", "queue", "x"]), st.sampled_from(["t1", "", 3])),
    st.dictionaries(st.one_of(st.integers(0, 2), st.text(max_size=2)), st.integers(), max_size=2),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.dictionaries(
        st.sampled_from(["kind", "task", "args", "kwargs", "options", "immutable", "map"]),
        _STEP_VALUES,
        max_size=2,
    )
)
def test_the_fast_check_of_a_plain_step_accepts_nothing_the_full_check_refuses(
    changes: dict[str, Any],
) -> None:
    from actors.wire import validation

    step = {"task": "canvas.add", "args": [1], "kwargs": {}, "options": {"task_id": "t1"}}
    step.update(changes)  # a valid step with one or two fields changed
    if not validation._is_plain_task(step):
        return
    with mock.patch.object(validation, "_is_plain_task", lambda data: False):
        assert validation._check_signature(step, "chain[0]", 1) == 1


def test_a_plain_step_is_taken_by_the_fast_check() -> None:
    from actors.wire import validation

    step = {"task": "canvas.add", "args": [1], "kwargs": {}, "options": {"task_id": "t1"}}
    assert validation._is_plain_task(step)
    assert not validation._is_plain_task({**step, "options": {"task_id": "bad id!"}})
