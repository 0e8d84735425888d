"""Remote control requests and replies (actors/wire/control.py) and the worker's answers to
hostile requests (actors/worker/remote_control.py), without a server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import App
from actors.errors import ConfigurationError, ProtocolError
from actors.wire import control, topology
from actors.worker import Worker


def test_subjects() -> None:
    assert control.control_subject("ping") == "actors.control.ping"
    assert (
        control.control_subject("stats", "12@web.example") == "actors.control.12@web_example.stats"
    )
    assert control.worker_subjects("12@web.example") == (
        "actors.control.*",
        "actors.control.12@web_example.*",
    )
    assert control.command_of("actors.control.12@web_example.shutdown") == "shutdown"
    with pytest.raises(ConfigurationError):
        control.control_subject("reboot")
    with pytest.raises(ProtocolError):
        control.command_of("actors.control.reboot")


@pytest.mark.parametrize("hostname", ["1@a b", "1@a\r\nPUB x 1", "1@*", "1@>", "", "1@a.b.c"])
def test_any_hostname_makes_one_safe_token(hostname: str) -> None:
    token = topology.worker_token(hostname)
    assert token and not set(token) & set(" \r\n\t*>.")


def test_requests_are_checked() -> None:
    decode = control.decode_request
    assert decode("ping", b"") == {}
    assert decode("ping", b'{"anything": 1}') == {}  # unknown fields ignored
    assert decode("rate_limit", b'{"task_name": "a.b", "rate_limit": "10/m"}') == {
        "task_name": "a.b",
        "rate_limit": "10/m",
    }
    assert decode("rate_limit", b'{"task_name": "a", "rate_limit": null}')["rate_limit"] is None
    assert decode("time_limit", b'{"task_name": "a", "soft": 1, "hard": 2.5}') == {
        "task_name": "a",
        "soft": 1.0,
        "hard": 2.5,
    }
    assert decode("add_consumer", b'{"actor": "a.b"}') == {"actor": "a.b"}
    bad = [
        ("ping", b"\xff"),
        ("ping", b"[1]"),
        ("ping", b"{" * 50_000),
        ("ping", b" " * (control.MAX_REQUEST_BYTES + 1)),
        ("rate_limit", b'{"task_name": "a", "rate_limit": "fast"}'),
        ("rate_limit", b'{"task_name": "a", "rate_limit": "0/s"}'),
        ("rate_limit", b'{"task_name": "a b", "rate_limit": "1/s"}'),
        ("time_limit", b'{"task_name": "a", "soft": 3, "hard": 2}'),
        ("time_limit", b'{"task_name": "a", "hard": -1}'),
        ("time_limit", b'{"task_name": "a", "hard": true}'),
        ("time_limit", b'{"task_name": "a", "hard": "1"}'),
        ("time_limit", b'{"task_name": "a", "hard": 1e999}'),
        ("add_consumer", b"{}"),
        ("cancel_consumer", b'{"actor": "x\\r\\nPUB"}'),
    ]
    for command, body in bad:
        with pytest.raises(ProtocolError):
            decode(command, body)


@given(st.sampled_from(control.COMMANDS), st.binary(max_size=300))
def test_any_body_is_arguments_or_a_protocol_error(command: str, body: bytes) -> None:
    try:
        arguments = control.decode_request(command, body)
    except ProtocolError:
        return
    assert isinstance(arguments, dict)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


@given(st.sampled_from(control.COMMANDS), st.dictionaries(st.text(max_size=12), json_values))
def test_any_json_object_is_arguments_or_a_protocol_error(command: str, body: Any) -> None:
    try:
        arguments = control.decode_request(command, json.dumps(body).encode())
    except ProtocolError:
        return
    assert json.loads(json.dumps(arguments, allow_nan=False)) == arguments


def test_replies_round_trip_and_junk_is_ignored() -> None:
    data = control.encode_reply("1@h", {"ok": "pong", "raw": b"\x00"})
    assert control.decode_reply(data) == ("1@h", {"ok": "pong", "raw": "b'\\x00'"})
    for junk in (b"", b"\xff", b"[]", b'{"reply": 1}', b'{"worker": 5}'):
        assert control.decode_reply(junk) is None


def test_the_worker_answers_every_hostile_request_with_an_error() -> None:
    app = App("unit")

    @app.actor(name="unit.add")
    def add(x: int, y: int) -> int:
        return x + y

    worker = Worker(app, hostname="1@unit")
    handle = worker.remote_control.handle

    async def ask(subject: str, body: bytes) -> Any:
        worker_name, reply = control.decode_reply(await handle(subject, body)) or ("", None)
        assert worker_name == "1@unit"
        return reply

    async def main() -> None:
        assert await ask("actors.control.ping", b"") == {"ok": "pong"}
        for subject, body in [
            ("actors.control.reboot", b""),
            ("actors.control.rate_limit", b"\xc1"),
            ("actors.control.rate_limit", b'{"task_name": "unit.add", "rate_limit": "x"}'),
            ("actors.control.rate_limit", b'{"task_name": "unit.nope", "rate_limit": "1/s"}'),
            ("actors.control.time_limit", b'{"task_name": "unit.add", "hard": "soon"}'),
            ("actors.control.cancel_consumer", b'{"actor": "unit.nope"}'),
            ("actors.control.add_consumer", b'{"actor": "os.system"}'),
        ]:
            assert "error" in await ask(subject, body), subject
        assert add.options.rate_limit is None
        reply = await ask(
            "actors.control.1@unit.time_limit", b'{"task_name": "unit.add", "soft": 1, "hard": 2}'
        )
        assert reply == {"ok": "time limits set successfully"}
        assert (add.options.soft_time_limit, add.options.time_limit) == (1.0, 2.0)
        assert add.options.pool == "thread"  # a hard limit does not move it to processes
        conf = await ask("actors.control.conf", b"")
        assert conf["nats_password"] is None and "nats_url" in conf

    asyncio.run(main())


def test_conf_hides_secrets() -> None:
    app = App("unit", nats_url="nats://me:s3cret@127.0.0.1:4222", nats_token="t0ken")

    @app.actor(name="unit.noop")
    def noop() -> None:
        return None

    worker = Worker(app, hostname="1@unit")
    data = asyncio.run(worker.remote_control.handle("actors.control.conf", b""))
    assert b"s3cret" not in data and b"t0ken" not in data
    assert control.decode_reply(data) is not None
