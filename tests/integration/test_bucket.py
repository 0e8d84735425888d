"""The KV Bucket on a real server: writes, compare-and-set, scans, watches, counters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from actors.config import Settings
from actors.errors import ProtocolError
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.nats.server import EmbeddedServer
from actors.wire import topology


@pytest.fixture
async def broker(nats_server: EmbeddedServer) -> AsyncIterator[Broker]:
    connected = await Broker.connect(Settings.build({"nats_url": nats_server.url}))
    await connected.streams.ensure_topology()
    await connected.streams.ensure_bucket("test_kv")
    yield connected
    await connected.close()


async def test_writes_reads_and_compare_and_set(broker: Broker) -> None:
    kv = Bucket(broker, "test_kv")
    assert await kv.get("a") is None
    first = await kv.put("a", b"1")
    entry = await kv.entry("a")
    assert entry is not None and (entry.value, entry.revision) == (b"1", first)
    assert await kv.create("a", b"2") is None  # create-only: the key has a value
    assert await kv.update("a", b"2", first + 100) is None  # another revision
    second = await kv.update("a", b"2", first)
    assert second is not None and second > first
    assert await kv.get("a") == b"2"
    await kv.delete("a")
    assert await kv.get("a") is None and await kv.entry("a") is None
    assert await kv.create("a", b"3") is not None  # a deleted key has no value
    assert await kv.get("a") == b"3"
    with pytest.raises(ProtocolError):
        await kv.get("a b")


async def test_create_many_and_scan(broker: Broker) -> None:
    kv = Bucket(broker, "test_kv")
    await kv.put("c.r.1", b"old")
    await kv.put("c.r.2", b"gone")
    await kv.delete("c.r.2")
    created = await kv.create_many([("c.r.0", b"x"), ("c.r.1", b"y"), ("c.r.2", b"z")])
    assert created == [True, False, True]
    await kv.put("other.r.0", b"not under c.r")
    assert await kv.scan("c.r") == {"c.r.0": b"x", "c.r.1": b"old", "c.r.2": b"z"}


async def test_watch_delivers_current_values_then_changes(broker: Broker) -> None:
    kv = Bucket(broker, "test_kv")
    await kv.put("conf.a", b"1")
    await kv.put("conf.b", b"2")
    await kv.delete("conf.b")
    await kv.put("tick.a", b"not watched")
    seen: list[tuple[str, bytes | None]] = []
    changed = asyncio.Event()

    async def on_change(key: str, value: bytes | None) -> None:
        seen.append((key, value))
        if key == "conf.c":
            changed.set()

    watch = await kv.watch(on_change, prefix="conf", initial=True, timeout=5)
    assert watch.loaded
    assert sorted(seen, key=lambda kv: kv[0]) == [("conf.a", b"1"), ("conf.b", None)]
    await kv.put("tick.b", b"not watched")
    await kv.put("conf.c", b"3")
    await asyncio.wait_for(changed.wait(), 5)
    assert seen[-1] == ("conf.c", b"3")
    await watch.stop()


async def test_an_initial_watch_of_an_empty_prefix_returns_at_once(broker: Broker) -> None:
    async def ignore(key: str, value: bytes | None) -> None:
        pass

    watch = await Bucket(broker, "test_kv").watch(ignore, prefix="none", initial=True, timeout=5)
    assert watch.loaded
    await watch.stop()


async def test_counters_count_once_per_message_id(broker: Broker) -> None:
    counters = Bucket.counters(broker, topology.CHORD_COUNTER_STREAM)
    subject = topology.chord_counter_subject("chord-1")
    assert await counters.total(subject) == 0
    assert await counters.add(subject, 2, "chord-1.batch-a") == 2
    assert await counters.add(subject, 2, "chord-1.batch-a") is None  # a repeat
    assert await counters.add(subject, 1) == 3
    assert await counters.total(subject) == 3
    assert await counters.total(subject, fresh=True) == 3


async def test_fresh_reads_ask_the_leader_and_agree_with_direct_gets(broker: Broker) -> None:
    """The chord join decides on reads from the leader (a replica may lag behind)."""
    kv = Bucket(broker, "test_kv")
    assert await kv.get("f.missing", fresh=True) is None
    await kv.put("f.a", b"\x00binary\xff")
    assert await kv.get("f.a", fresh=True) == await kv.get("f.a") == b"\x00binary\xff"
    await kv.delete("f.a")  # a delete marker, told apart by its header
    assert await kv.get("f.a", fresh=True) is None
    with pytest.raises(ProtocolError):
        await kv.get("f a", fresh=True)
