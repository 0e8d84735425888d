"""Cluster-wide rate limits: a fixed-window counter per actor in the ``ACTORS_RATE`` stream.

Each task start adds 1 to the counter ``actors.rate.<actor>.<window number>`` (server-side
``Nats-Incr``, one round trip); a start that finds the count over the limit waits for the next
window and tries again. Every worker of every process shares the counter, so the limit holds
for the whole cluster. Windows follow each worker's wall clock: keep clocks in sync (NTP).
"""

from __future__ import annotations

import asyncio
import math
import random
import time

from actors.backoff import Rate, parse_rate
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.wire import topology


class RateLimiter:
    """Waits until an actor may start one more task under its ``rate_limit``."""

    def __init__(self, broker: Broker) -> None:
        self._counters = Bucket.counters(broker, topology.RATE_STREAM)
        self._rates: dict[str, Rate] = {}

    async def acquire(self, task_name: str, rate_limit: str) -> None:
        """Return once a task of ``task_name`` may start."""
        rate = self._rates.get(rate_limit)
        if rate is None:
            rate = self._rates[rate_limit] = parse_rate(rate_limit)
        while True:
            now = time.time()
            window = math.floor(now / rate.per)
            count = await self._counters.add(topology.rate_subject(task_name, window))
            if count is not None and count <= rate.count:
                return
            # Spread the waiters a little so they do not all hit the next window at once.
            wait = (window + 1) * rate.per - now
            await asyncio.sleep(wait + random.uniform(0, min(0.05, rate.per / 20)))
