"""Result records are data, not instructions: every field is type-checked, and exception types
are resolved without importing or running anything."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.client.results import _outcome
from actors.errors import ProtocolError, TaskFailed
from actors.wire.record import FAILURE, SUCCESS, ResultRecord, rebuild_exception

GOOD = {"id": "t1", "status": SUCCESS, "result": 3, "retries": 0, "v": 1}


def pack(value: Any) -> bytes:
    return msgpack.packb(value)


def test_a_good_record_parses_and_unknown_fields_are_ignored() -> None:
    record = ResultRecord.from_bytes(pack({**GOOD, "future_field": {"x": 1}}))
    assert (record.id, record.status, record.result) == ("t1", SUCCESS, 3)


@pytest.mark.parametrize(
    "forged",
    [
        [1, 2],
        "SUCCESS",
        {"status": SUCCESS},
        {**GOOD, "id": 5},
        {**GOOD, "id": "a b"},
        {**GOOD, "id": "x" * 129},
        {**GOOD, "status": "won"},  # custom states (PROGRESS) are uppercase tokens
        {**GOOD, "status": ["SUCCESS"]},
        {**GOOD, "task": 7},
        {**GOOD, "traceback": {"a": 1}},
        {**GOOD, "date_done": 1.5},
        {**GOOD, "worker": ["w"]},
        {**GOOD, "retries": "1"},
        {**GOOD, "retries": -1},
        {**GOOD, "retries": True},
        {**GOOD, "v": "1"},
        {**GOOD, "status": FAILURE, "error": "boom"},
        {**GOOD, "status": FAILURE, "error": {"type": 1, "message": "m"}},
        {**GOOD, "status": FAILURE, "error": {"type": "ValueError"}},
        {**GOOD, "status": FAILURE, "error": {"type": "ValueError", "message": ["m"]}},
        {**GOOD, "status": FAILURE, "error": {"type": "ValueError", "message": "m", "args": 5}},
    ],
)
def test_a_malformed_record_is_a_protocol_error(forged: Any) -> None:
    with pytest.raises(ProtocolError):
        ResultRecord.from_bytes(pack(forged))


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from([*GOOD, "error", "task", "worker", "traceback", "date_done"])


@given(st.dictionaries(FIELDS, VALUES))
def test_records_with_fields_of_any_type_parse_or_raise_protocol_error(fields: Any) -> None:
    try:
        record = ResultRecord.from_bytes(pack({**GOOD, **fields}))
    except ProtocolError:
        return
    assert isinstance(record.retries, int)
    _outcome(record)  # a value or an exception object, never a TypeError


def failure(type_name: str, args: list[Any] | None = None) -> BaseException:
    error: dict[str, Any] = {"type": type_name, "message": "forged"}
    if args is not None:
        error["args"] = args
    return rebuild_exception(error, None)


def test_known_exception_types_are_rebuilt() -> None:
    rebuilt = failure("ValueError", ["bad"])
    assert type(rebuilt) is ValueError and rebuilt.args == ("bad",)
    assert type(failure("json.decoder.JSONDecodeError", ["m", "doc", 0])) is json.JSONDecodeError


@pytest.mark.parametrize(
    "type_name",
    ["builtins.SystemExit", "SystemExit", "KeyboardInterrupt", "os.system", "sys.exit", "a..b"],
)
def test_non_exceptions_and_base_exceptions_are_not_rebuilt(type_name: str) -> None:
    assert isinstance(failure(type_name), TaskFailed)


def test_a_lazy_module_getattr_is_never_called() -> None:
    calls: list[str] = []
    probe = types.ModuleType("actors_lazy_probe")

    def lazy(name: str) -> Any:
        calls.append(name)
        return ValueError

    probe.__getattr__ = lazy  # type: ignore[method-assign]
    sys.modules["actors_lazy_probe"] = probe
    try:
        assert isinstance(failure("actors_lazy_probe.Anything"), TaskFailed)
    finally:
        del sys.modules["actors_lazy_probe"]
    assert calls == []


def test_forged_type_names_import_nothing() -> None:
    """In a fresh interpreter, where the named modules are not imported yet."""
    script = textwrap.dedent(
        """
        import json, sys
        import msgpack
        from actors.client.results import AsyncResult, _outcome
        from actors.wire.record import ResultRecord
        names = ["multiprocessing.Process", "multiprocessing.ProcessError",
                 "tarfile.ReadError", "smtplib.SMTPException", "xml.dom.DOMException",
                 "os.system", "builtins.SystemExit", "concurrent.futures.process.BrokenProcessPool"]
        lazy = ["multiprocessing", "tarfile", "smtplib", "xml.dom", "concurrent.futures.process"]
        before = set(sys.modules)
        kinds = []
        for name in names:
            body = msgpack.packb({"id": "t", "status": "FAILURE",
                                  "error": {"type": name, "message": "m", "args": ["ls"]}})
            kinds.append(type(_outcome(ResultRecord.from_bytes(body))).__name__)
        print(json.dumps({"kinds": kinds, "imported_before": [m for m in lazy if m in before],
                          "new": sorted(set(sys.modules) - before)}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(out.stdout)
    assert report["imported_before"] == []  # otherwise this test proves nothing
    assert report["new"] == []
    assert set(report["kinds"]) == {"TaskFailed"}
