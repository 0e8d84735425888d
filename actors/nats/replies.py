"""What JetStream answers, read from the wire: PubAcks, refusals and stored messages."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg

from actors.errors import BrokerUnavailable
from actors.nats.codes import JS_UNAVAILABLE
from actors.nats.retrying import NotReady


@dataclass(frozen=True, slots=True)
class PublishAck:
    """The stream's answer to a publish."""

    seq: int
    duplicate: bool = False
    """True when the server dropped the message as a repeat of its ``Nats-Msg-Id``."""
    total: int | None = None
    """For an addition to a ``Nats-Incr`` counter: the counter's new total."""


class PublishRefused(BrokerUnavailable):
    """JetStream refused to store a message; ``code`` is its error code (actors.nats.codes)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class StoredMessage:
    """A message read directly from a stream (not through a consumer)."""

    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]
    time: datetime


def stream_message(message: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a message as the stream message API (``STREAM.MSG.GET``) sends
    it: base64 data, and a base64 ``NATS/1.0`` header block."""
    data = base64.b64decode(message.get("data") or "")
    block = base64.b64decode(message.get("hdrs") or "").decode(errors="replace")
    headers: dict[str, str] = {}
    for line in block.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return data, headers


def read_ack(subject: str, reply: Msg) -> PublishAck:
    """The stream's answer to a publish; NotReady (retryable) or PublishRefused when the
    stream refused it."""
    try:
        ack = json.loads(reply.data)
    except ValueError as exc:
        raise BrokerUnavailable(f"publish to {subject}: unreadable answer {exc!r}") from exc
    error = ack.get("error")
    if error:
        code = error.get("err_code")
        refusal = f"publish to {subject} refused: {error.get('description')}"
        raise NotReady(refusal) if code == JS_UNAVAILABLE else PublishRefused(refusal, code)
    total = ack.get("val")
    return PublishAck(
        int(ack["seq"]), bool(ack.get("duplicate")), None if total is None else int(total)
    )
