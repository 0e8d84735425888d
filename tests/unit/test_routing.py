"""Queues, priority bands and routes (actors/wire/routing.py, docs/routing.md). No server."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import App
from actors.errors import ConfigurationError, ProtocolError
from actors.options import SendOptions
from actors.wire import routing
from actors.wire.message import TaskMessage
from actors.wire.timing import destination
from actors.wire.validation import check_message
from actors.worker.priority_gate import PriorityGate
from actors.worker.queues import parse_queues

WORD = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
TASK_NAMES = st.lists(WORD, min_size=1, max_size=4).map(".".join)
QUEUES = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)


def test_the_default_queue_in_the_normal_band_keeps_the_protocol_1_subject() -> None:
    assert routing.subject_for("tasks.add", None) == "actors.task.tasks.add"
    assert routing.subject_for("tasks.add", "default") == "actors.task.tasks.add"
    assert routing.subject_for("tasks.add", None, "high") == "actors.queue.default.high.tasks.add"
    assert routing.subject_for("t.a", "mail", "normal") == "actors.queue.mail.normal.t.a"
    assert routing.due_subject_for("t.a", None) == "actors.due.t.a"
    assert routing.due_subject_for("t.a", "mail", "low") == "actors.dueq.mail.low.t.a"


@given(TASK_NAMES, QUEUES, st.sampled_from(routing.BANDS))
def test_every_route_parses_back_from_its_subject(task: str, queue: str, band: str) -> None:
    route = routing.parse_subject(routing.subject_for(task, queue, band))
    assert route == routing.Route(queue, band, task)


@pytest.mark.parametrize(
    "subject", ["actors.queue.mail.urgent.t", "actors.queue.mail.high", "actors.queue.a b.low.t"]
)
def test_other_subjects_are_no_route(subject: str) -> None:
    assert routing.parse_subject(subject) is None


def test_priorities_fall_in_three_bands() -> None:
    assert [routing.band_of(p) for p in range(10)] == ["low"] * 3 + ["normal"] * 4 + ["high"] * 3
    assert routing.band_of(None) == "normal"


@pytest.mark.parametrize("bad", ["", "a b", "a.b", "a*", ">", "x" * 65, "r\r\nPUB", 5, None])
def test_bad_queue_names_are_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="queue name"):
        routing.check_queue(bad)
    with pytest.raises((ConfigurationError, TypeError)):
        SendOptions(queue=bad) if bad is not None else routing.check_queue(bad)


@pytest.mark.parametrize("bad", [-1, 10, True, 1.5, "9"])
def test_priorities_are_integers_from_0_to_9(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="priority"):
        SendOptions(priority=bad)  # type: ignore[arg-type]


def test_routing_order_is_call_then_routes_then_actor_then_default() -> None:
    app = App("routing")
    app.conf.task_routes = {"mail.*": {"queue": "mail", "priority": 7}, "heavy.report": "cpu"}

    @app.actor(name="mail.send", queue="own")
    def send() -> None: ...

    @app.actor(name="heavy.report", queue="reports", priority=2)
    def report() -> None: ...

    @app.actor(name="misc.own", queue="own")
    def own() -> None: ...

    @app.actor(name="misc.plain")
    def plain() -> None: ...

    def routed(message: TaskMessage) -> tuple[str | None, int | None]:
        app.client.router.route(message)
        return message.queue, message.priority

    assert routed(send.message(queue="fast", priority=1)) == ("fast", 1)
    assert routed(send.message()) == ("mail", 7)
    assert routed(send.message(queue="fast")) == ("fast", 7)
    assert routed(report.message()) == ("cpu", 2)
    assert routed(own.message()) == ("own", None)
    assert routed(plain.message()) == (None, None)
    assert routed(plain.message(queue="default")) == (None, None)
    app.conf.task_routes = [{re.compile(r"misc\..*"): "fast"}, {"misc.plain": "never"}]
    assert routed(plain.message()) == ("fast", None)


def test_a_signature_set_queue_routes_its_message() -> None:
    app = App("routing")

    @app.actor(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    sig = add.s(2, 2).set(queue="fast", priority=9)
    [message] = sig.messages([], [], routing_hop())
    subject, _ = destination(message, message.id)
    assert subject == "actors.queue.fast.high.t.add"
    assert sig.to_wire()["options"] == {"queue": "fast", "priority": 9}
    with pytest.raises(ConfigurationError, match="queue name"):
        add.s(1, 1).set(queue="no such")


def routing_hop():  # type: ignore[no-untyped-def]
    from actors.signature import Hop

    return Hop()


@pytest.mark.parametrize(
    ("routes", "match"),
    [
        ({"a.*": "bad queue"}, "queue name"),
        ({"a.*": {"queue": "q", "exchange": "x"}}, "unknown key"),
        ({"a.*": {"priority": 12}}, "priority"),
        ("a.*", "must be a map"),
        ({"a.*": 5}, "queue name or a map"),
    ],
)
def test_bad_task_routes_are_refused_with_what_to_fix(routes: object, match: str) -> None:
    with pytest.raises((ConfigurationError, TypeError), match=match):
        routing.compile_routes(routes)


def test_a_delayed_message_on_a_queue_fires_into_its_queue_subject() -> None:
    eta = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    message = TaskMessage(id="t-1", task="t.add", eta=eta, queue="mail", priority=0)
    subject, headers = destination(message, "t-1")
    assert subject == "actors.sched.t-1"
    assert headers["Nats-Schedule-Target"] == "actors.dueq.mail.low.t.add"


@pytest.mark.parametrize(
    ("field", "value"), [("queue", "a b"), ("queue", 3), ("priority", 10), ("priority", True)]
)
def test_a_message_with_a_bad_queue_or_priority_is_malformed(field: str, value: object) -> None:
    with pytest.raises(ProtocolError, match=field):
        check_message({"id": "t-1", "task": "t.a", "args": [], "kwargs": {}, field: value})
    link = {"task": "t.b", "args": [], "kwargs": {}, "options": {field: value}}
    with pytest.raises(ProtocolError, match=f"link\\[0\\].options.{field}"):
        check_message({"id": "t-1", "task": "t.a", "args": [], "kwargs": {}, "link": [link]})


def test_consumer_plan_binds_subsets_and_creates_one_for_the_rest() -> None:
    wanted = {"actors.task.a", "actors.task.b", "actors.task.c"}
    fresh = routing.plan_consumers("default", "normal", wanted, {})
    assert fresh.bind == () and fresh.claimed == {}
    name = routing.consumer_name("default", "normal", wanted)
    assert fresh.create == (name, tuple(sorted(wanted)))
    again = routing.plan_consumers("default", "normal", wanted, {name: sorted(wanted)})
    assert again.create is None and again.bind == (name,)
    legacy = {"a": ["actors.task.a"], "other": ["actors.task.x"]}
    mixed = routing.plan_consumers("default", "normal", wanted, legacy)
    assert mixed.bind == ("a",)
    assert mixed.create is not None and mixed.create[1] == ("actors.task.b", "actors.task.c")
    shared = {"big": ["actors.task.c", "actors.task.z"]}
    claimed = routing.plan_consumers("default", "normal", wanted, shared)
    assert claimed.claimed == {"big": ("actors.task.c",)}
    assert claimed.create is not None and claimed.create[1] == ("actors.task.a", "actors.task.b")


def test_consumer_names_are_valid_and_never_a_per_actor_name() -> None:
    name = routing.consumer_name("mail-1", "high", ["actors.queue.mail-1.high.t.a"])
    assert re.fullmatch(r"q~mail-1~high~[0-9a-f]{12}", name)


def test_queue_option_parses_names_and_concurrency() -> None:
    assert parse_queues("reports, mail:32") == {"reports": None, "mail": 32}
    cases = [("", "names no queue"), ("a b", "queue name"), ("m:0", ">= 1"), ("m:x", ">= 1")]
    for bad, match in cases:
        with pytest.raises(ConfigurationError, match=match):
            parse_queues(bad)


async def test_a_freed_slot_goes_to_the_most_urgent_waiter() -> None:
    gate = PriorityGate(1)
    await gate.acquire(0)
    order: list[str] = []

    async def wait(rank: int, label: str) -> None:
        await gate.acquire(rank)
        order.append(label)
        gate.release()

    waiters = [asyncio.create_task(wait(r, f"{r}-{i}")) for i, r in enumerate([0, 1, 0, 2, 1])]
    while gate.waiting < 5:
        await asyncio.sleep(0)
    gate.release()
    await asyncio.gather(*waiters)
    assert order == ["2-3", "1-1", "1-4", "0-0", "0-2"]


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    gate = PriorityGate(1)
    await gate.acquire(1)
    first = asyncio.create_task(gate.acquire(2))
    second = asyncio.create_task(gate.acquire(0))
    while gate.waiting < 2:
        await asyncio.sleep(0)
    first.cancel()
    gate.release()
    await asyncio.wait_for(second, timeout=5)
    assert gate.waiting == 0


def test_the_consumer_cap_is_named_with_the_way_out() -> None:
    import nats.js.errors

    from actors.nats.streams import SubjectTaken, _consumer_refused

    cap = nats.js.errors.BadRequestError(code=400, err_code=10026, description="maximum consumers")
    error = _consumer_refused("q~mail~high", cap)
    assert isinstance(error, ConfigurationError)
    assert "1,000 per stream" in str(error) and "max_consumers" in str(error)
    taken = nats.js.errors.BadRequestError(code=400, err_code=10100, description="not unique")
    assert isinstance(_consumer_refused("q~mail~high", taken), SubjectTaken)


def test_a_queue_given_to_a_group_chain_or_chord_goes_to_every_task_without_one() -> None:
    from actors import chain, chord, group
    from actors.signature import Hop

    app = App("routing")

    @app.actor(name="t.add")
    def add(x: int, y: int) -> int:
        return x + y

    def queues(canvas: Any) -> list[tuple[str | None, int | None]]:
        canvas.assign_ids()
        return [(m.queue, m.priority) for m in canvas.messages([], [], Hop())]

    both = group(add.s(1, 1), add.s(2, 2).set(queue="own")).set(queue="mail", priority=9)
    assert queues(both) == [("mail", 9), ("own", 9)]
    steps = chain(add.s(1, 1), add.s(2)).set(queue="mail")
    [first] = queues(steps)
    assert first == ("mail", None)
    assert steps.tasks[1].options["queue"] == "mail"
    joined = chord([add.s(1, 1)], add.s(5)).set(queue="mail")
    assert queues(joined) == [("mail", None)]
    [member] = joined.messages([], [], Hop())
    assert member.chord is not None and member.chord["body"]["options"]["queue"] == "mail"


async def test_listing_consumers_ends_when_a_new_one_shifts_the_pages() -> None:
    # A consumer created by another worker between two pages shifts the list by one: the
    # next page repeats a name already read. Listing must still end (it once looped for ever).
    from types import SimpleNamespace

    from actors.config import Settings
    from actors.nats.streams import Streams

    def info(name: str) -> SimpleNamespace:
        config = SimpleNamespace(filter_subjects=[f"actors.task.{name}"], filter_subject=None)
        return SimpleNamespace(name=name, config=SimpleNamespace(**vars(config), ack_wait=30.0))

    pages = {0: [info("a"), info("b")], 2: [info("b")], 3: []}

    class Listing:
        async def consumers_info(self, stream: str, offset: int = 0) -> list[SimpleNamespace]:
            return pages[offset]

    filters = await asyncio.wait_for(Streams(Listing(), Settings()).consumer_filters(), 5)
    assert filters == {"a": ["actors.task.a"], "b": ["actors.task.b"]}
