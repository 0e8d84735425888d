"""Custom states in result records: validated names, read as not ready."""

from __future__ import annotations

import pytest

from actors.errors import ProtocolError
from actors.wire.message import encode
from actors.wire.record import ResultRecord, check_custom_state, valid_state


def test_custom_states_are_uppercase_tokens_and_not_final() -> None:
    assert check_custom_state("PROGRESS") == "PROGRESS"
    assert check_custom_state("STEP_2") == "STEP_2"
    for bad in ("progress", "", "A" * 65, "PRO GRESS", "2FAST", None, 3):
        assert not valid_state(bad)
        with pytest.raises(ValueError, match="not a state name"):
            check_custom_state(bad)
    for reserved in ("SUCCESS", "FAILURE", "REVOKED", "PENDING"):
        with pytest.raises(ValueError, match="reserved"):
            check_custom_state(reserved)


def test_a_record_in_an_unknown_state_is_read_as_not_ready() -> None:
    record = ResultRecord.from_bytes(encode({"id": "t1", "status": "SOMETHING_NEW", "x": 1}))
    assert record.status == "SOMETHING_NEW" and not record.ready
    with pytest.raises(ProtocolError, match="status"):
        ResultRecord.from_bytes(encode({"id": "t1", "status": "bad state"}))


def test_children_are_task_ids() -> None:
    record = ResultRecord(id="t1", status="SUCCESS", children=["c1", "c2"])
    assert ResultRecord.from_bytes(record.to_bytes()).children == ["c1", "c2"]
    assert b"children" not in ResultRecord(id="t1", status="SUCCESS").to_bytes()
    with pytest.raises(ProtocolError, match="children"):
        ResultRecord.from_bytes(encode({"id": "t1", "status": "SUCCESS", "children": ["a b"]}))
