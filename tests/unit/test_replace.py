"""The messages a replaced task publishes: deterministic ids, and a msg id not its task id."""

from __future__ import annotations

import pytest

from actors import ConfigurationError, ProtocolError, chain, chord, group, signature
from actors.replace import replace_signal, replacement_messages
from actors.signature import Hop
from actors.wire.ids import derived_id
from actors.wire.message import TaskMessage


def _replaced() -> TaskMessage:
    after = signature("t.after").to_wire()
    return TaskMessage(id="T", task="t.replaced", link=[after], chain=[after])


def test_a_chain_ends_under_the_task_id_with_a_derived_msg_id() -> None:
    message = _replaced()
    signal = replace_signal(chain(signature("t.a", args=(1,)), signature("t.b")))
    first = replacement_messages(message, signal, store=True, delivery_seq=7)
    again = replacement_messages(message, signal, store=True, delivery_seq=7)
    assert [m.to_wire() for m in first] == [m.to_wire() for m in again]  # a redelivery
    [step] = first
    assert step.id == derived_id("T.replaced.7.0") and step.msg_id is None
    [last, after] = step.chain
    assert last["options"]["task_id"] == "T"
    assert last["options"]["msg_id"] == derived_id("T.replaced.7") != "T"
    assert last["options"]["link"] == message.link and after == message.chain[0]
    # the continuation that publishes the last step uses that msg id
    [published] = signature(last).messages([1], [], Hop())
    assert (published.id, published.msg_id) == ("T", derived_id("T.replaced.7"))


def test_a_chains_own_link_and_the_tasks_link_both_follow_the_last_step() -> None:
    own = chain(signature("t.a"), signature("t.b")).set(link=signature("t.own"))
    [step] = replacement_messages(_replaced(), replace_signal(own), True, 1)
    links = step.chain[0]["options"]["link"]
    assert [link["task"] for link in links] == ["t.own", "t.after"]


def test_a_task_signature_and_a_chord_body_get_the_msg_id() -> None:
    [one] = replacement_messages(_replaced(), replace_signal(signature("t.a")), True, 3)
    assert (one.id, one.msg_id) == ("T", derived_id("T.replaced.3"))
    sig = chord([signature("t.a"), signature("t.a")], signature("t.sum"))
    members = replacement_messages(_replaced(), replace_signal(sig), True, 3)
    assert len(members) == 2 and {m.id for m in members}.isdisjoint({"T"})
    [body, after] = members[0].chord["body"]["tasks"]  # type: ignore[index]
    assert (body["options"]["task_id"], body["options"]["msg_id"]) == ("T", one.msg_id)
    assert after["task"] == "t.after"  # the rest of the replaced task's chain


def test_a_group_becomes_a_chord_whose_body_accumulates() -> None:
    signal = replace_signal(group(signature("t.a"), signature("t.b")))
    members = replacement_messages(TaskMessage(id="T", task="t.r"), signal, True, 5)
    assert [m.task for m in members] == ["t.a", "t.b"]
    assert [m.id for m in members] == [derived_id(f"T.replaced.5.h.{i}") for i in (0, 1)]
    spec = members[0].chord
    assert spec is not None and spec["id"] == derived_id("T.replaced.5.h.g")
    body = spec["body"]
    assert body["task"] == "actors.accumulate" and body["options"]["task_id"] == "T"
    assert body["options"]["msg_id"] == derived_id("T.replaced.5")


def test_a_chord_cannot_replace_a_chord_member_nor_a_bad_msg_id_be_sent() -> None:
    member = TaskMessage(id="M", task="t.r", chord={"id": "C", "size": 2, "index": 0, "body": {}})
    with pytest.raises(ConfigurationError, match="cannot be replaced with a chord"):
        replace_signal(group(signature("t.a")), member)
    bad = signature("t.a")
    bad.options["msg_id"] = "a\r\nNats-Rollup: all"
    with pytest.raises(ProtocolError, match="header value"):
        bad.messages([], [], Hop())
