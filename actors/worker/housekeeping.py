"""A worker's background loops: heartbeats for the messages in hand, the watch on the
connection, and the periodic sweep of messages no worker serves."""

from __future__ import annotations

import asyncio
import time

import structlog

from actors.nats.broker import Broker
from actors.nats.consumer import Delivery
from actors.worker.dead_letters import sweep_unrouted

log = structlog.get_logger(__name__)


async def keep_in_hand(in_hand: dict[int, tuple[Delivery, float]], ack_wait: float) -> None:
    """Keep the messages in hand (delivery and since when, by stream sequence) from being
    redelivered while their tasks run: an in-progress heartbeat every third of ``ack_wait``."""
    interval = max(0.1, ack_wait / 3)
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        for delivery, since in list(in_hand.values()):
            if now - since >= interval:
                try:
                    await delivery.in_progress()
                except Exception as exc:
                    log.warning("task.heartbeat_failed", error=repr(exc))


async def connection_lost(broker: Broker, patience: float) -> str:
    """Return why, once the connection is lost for good (closed, or down past ``patience``
    seconds)."""
    interval = min(1.0, max(0.05, patience / 4))
    while (reason := broker.connection_lost(patience)) is None:
        await asyncio.sleep(interval)
    return reason


async def sweep_periodically(broker: Broker, grace: float, cursors: dict[str, int]) -> None:
    """Fail messages for tasks no worker serves, every half ``grace`` (see sweep_unrouted)."""
    interval = min(30.0, max(0.5, grace / 2))
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep_unrouted(broker, grace, cursors)
        except Exception as exc:  # keep sweeping: a bad message must not end the loop
            log.warning("sweep.failed", error=repr(exc))
