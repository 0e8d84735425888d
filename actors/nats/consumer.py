"""An actor's consumer: the pull loop that hands messages to the worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from nats.aio.msg import Msg

from actors.errors import BrokerUnavailable
from actors.nats.connection import NATS_ERRORS
from actors.nats.retrying import RETRYABLE, retry_request
from actors.wire import topology

if TYPE_CHECKING:
    from actors.nats.broker import Broker

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Delivery:
    """One message handed to a worker by its actor's consumer."""

    subject: str
    data: bytes
    headers: dict[str, str]
    delivered: int
    stream_seq: int
    _msg: Msg
    published: float = 0.0
    """When the message was stored in the stream (Unix seconds)."""

    @property
    def acked(self) -> bool:
        """True once this worker acked or nak'ed the message."""
        return bool(self._msg.is_acked)

    async def ack(self) -> None:
        """Acknowledge: the message is done and removed from the stream."""
        await self._msg.ack()

    async def ack_confirmed(self, timeout: float) -> None:
        """Acknowledge and wait until the server confirms it (for at-most-once delivery);
        re-sent through a consumer leader election for up to ``timeout`` seconds."""
        what = f"ack of message {self.stream_seq}"

        async def attempt(wait: float) -> None:
            try:
                await self._msg.ack_sync(timeout=wait)
            except RETRYABLE:
                raise
            except NATS_ERRORS as exc:
                raise BrokerUnavailable(f"{what} not confirmed: {exc!r}") from exc

        await retry_request(what, attempt, timeout)

    async def nak(self, delay: float | None = None) -> None:
        """Negative ack: redeliver now, or after ``delay`` seconds."""
        await self._msg.nak(delay=delay)

    async def in_progress(self) -> None:
        """Heartbeat: reset the ack timer of a long task."""
        await self._msg.in_progress()


class PullConsumer:
    """The pull loop of one durable consumer on the task stream (``durable``, its name).

    Keeps pull requests outstanding for up to ``limit`` messages in hand at once.

    Messages arrive on one inbox subscription and go straight to ``on_delivery``; the worker
    calls :meth:`done` when one is finished. A new pull request is sent whenever the free
    credit (limit - in hand - requested but undelivered) reaches a quarter of the limit, so
    there is no request/response round trip per batch on the hot path.
    """

    EXPIRES = 30.0
    # Pull requests live on the consumer's leader and die with it; two missed heartbeats say
    # so. At 5 s, a chord on a 3-node cluster whose ACTORS leader was killed finished 15-18 s
    # after the kill in a third of the runs, waiting for the reset; at 2 s, in 4-6 s more
    # than the election itself. Costs one idle status message per pull request per 2 s.
    HEARTBEAT = 2.0

    def __init__(
        self, broker: Broker, durable: str, on_delivery: Callable[[Delivery], None], limit: int
    ) -> None:
        self._broker = broker
        self._durable = durable
        self._on_delivery = on_delivery
        self._limit = limit
        self._threshold = max(1, limit // 4)
        self._in_hand = 0
        self._pending = 0
        self._last_seen = time.monotonic()
        self._wake = asyncio.Event()
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        self._sub: Any = None
        self._inbox = ""

    @property
    def name(self) -> str:
        """The durable consumer's name."""
        return self._durable

    @property
    def running(self) -> bool:
        """True while the pull loop runs (started, not stopped, not ended by an error)."""
        return self._task is not None and not self._task.done()

    @property
    def idle_seconds(self) -> float:
        """Seconds since the server last sent anything to this consumer (messages, heartbeats)."""
        return time.monotonic() - self._last_seen

    async def start(self) -> None:
        """Subscribe to the inbox and begin pulling."""
        nc = self._broker.nc
        self._inbox = nc.new_inbox()
        self._sub = await nc.subscribe(self._inbox, cb=self._on_msg, pending_msgs_limit=-1)
        self._task = asyncio.create_task(self._loop(), name=f"pull:{self._durable}")
        self._broker.on_reconnected(self._forget_requests)

    def _forget_requests(self) -> None:
        # Pull requests live on the server we were connected to: after a reconnect they are
        # gone (the server may be too). Ask again at once rather than after the watchdog.
        self._pending = 0
        self._wake.set()

    def done(self) -> None:
        """One delivered message is finished: its credit is free again."""
        self._in_hand -= 1
        if self._limit - self._in_hand - self._pending >= self._threshold:
            self._wake.set()

    async def stop(self) -> None:
        """Stop asking for messages and drop the inbox."""
        self._stopped = True
        self._wake.set()
        if self._task:
            await asyncio.wait({self._task}, timeout=5)
        if self._sub is not None:
            with contextlib.suppress(*NATS_ERRORS):
                await self._sub.unsubscribe()

    async def _loop(self) -> None:
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{topology.TASK_STREAM}.{self._durable}"
        nc = self._broker.nc
        while not self._stopped:
            want = self._limit - self._in_hand - self._pending
            if want >= self._threshold or (want > 0 and self._pending == 0):
                request = {
                    "batch": want,
                    "expires": int(self.EXPIRES * 1e9),
                    "idle_heartbeat": int(self.HEARTBEAT * 1e9),
                }
                self._pending += want
                try:
                    await nc.publish(subject, json.dumps(request).encode(), reply=self._inbox)
                except NATS_ERRORS as exc:
                    self._pending -= want
                    if nc.is_closed:
                        log.error("pull.connection_closed", consumer=self._durable)
                        return
                    log.warning("pull.request_failed", consumer=self._durable, error=repr(exc))
                    await asyncio.sleep(0.5)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.HEARTBEAT)
            except TimeoutError:
                # No traffic for two heartbeats while requests are outstanding: they were lost
                # (reconnect, server restart). Forget them and ask again.
                if self._pending and time.monotonic() - self._last_seen > 2 * self.HEARTBEAT:
                    log.info("pull.reset", consumer=self._durable, pending=self._pending)
                    self._pending = 0

    async def _on_msg(self, msg: Msg) -> None:
        self._last_seen = time.monotonic()
        if msg.reply:  # a message; status messages (heartbeat, timeout) have no reply subject
            self._pending = max(0, self._pending - 1)
            self._in_hand += 1
            self._on_delivery(_delivery(msg))
            return
        headers = msg.headers or {}
        status = headers.get("Status")
        if status == "100":
            return
        left = headers.get("Nats-Pending-Messages")
        if left is not None:
            self._pending = max(0, self._pending - int(left))
        elif status in ("404", "408", "409"):
            self._pending = 0
        if status == "409" and "Consumer Deleted" in headers.get("Description", ""):
            log.error("pull.consumer_deleted", consumer=self._durable)
        self._wake.set()


def _delivery(msg: Msg) -> Delivery:
    # Reply subject: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
    # (or with domain and account hash tokens in front); count from the end.
    tokens = msg.reply.split(".")
    return Delivery(
        subject=msg.subject,
        data=msg.data,
        headers=msg.headers or {},
        delivered=int(tokens[-5]),
        stream_seq=int(tokens[-4]),
        _msg=msg,
        published=int(tokens[-2]) / 1e9,
    )
