"""Reading the messages of a stream without direct gets (``STREAM.MSG.GET``): for streams
created without ``allow_direct``, such as ACTORS_SCHEDULED (``inspect scheduled``)."""

from __future__ import annotations

import json
from typing import Any

from actors.errors import BrokerUnavailable
from actors.nats.broker import Broker
from actors.nats.connection import NATS_ERRORS
from actors.nats.replies import stream_message


async def scan(
    broker: Broker, stream: str, subject: str, limit: int
) -> list[tuple[bytes, dict[str, str]]]:
    """Body and headers of the first ``limit`` messages of ``stream`` on ``subject``."""
    out: list[tuple[bytes, dict[str, str]]] = []
    seq = 1
    api = f"$JS.API.STREAM.MSG.GET.{stream}"
    while len(out) < limit:
        request = json.dumps({"next_by_subj": subject, "seq": seq}).encode()
        try:
            reply = await broker.nc.request(api, request, timeout=broker.settings.publish_timeout)
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"reading {stream} failed: {exc!r}") from exc
        try:
            message: Any = json.loads(reply.data).get("message")
        except (ValueError, AttributeError):
            message = None
        if not isinstance(message, dict):  # {"error": {"code": 404, ...}}: no more
            break
        seq = int(message.get("seq", seq)) + 1
        out.append(stream_message(message))
    return out
