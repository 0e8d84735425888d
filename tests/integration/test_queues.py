"""Queues, routes and priorities against a real nats-server (docs/routing.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from actors import App, chain, chord, group
from actors.errors import ProtocolError, TaskNotRegistered
from actors.nats import queues
from actors.wire.record import REVOKED, SUCCESS
from actors.worker.dead_letters import replay_many
from schedulers import Beat
from tests.helpers import aeventually
from tests.integration.test_bad_input import dead_letters


@pytest.fixture
async def make_app(make_app: Callable[..., App]) -> Any:
    """The shared make_app, with each app's connection on the test's loop closed after it
    (else a client left connected logs reconnect errors into later tests' output)."""
    made: list[App] = []

    def make(*args: Any, **conf: Any) -> App:
        made.append(make_app(*args, **conf))
        return made[-1]

    yield make
    for app in made:
        await app.aclose()


def register(app: App, label: str) -> dict[str, Any]:
    """Actors that say which worker ran them (``label``) and where they came from."""

    @app.actor(name="q.report", queue="reports")
    def report(x: int) -> str:
        return label

    @app.actor(name="q.mail", queue="mail")
    def mail(x: int) -> str:
        return label

    @app.actor(name="q.where", bind=True)
    def where(self: Any) -> list[Any]:
        info = self.request.delivery_info
        return [label, info["queue"], info["priority"], self.request.retries]

    @app.actor(name="q.tag")
    def tag(trail: list[str]) -> list[str]:
        return [*trail, label]

    @app.actor(name="q.tag_reports", queue="reports")
    def tag_reports(trail: list[str]) -> list[str]:
        return [*trail, label]

    @app.actor(name="q.flaky", bind=True)
    def flaky(self: Any) -> list[Any]:
        if self.request.retries == 0:
            self.retry(countdown=0.05)
        return [label, self.request.delivery_info["queue"], self.request.retries]

    @app.actor(name="q.fan", bind=True)
    def fan(self: Any) -> Any:
        # The group runs as a chord whose built-in body must run where this task ran.
        return self.replace(group(tag.s([]).set(queue="mail"), tag.s([]).set(queue="mail")))

    return {"report": report, "mail": mail, "where": where, "tag": tag, "flaky": flaky}


async def two_pools(make_app: Callable[..., App], worker: Callable[..., Any]) -> App:
    """A worker on ``mail`` and one on ``reports`` (each its own app, as two hosts would be);
    returns the app that sends."""
    for queue in ("mail", "reports"):
        served = make_app(f"{queue}-pool")
        register(served, queue)
        await worker(served, queues={queue: None}, hostname=f"{queue}@test")
    client = make_app("client")
    register(client, "client")
    return client


async def test_a_worker_runs_only_its_queues_and_calls_route_as_asked(
    make_app: Callable[..., App], worker: Callable[..., Any]
) -> None:
    app = await two_pools(make_app, worker)
    report, mail, where = (app.get_actor(n) for n in ("q.report", "q.mail", "q.where"))
    sent = [await report.adelay(i) for i in range(5)] + [await mail.adelay(i) for i in range(5)]
    assert [await r.aget(timeout=10) for r in sent] == ["reports"] * 5 + ["mail"] * 5
    # The call's queue wins over the actor's; .set(queue=...) on a signature routes too.
    assert await (await report.aapply_async((1,), queue="mail")).aget(timeout=10) == "mail"
    assert await report.s(1).set(queue="mail").apply_async().aget(timeout=10) == "mail"
    assert await (await app.asend_task("q.mail", (1,), queue="reports")).aget(timeout=10) == (
        "reports"
    )
    app.conf.task_routes = {"q.wh*": {"queue": "reports", "priority": 8}}
    got = await (await where.aapply_async()).aget(timeout=10)
    assert got == ["reports", "reports", 8, 0]
    got = await (await where.aapply_async(queue="mail", priority=1)).aget(timeout=10)
    assert got == ["mail", "mail", 1, 0]


async def test_retries_and_chain_steps_stay_on_their_queue(
    make_app: Callable[..., App], worker: Callable[..., Any]
) -> None:
    app = await two_pools(make_app, worker)
    flaky, tag = app.get_actor("q.flaky"), app.get_actor("q.tag")
    # The retry is delayed: it goes through a server-side schedule back to the mail queue.
    retried = await flaky.aapply_async(queue="mail", priority=9)
    assert await retried.aget(timeout=10) == ["mail", "mail", 1]
    steps = chain(
        tag.s([]).set(queue="reports"),
        tag.s().set(queue="mail"),
        app.get_actor("q.tag_reports").s(),  # routed by its own queue, by the mail worker
    )
    assert await (await steps.aapply_async()).aget(timeout=10) == ["reports", "mail", "reports"]
    header = [tag.s([]).set(queue="mail"), tag.s([]).set(queue="reports")]
    joined = chord(header, tag.s().set(queue="mail", priority=8))
    assert await (await joined.aapply_async()).aget(timeout=10) == [["mail"], ["reports"], "mail"]
    fanned = await app.get_actor("q.fan").aapply_async(queue="mail")
    assert await fanned.aget(timeout=10) == [["mail"], ["mail"]]


async def test_queue_depths_count_every_queue_and_purge_empties_them(
    make_app: Callable[..., App],
) -> None:
    app = make_app()
    tasks = register(app, "client")
    for i in range(3):
        await tasks["mail"].aapply_async((i,), priority=9)
    await tasks["mail"].aapply_async((1,), queue="default")
    broker = (await app.client.connection()).broker
    [row] = [r for r in await queues.queue_stats(broker) if r.actor == "q.mail"]
    assert (row.pending, row.in_flight, row.consumers) == (4, 0, 0)
    assert await queues.purge_queue(broker, "q.mail") == 4
    assert all(r.actor != "q.mail" for r in await queues.queue_stats(broker))


async def test_bad_and_unrouted_messages_on_a_queue_are_dead_lettered_with_it(
    make_app: Callable[..., App], worker: Callable[..., Any]
) -> None:
    served = make_app("mail-pool", unrouted_grace=0.5)
    register(served, "mail")
    await worker(served, queues={"mail": None})
    app = make_app("client")
    tasks = register(app, "client")
    bad = await tasks["mail"].aapply_async((1, 2, 3), priority=0)  # too many arguments
    with pytest.raises(ProtocolError, match="arguments do not fit"):
        await bad.aget(timeout=10)
    [dead] = await dead_letters(app, 1)
    assert dead.headers["Actors-Dead-Queue"] == "mail"
    assert dead.headers["Actors-Dead-Subject"] == "actors.queue.mail.low.q.mail"
    lost = await tasks["report"].adelay(1)  # nobody serves the reports queue
    with pytest.raises(TaskNotRegistered, match="on queue 'reports'"):
        await lost.aget(timeout=10)


async def test_a_priority_9_task_overtakes_the_backlog_of_its_queue(
    make_app: Callable[..., App], worker: Callable[..., Any]
) -> None:
    app = make_app()
    order: list[str] = []

    @app.actor(name="q.step")
    async def step(label: str) -> None:
        order.append(label)
        await asyncio.sleep(0.002)

    backlog = [await step.aapply_async((f"low-{i}",), priority=0) for i in range(300)]
    await worker(app, concurrency=1)
    await aeventually(lambda: len(order), until=lambda n: n >= 5, what="the backlog running")
    started = len(order)
    await (await step.aapply_async(("urgent",), priority=9)).aget(timeout=10)
    assert order.index("urgent") - started <= 5, order[started : started + 10]
    assert len(order) < 200  # most of the backlog still waits
    for result in backlog[-3:]:
        await result.aget(timeout=20)


async def test_a_flood_on_one_queue_does_not_starve_another(
    make_app: Callable[..., App], worker: Callable[..., Any]
) -> None:
    app = make_app()
    release = asyncio.Event()
    running = {"now": 0, "most": 0}

    @app.actor(name="q.hold", queue="flood")
    async def hold() -> None:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await release.wait()
        running["now"] -= 1

    @app.actor(name="q.ping", queue="mail")
    async def ping() -> str:
        return "pong"

    await worker(app, queues={"flood": 2, "mail": 3})
    flood = [await hold.adelay() for _ in range(100)]
    await aeventually(lambda: running["now"], until=lambda n: n == 2, what="flood slots full")
    assert await (await ping.adelay()).aget(timeout=5) == "pong"
    assert running["most"] == 2
    release.set()
    for result in flood[-2:]:
        await result.aget(timeout=20)
    assert running["most"] == 2


async def test_an_app_of_2000_actors_on_5_queues_starts_on_a_default_server(
    make_app: Callable[..., App], worker: Callable[..., Any]
) -> None:
    app = make_app()
    queues = [f"q{i}" for i in range(5)]
    actors = []
    for i in range(2000):

        def run(x: int, i: int = i) -> int:
            return x + i

        actors.append(app.actor(name=f"many.t{i}", queue=queues[i % 5])(run))
    started = await worker(app, queues={q: None for q in queues})
    assert len(started.consumers) == 15  # 5 queues x 3 bands, far below the cap of 1,000
    results = [await actors[i].aapply_async((1,), priority=i % 10) for i in range(0, 2000, 97)]
    assert [await r.aget(timeout=20) for r in results] == [1 + i for i in range(0, 2000, 97)]


async def test_a_task_the_workers_of_a_queue_do_not_serve_is_handed_back_then_failed(
    make_app: Callable[..., App], worker: Callable[..., Any]
) -> None:
    def partial_app(grace: float) -> App:
        partial = make_app("partial", unrouted_grace=grace)

        @partial.actor(name="q.mail", queue="mail")
        def mail(x: int) -> str:
            return "partial"

        return partial

    impatient = await worker(partial_app(1.0), queues={"mail": None}, hostname="p1@test")
    app = make_app("client")
    tasks = register(app, "client")
    lost = await tasks["where"].aapply_async(queue="mail")
    with pytest.raises(TaskNotRegistered, match="no worker on queue 'mail' serves task 'q.where'"):
        await lost.aget(timeout=10)
    [dead] = await dead_letters(app, 1)
    assert dead.subject == "actors.dead.q.where"
    await impatient.stop(grace=1)
    await worker(partial_app(60.0), queues={"mail": None}, hostname="p2@test")
    full = make_app("full")
    register(full, "full")
    await worker(full, queues={"mail": None}, hostname="full@test")
    served = await tasks["where"].aapply_async(queue="mail")
    assert (await served.aget(timeout=10))[0] == "full"


async def test_countdown_revoke_replay_and_beat_keep_the_queue(
    make_app: Callable[..., App], worker: Callable[..., Any]
) -> None:
    mail = make_app("mail-pool", unrouted_grace=0.5)
    register(mail, "mail")
    ticks: list[tuple[str, int]] = []

    @mail.actor(name="q.tick", bind=True)
    def tick(self: Any) -> None:
        ticks.append((self.request.delivery_info["queue"], self.request.delivery_info["priority"]))

    await worker(mail, queues={"mail": None}, hostname="mail@test")
    app = make_app("client")
    tasks = register(app, "client")
    where = tasks["where"]
    # A countdown fires into the queue's subject, and keeps its priority.
    later = await where.aapply_async(queue="mail", priority=2, countdown=0.2)
    assert await later.aget(timeout=10) == ["mail", "mail", 2, 0]
    # A countdown task on a queue can be revoked before it runs.
    revoked = await where.aapply_async(queue="mail", countdown=1.5)
    await revoked.arevoke()
    await aeventually(
        lambda: revoked.astate(), until=lambda s: s == REVOKED, what="REVOKED", timeout=10
    )
    # Nobody serves "reports" yet: dead-lettered with its queue; replayed, it runs there.
    lost = await tasks["report"].adelay(1)
    with pytest.raises(TaskNotRegistered, match="on queue 'reports'"):
        await lost.aget(timeout=10)
    reports = make_app("reports-pool")
    register(reports, "reports")
    await worker(reports, queues={"reports": None}, hostname="reports@test")
    broker = (await app.client.connection()).broker
    assert await replay_many(broker, None) == 1
    await aeventually(
        lambda: app.AsyncResult(lost.id).astate(),  # a new handle: lost holds its failure
        until=lambda s: s == SUCCESS,
        what="the replay ran",
        timeout=10,
    )
    assert await app.AsyncResult(lost.id).aget(timeout=5) == "reports"
    # A beat entry's options name the queue and the priority.
    app.conf.beat_schedule = {
        "tick": {"task": "q.tick", "schedule": 0.3, "options": {"queue": "mail", "priority": 8}}
    }
    beat = Beat(app)
    await beat.start()
    try:
        await aeventually(lambda: list(ticks), until=bool, what="a tick run on mail", timeout=10)
    finally:
        await beat.stop()
    assert ticks[0] == ("mail", 8)
