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


def test_a_task_signature_and_a_chord_body_get_the_msg_id() -> None:
    [one] = replacement_messages(_replaced(), replace_signal(signature("t.a")), True, 3)
    assert (one.id, one.msg_id) == ("T", derived_id("T.replaced.3"))
    sig = chord([signature("t.a"), signature("t.a")], signature("t.sum"))
    members = replacement_messages(_replaced(), replace_signal(sig), True, 3)
    assert len(members) == 2 and {m.id for m in members}.isdisjoint({"T"})
    [body, after] = members[0].chord["body"]["tasks"]  # type: ignore[index]
    assert (body["options"]["task_id"], body["options"]["msg_id"]) == ("T", one.msg_id)
    assert after["task"] == "t.after"  # the rest of the replaced task's chain


def test_a_group_or_a_bad_msg_id_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="with a group"):
        replace_signal(group(signature("t.a")))
    bad = signature("t.a")
    bad.options["msg_id"] = "a\r\nNats-Rollup: all"
    with pytest.raises(ProtocolError, match="header value"):
        bad.messages([], [], Hop())
