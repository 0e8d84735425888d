"""TimeoutHeap: many timeouts from one heap."""

from __future__ import annotations

import asyncio

import pytest

from actors.nats.timeout_heap import TimeoutHeap


async def test_futures_time_out_in_deadline_order() -> None:
    deadlines = TimeoutHeap()
    loop = asyncio.get_running_loop()
    late, early, done = loop.create_future(), loop.create_future(), loop.create_future()
    deadlines.add(late, 0.3)
    deadlines.add(early, 0.05)
    deadlines.add(done, 0.05)
    done.set_result("finished in time")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(early, 2)
    assert not late.done()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(late, 2)
    assert done.result() == "finished in time"


async def test_close_stops_expiring() -> None:
    deadlines = TimeoutHeap()
    future = asyncio.get_running_loop().create_future()
    deadlines.add(future, 0.05)
    deadlines.close()
    await asyncio.sleep(0.15)
    assert not future.done()
