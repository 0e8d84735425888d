"""Remote control requests and replies (core NATS request/reply). Pure: no I/O.

A request goes to ``actors.control.<command>`` (every worker) or
``actors.control.<worker token>.<command>`` (one worker); its body is a JSON object of the
command's arguments. The command is read from the subject, never from the body: NATS
permissions can then allow a client role the read-only commands and refuse it the others
(deploy/nats/permissions.conf). Every worker answers with ``{"worker": <hostname>, "reply":
<reply>}``, where a reply is a command's value, or ``{"ok": ...}`` / ``{"error": ...}`` as in
Celery. docs/protocol.md "Remote control" is the specification.
"""

from __future__ import annotations

import json
import math
from typing import Any

from actors.backoff import parse_rate
from actors.errors import ConfigurationError, ProtocolError
from actors.wire import topology

INSPECT_COMMANDS = ("ping", "active", "reserved", "scheduled", "registered", "stats", "conf")
"""Commands that only read a worker's state: a client role may send them."""
CHANGE_COMMANDS = ("rate_limit", "time_limit", "shutdown", "add_consumer", "cancel_consumer")
"""Commands that change a worker: an operator's privilege."""
COMMANDS = INSPECT_COMMANDS + CHANGE_COMMANDS

MAX_REQUEST_BYTES = 16 * 1024
"""A larger request body is refused unread: no command needs more."""


def control_subject(command: str, destination: str | None = None) -> str:
    """Subject of ``command`` for every worker, or for the worker named ``destination``."""
    if command not in COMMANDS:
        raise ConfigurationError(f"unknown control command {command!r}; use one of {COMMANDS}")
    if destination is None:
        return topology.CONTROL_PREFIX + command
    return f"{topology.CONTROL_PREFIX}{topology.worker_token(destination)}.{command}"


def worker_subjects(hostname: str) -> tuple[str, str]:
    """What a worker subscribes to: every broadcast command, and those aimed at it."""
    return (
        topology.CONTROL_PREFIX + "*",
        f"{topology.CONTROL_PREFIX}{topology.worker_token(hostname)}.*",
    )


def command_of(subject: str) -> str:
    """The command a control subject names; ProtocolError for an unknown one."""
    command = subject.rsplit(".", 1)[-1]
    if not subject.startswith(topology.CONTROL_PREFIX) or command not in COMMANDS:
        raise ProtocolError(f"unknown control command {command[:50]!r}")
    return command


def encode_request(arguments: dict[str, Any] | None = None) -> bytes:
    """The body of a request: its arguments as a JSON object."""
    return json.dumps(arguments or {}, separators=(",", ":")).encode()


def decode_request(command: str, data: bytes) -> dict[str, Any]:
    """The checked arguments of a request for ``command``; ProtocolError says what is wrong.

    The body arrives over NATS from anyone allowed to publish there: it is untrusted. An
    empty body means no arguments; unknown fields are ignored.
    """
    if len(data) > MAX_REQUEST_BYTES:
        raise ProtocolError(f"request of {len(data)} bytes is over {MAX_REQUEST_BYTES}")
    if not data.strip():
        body: Any = {}
    else:
        try:
            body = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"request is not JSON: {str(exc)[:100]}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"request must be a JSON object, got {type(body).__name__}")
    if command == "rate_limit":
        rate = body.get("rate_limit")
        if rate is not None and rate != "":
            try:
                rate = str(parse_rate(rate))
            except ConfigurationError as exc:
                raise ProtocolError(str(exc)) from None
        return {"task_name": _task_name(body, "task_name"), "rate_limit": rate or None}
    if command == "time_limit":
        soft, hard = _seconds(body, "soft"), _seconds(body, "hard")
        if soft is not None and hard is not None and soft > hard:
            raise ProtocolError(f"soft limit {soft:g}s is over the hard limit {hard:g}s")
        return {"task_name": _task_name(body, "task_name"), "soft": soft, "hard": hard}
    if command in ("add_consumer", "cancel_consumer"):
        return {"actor": _task_name(body, "actor")}
    return {}


def _task_name(body: dict[str, Any], field: str) -> str:
    name = body.get(field)
    if not topology.valid_task_name(name):
        raise ProtocolError(f"{field} must be a task name, got {str(name)[:100]!r}")
    assert isinstance(name, str)
    return name


def _seconds(body: dict[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{field} must be seconds (a number) or null, got {value!r:.50}")
    if not math.isfinite(value) or value < 0 or value > 10**9:
        raise ProtocolError(f"{field} must be from 0 to 1e9 seconds, got {value!r}")
    return float(value) or None  # 0 removes the limit, as in Celery


def ok(text: str) -> dict[str, Any]:
    """A command's success reply, Celery's ``{"ok": text}``."""
    return {"ok": text}


def error(text: str) -> dict[str, Any]:
    """A command's error reply, Celery's ``{"error": text}``."""
    return {"error": text}


def encode_reply(hostname: str, reply: Any) -> bytes:
    """A worker's reply. Values JSON cannot hold (bytes, sets, objects) are sent as repr()."""
    return json.dumps({"worker": hostname, "reply": reply}, default=repr).encode()


def decode_reply(data: bytes) -> tuple[str, Any] | None:
    """``(worker, reply)`` of a reply body, or None when it is not one (ignored)."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("worker"), str):
        return None
    return body["worker"], body.get("reply")
