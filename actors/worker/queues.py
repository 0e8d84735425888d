"""The queues a worker serves: their consumers, their slots, and which actor gets a message.

A named queue has one durable consumer per priority band, ``q~<queue>~<band>``, filtering
``actors.queue.<queue>.<band>.>`` and shared by every worker of the queue. The default queue
keeps one subject per actor (``actors.task.<name>`` in the normal band) and so one consumer
per band and set of actors served (``actors.wire.routing.plan_consumers``), which other apps
on the same NATS and workers of protocol 1 can share it with. So an app of 2,000 actors on 5
queues needs 15 consumers, far from nats-server's cap of 1,000 per stream. A delivery is
dispatched by the task name in its subject. docs/routing.md explains the design.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from actors.actor import Actor
from actors.errors import ConfigurationError
from actors.nats.broker import Broker
from actors.nats.consumer import Delivery, PullConsumer
from actors.nats.streams import SubjectTaken
from actors.wire import routing
from actors.worker.priority_gate import PriorityGate

log = structlog.get_logger(__name__)

_PLAN_ATTEMPTS = 3
"""Workers starting together may both create a consumer for the same subjects: the server
refuses the second (one consumer per subject on a work-queue stream); plan again."""


def parse_queues(text: str) -> dict[str, int | None]:
    """``-Q reports,mail:32`` as ``{"reports": None, "mail": 32}`` (None: the shared slots).

    Raises ConfigurationError naming the bad part.
    """
    queues: dict[str, int | None] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, colon, limit = part.partition(":")
        routing.check_queue(name.strip())
        slots: int | None = None
        if colon:
            try:
                slots = int(limit)
            except ValueError:
                slots = 0
            if slots < 1:
                raise ConfigurationError(
                    f"-Q {part!r}: the concurrency after ':' must be a whole number >= 1"
                )
        queues[name.strip()] = slots
    if not queues:
        raise ConfigurationError("-Q names no queue: e.g. -Q reports,mail or -Q reports:4")
    return queues


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where a delivery goes: the actor, its queue's slots, its band."""

    actor: Actor[Any, Any]
    queue: str
    band: str
    gate: PriorityGate

    @property
    def rank(self) -> int:
        """The band's rank (0 low, 1 normal, 2 high)."""
        return routing.band_rank(self.band)

    @property
    def priority(self) -> int:
        """The priority a message of this band that names none is given."""
        return routing.BAND_PRIORITY[self.band]


OnDelivery = Callable[[Target | None, Delivery, PullConsumer], None]
"""Called for each delivery with its target, None when this worker does not serve the task
(a named queue's consumer delivers every task sent to the queue)."""


