"""A JetStream write whose reply is lost (its leader died after storing it) is re-sent, and the
re-send is answered as what it is: the same write, done once.

Each test runs on a single nats-server and on an R3 stream of the three-node cluster: they
answer a repeated create-only write differently, and both must read as "created".
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from actors.config import Settings
from actors.nats.broker import Broker
from actors.nats.bucket import Bucket
from actors.nats.codes import WRONG_LAST_SEQUENCE
from actors.nats.streams import bucket_config
from actors.wire import topology

pytestmark = pytest.mark.timeout(90)

BUCKET = "lost_replies"


@pytest.fixture(params=["single server", "R3 cluster"])
def setup(request: pytest.FixtureRequest) -> tuple[str, int]:
    """The server URL and the replica count of the test's streams."""
    if request.param == "single server":
        return request.getfixturevalue("nats_server").url, 1
    return request.getfixturevalue("nats_cluster").url, 3


@pytest.fixture
async def broker(setup: tuple[str, int]) -> AsyncIterator[Broker]:
    url, replicas = setup
    connected = await Broker.connect(
        Settings.build({"nats_url": url, "stream_replicas": replicas, "publish_timeout": 10})
    )
    await connected.streams.ensure_topology()
    await connected.streams.ensure_bucket(BUCKET)
    yield connected
    await connected.close()


def lose_replies(monkeypatch: pytest.MonkeyPatch, broker: Broker, subject: str, count: int) -> None:
    """The first ``count`` replies to writes to ``subject`` that were stored are lost: the
    write was done, but its sender sees no reply (a TimeoutError), as when the leader that
    stored it died before answering."""
    requests = broker._requests
    send = requests.request
    lost = 0

    async def request(to: str, payload: bytes, headers: Any, timeout: float) -> Any:
        nonlocal lost
        reply = await send(to, payload, headers, timeout)
        if to == subject and lost < count and b'"error"' not in reply.data:
            lost += 1
            raise TimeoutError
        return reply

    monkeypatch.setattr(requests, "request", request)


def lose_batch_replies(monkeypatch: pytest.MonkeyPatch, broker: Broker) -> None:
    """Every reply to the first pipelined batch (publish_many) is lost."""
    nc = broker.nc
    subscribe = nc.subscribe
    batches = 0

    async def subscribe_dropping(subject: str, **options: Any) -> Any:
        nonlocal batches
        batches += 1
        if batches == 1:

            async def drop(_msg: Any) -> None:
                return None

            options["cb"] = drop
        return await subscribe(subject, **options)

    monkeypatch.setattr(nc, "subscribe", subscribe_dropping)


async def test_a_repeated_create_only_write_is_a_duplicate_on_r3_and_refused_on_one_server(
    setup: tuple[str, int],
) -> None:
    """Why Bucket reads a refused write back: nats-server 2.15 answers the repeat of a stored
    create-only write (same ``Nats-Msg-Id``) as a duplicate on a replicated stream, but checks
    the expected revision first on an unreplicated one and refuses it (10071)."""
    url, replicas = setup
    nc = await nats.connect(url.split(","))
    try:
        await nc.jetstream(timeout=10).add_stream(bucket_config("raw", replicas, None))
        headers = {"Nats-Expected-Last-Subject-Sequence": "0", "Nats-Msg-Id": "create-1"}
        answers = [
            json.loads((await nc.request("$KV.raw.k", b"v", 10, headers=headers)).data)
            for _ in range(2)
        ]
    finally:
        await nc.close()
    assert answers[0] == {"stream": "KV_raw", "seq": 1}
    if replicas == 3:
        assert answers[1] == {"stream": "KV_raw", "seq": 1, "duplicate": True}
    else:
        assert answers[1]["error"]["err_code"] == WRONG_LAST_SEQUENCE


async def test_create_only_and_compare_and_set_writes_whose_reply_was_lost_succeed(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    kv = Bucket(broker, BUCKET)
    subject = f"$KV.{BUCKET}.k"
    lose_replies(monkeypatch, broker, subject, 1)
    created = await kv.create("k", b"first")
    entry = await kv.entry("k")
    assert entry is not None and (entry.value, entry.revision) == (b"first", created)
    assert await kv.create("k", b"another") is None  # a different call: the key has a value

    lose_replies(monkeypatch, broker, subject, 2)
    updated = await kv.update("k", b"second", created)
    entry = await kv.entry("k")
    assert entry is not None and (entry.value, entry.revision) == (b"second", updated)
    assert await kv.update("k", b"stale", created) is None

    await kv.delete("k")
    lose_replies(monkeypatch, broker, subject, 1)
    recreated = await kv.create("k", b"third")  # over the delete marker
    entry = await kv.entry("k")
    assert entry is not None and (entry.value, entry.revision) == (b"third", recreated)


async def test_counter_increments_whose_reply_was_lost_count_once(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    counters = Bucket.counters(broker, topology.CHORD_COUNTER_STREAM)
    subject = "actors.chord.lost"
    lose_replies(monkeypatch, broker, subject, 1)
    assert await counters.add(subject, 2) == 2  # no id of the caller's: one of its own
    lose_replies(monkeypatch, broker, subject, 1)
    assert await counters.add(subject, 3, msg_id="batch-1") is None  # counted, reply lost
    assert await counters.add(subject, 3, msg_id="batch-1") is None  # a true repeat
    assert await counters.total(subject) == 5


async def test_create_many_whose_replies_were_lost_stores_each_key_once(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    kv = Bucket(broker, BUCKET)
    await kv.put("c.r.1", b"taken")
    lose_batch_replies(monkeypatch, broker)
    created = await kv.create_many([("c.r.0", b"a"), ("c.r.1", b"b"), ("c.r.2", b"c")])
    assert created == [True, False, True]
    assert await kv.scan("c.r") == {"c.r.0": b"a", "c.r.1": b"taken", "c.r.2": b"c"}
    info = await broker.js.stream_info(f"KV_{BUCKET}")
    assert info.state.last_seq == 3  # the put and two creates: no write stored twice
