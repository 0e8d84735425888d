"""TimeoutHeap: many timeouts from one heap."""

from __future__ import annotations

import asyncio

import pytest

from actors.nats.timeout_heap import TimeoutHeap, fail_with_timeout


async def test_futures_time_out_in_deadline_order() -> None:
    deadlines = TimeoutHeap(fail_with_timeout)
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
    deadlines = TimeoutHeap(fail_with_timeout)
    future = asyncio.get_running_loop().create_future()
    deadlines.add(future, 0.05)
    deadlines.close()
    await asyncio.sleep(0.15)
    assert not future.done()


async def test_any_key_expires_through_its_callback_in_deadline_order() -> None:
    expired: list[str] = []
    everything = asyncio.Event()

    def on_expire(key: str) -> None:
        expired.append(key)
        if len(expired) == 3:
            everything.set()

    deadlines: TimeoutHeap[str] = TimeoutHeap(on_expire)
    for key, timeout in (("c", 0.15), ("a", 0.01), ("b", 0.08)):
        deadlines.add(key, timeout)
    await asyncio.wait_for(everything.wait(), 5)
    assert expired == ["a", "b", "c"]