class QueueConsumers:
    """The consumers and slots of a worker's queues.

    ``queues`` maps each queue to its own number of slots, or None to share ``shared`` slots
    with the other queues given without a number. Each consumer holds up to its queue's slots
    times ``prefetch_multiplier`` fetched messages.
    """

    def __init__(
        self, queues: Mapping[str, int | None], shared: int, prefetch_multiplier: int = 1
    ) -> None:
        self.queues = dict(queues)
        self.prefetch_multiplier = prefetch_multiplier
        shared_gate = PriorityGate(shared)
        self.gates = {
            queue: PriorityGate(slots) if slots else shared_gate
            for queue, slots in self.queues.items()
        }
        self.slots = sum({id(g): g.slots for g in self.gates.values()}.values())
        """Tasks that may run at once in all queues together."""
        self._actors: dict[str, Actor[Any, Any]] = {}
        self._targets: dict[str, Target | None] = {}
        self._consumers: dict[str, PullConsumer] = {}
        self._held: dict[str, set[str]] = {}

    @property
    def consumers(self) -> dict[str, PullConsumer]:
        """Every pull loop, by consumer name."""
        return dict(self._consumers)

    def target(self, subject: str) -> Target | None:
        """Who serves a delivery on ``subject`` in this worker (None: nobody)."""
        if subject in self._targets:
            return self._targets[subject]
        route = routing.parse_subject(subject)
        found = None
        if route is not None:
            actor, gate = self._actors.get(route.task), self.gates.get(route.queue)
            if actor is not None and gate is not None:
                found = Target(actor, route.queue, route.band, gate)
        if len(self._targets) < 100_000:  # bounded: subjects come from publishers
            self._targets[subject] = found
        return found

    def serves(self, actor: Actor[Any, Any]) -> bool:
        """Whether this worker runs ``actor``'s messages, and a consumer it pulls from
        delivers some of them."""
        if self._actors.get(actor.name) is not actor:
            return False
        if any(queue != routing.DEFAULT_QUEUE for queue in self.gates):
            return True
        return any(self._pulled(routing.subject_for(actor.name, None, b)) for b in routing.BANDS)

    def _pulled(self, subject: str) -> bool:
        """Whether a running pull loop of this worker delivers ``subject``."""
        return any(
            subject in held and self._consumers[name].running
            for name, held in self._held.items()
            if name in self._consumers
        )

    async def start(
        self, broker: Broker, actors: Iterable[Actor[Any, Any]], on_delivery: OnDelivery
    ) -> None:
        """Serve ``actors`` too: bind to or create the consumers of every queue and band,
        and start pulling from those not pulled from yet."""
        actors = list(actors)
        names: list[tuple[str, PriorityGate]] = []
        for queue, gate in self.gates.items():
            for band in routing.BANDS:
                if queue != routing.DEFAULT_QUEUE:
                    name = routing.consumer_name(queue, band)
                    subjects = [routing.queue_filter(queue, band)]
                    await broker.streams.ensure_group_consumer(name, subjects)
                    self._held[name] = set(subjects)
                    names.append((name, gate))
                    continue
                wanted = [routing.subject_for(a.name, queue, band) for a in actors]
                wanted = [subject for subject in wanted if not self._pulled(subject)]
                if wanted:
                    found = await self._default_consumers(broker, band, wanted)
                    names += [(name, gate) for name in found]
        for actor in actors:
            self._actors[actor.name] = actor
        self._targets.clear()
        started = []
        for name, gate in names:
            if name not in self._consumers or not self._consumers[name].running:
                self._consumers[name] = self._pull(broker, name, gate, on_delivery)
                started.append(self._consumers[name])
        for consumer in started:
            await consumer.start()

    async def stop(self, names: Iterable[str] | None = None) -> None:
        """Stop pulling (from ``names``, default all); running tasks finish normally."""
        for name in list(self._consumers) if names is None else names:
            await self._consumers[name].stop()

    def forget(self, actor: Actor[Any, Any]) -> list[str]:
        """Stop running ``actor``; return the consumers to stop: those of the default queue
        that deliver only its messages (its messages then wait for a worker that serves it).
        Its messages from consumers that deliver other actors too are handed back as a
        named queue's are (docs/routing.md, "Remote control")."""
        subjects = {routing.subject_for(actor.name, None, band) for band in routing.BANDS}
        names = [n for n, held in self._held.items() if held and held <= subjects]
        self._actors.pop(actor.name, None)
        self._targets.clear()
        return names

    def _pull(
        self, broker: Broker, name: str, gate: PriorityGate, on_delivery: OnDelivery
    ) -> PullConsumer:
        consumer: PullConsumer

        def deliver(delivery: Delivery) -> None:
            on_delivery(self.target(delivery.subject), delivery, consumer)

        consumer = PullConsumer(broker, name, deliver, gate.slots * self.prefetch_multiplier)
        return consumer

    async def _default_consumers(self, broker: Broker, band: str, wanted: list[str]) -> list[str]:
        """The consumers to pull from for ``wanted`` subjects of the default queue."""
        streams = broker.streams
        attempt = 0
        while True:
            existing = await streams.consumer_filters()
            plan = routing.plan_consumers(routing.DEFAULT_QUEUE, band, wanted, existing)
            for other, subjects in plan.claimed.items():
                log.warning(
                    "queue.subjects_claimed",
                    consumer=other,
                    subjects=list(subjects[:5]),
                    count=len(subjects),
                    hint="another consumer holds these subjects with actors this worker does "
                    "not serve, and its workers run them (docs/routing.md, 'Workers with "
                    "different actors')",
                )
            held = {name: set(existing[name]) for name in plan.bind}
            try:
                for name in plan.bind:  # keep ack_wait current, as at creation
                    if name.startswith("q~") and not streams.up_to_date(name):
                        await streams.ensure_group_consumer(name, existing[name])
                if plan.create is not None:
                    name, subjects = plan.create
                    await streams.ensure_group_consumer(name, list(subjects))
                    held[name] = set(subjects)
            except SubjectTaken:
                attempt += 1
                if attempt >= _PLAN_ATTEMPTS:
                    raise
                continue
            self._held.update(held)
            return list(held)
