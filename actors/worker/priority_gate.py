"""The slots of a worker's queue: tasks wait here for a free slot, most urgent band first."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from actors.wire.routing import BANDS


class PriorityGate:
    """``slots`` tasks run at once; a freed slot goes to the waiter of the highest band,
    first come first served within a band (docs/routing.md, "Priorities").

    Like ``asyncio.Semaphore``, but a priority-9 message fetched after a thousand waiting
    priority-0 ones takes the next free slot.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = slots
        self._waiters: list[deque[asyncio.Future[None]]] = [deque() for _ in BANDS]

    @property
    def waiting(self) -> int:
        """Tasks waiting for a slot."""
        return sum(len(waiters) for waiters in self._waiters)

    async def acquire(self, rank: int) -> None:
        """Wait for a slot (behind every waiter of this band and of higher bands); ``rank`` is
        the band (0 low ... 2 high). Each acquire is paired with one :meth:`release`."""
        if self._free > 0 and not any(self._waiters[rank:]):
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[rank].append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters[rank].remove(future)
            raise

    def release(self) -> None:
        """Free a slot: hand it to the most urgent waiter, if any."""
        for waiters in reversed(self._waiters):
            while waiters:
                future = waiters.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self._free += 1
