"""Scatter-gather over core NATS: one request, the replies of every responder until a timeout;
and the responder side, a subscription that answers requests.

Remote control (actors/client/control.py, actors/worker/remote_control.py) uses both. Core
NATS, not JetStream: a request is only for the workers connected now, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from nats.aio.msg import Msg

from actors.errors import BrokerUnavailable
from actors.nats.broker import Broker
from actors.nats.connection import NATS_ERRORS, check_size, reply_status

log = structlog.get_logger(__name__)

REPLY_PREFIX = "_INBOX."
"""Replies go only to subjects under this prefix (nats-py's inboxes)."""

Handler = Callable[[str, bytes], Awaitable[bytes]]
"""Answers one request: ``(subject, body) -> reply body``."""


async def scatter_gather(
    broker: Broker, subject: str, body: bytes, timeout: float, limit: int | None = None
) -> list[bytes]:
    """Publish ``body`` to ``subject`` and return the replies that arrive within ``timeout``
    seconds, sooner once ``limit`` replies came or the server says nobody listens."""
    nc = broker.nc
    check_size(nc, subject, body, None)
    inbox = nc.new_inbox()
    replies: list[bytes] = []
    done = asyncio.Event()

    async def on_reply(msg: Msg) -> None:
        if reply_status(msg) == "503":  # no responders: nothing will come
            done.set()
            return
        replies.append(msg.data)
        if limit is not None and len(replies) >= limit:
            done.set()

    try:
        sub = await nc.subscribe(inbox, cb=on_reply, pending_msgs_limit=-1)
        try:
            await nc.publish(subject, body, reply=inbox)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout)
        finally:
            with contextlib.suppress(*NATS_ERRORS):
                await sub.unsubscribe()
    except NATS_ERRORS as exc:
        raise BrokerUnavailable(f"request to {subject} failed: {exc!r}") from exc
    return list(replies)


class Responder:
    """Answers requests on some subjects with ``handler``, one request at a time.

    One at a time bounds what a flood of requests can cost the worker; a handler that fails
    is logged and answered with nothing (the requester times out), never raised further.
    Replies go only to inbox subjects (``_INBOX.``): a request whose reply subject is, say, a
    task subject must not make the worker publish a message into a stream.
    """

    def __init__(self, broker: Broker, subjects: Iterable[str], handler: Handler) -> None:
        self._broker = broker
        self._subjects = list(subjects)
        self._handler = handler
        self._subs: list[Any] = []

    async def start(self) -> None:
        """Subscribe to the subjects."""
        try:
            for subject in self._subjects:
                self._subs.append(await self._broker.nc.subscribe(subject, cb=self._on_request))
        except NATS_ERRORS as exc:
            raise BrokerUnavailable(f"cannot subscribe to {subject}: {exc!r}") from exc

    async def stop(self) -> None:
        """Unsubscribe; requests that arrive later are not answered."""
        for sub in self._subs:
            with contextlib.suppress(*NATS_ERRORS):
                await sub.unsubscribe()
        self._subs.clear()

    async def _on_request(self, msg: Msg) -> None:
        try:
            if not msg.reply.startswith(REPLY_PREFIX):
                log.warning("control.bad_reply_subject", subject=msg.subject)
                return
            reply = await self._handler(msg.subject, msg.data)
            await self._broker.nc.publish(msg.reply, reply)
        except Exception as exc:  # a request must never end the subscription
            log.warning("control.reply_failed", subject=msg.subject, error=repr(exc))
