"""Queues, priority bands and routes: which subject a task goes to, and which consumers serve
it. Pure: no I/O. docs/routing.md is the user guide, docs/protocol.md ("Queues and
priorities") the specification.

A task's subject depends on its queue and its priority band:

- queue ``default`` and the ``normal`` band (no priority given): ``actors.task.<task>``, the
  subject of protocol 1, so that old clients and other languages keep working;
- anything else: ``actors.queue.<queue>.<band>.<task>``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from actors.errors import ConfigurationError, ConfigurationTypeError
from actors.wire import topology

DEFAULT_QUEUE = "default"
QUEUE_PREFIX = "actors.queue."
DUE_QUEUE_PREFIX = "actors.dueq."
"""Where the schedule of a delayed task on a queue subject fires (ACTORS_SCHEDULED); ACTORS
sources it as ``actors.queue.>``."""

MAX_QUEUE_NAME = 64
_QUEUE = re.compile(r"[A-Za-z0-9_-]{1,64}")

BANDS = ("low", "normal", "high")
"""Priority bands, lowest first. Priorities 0-2 are ``low``, 3-6 (and none) ``normal``, 7-9
``high``."""
NORMAL = "normal"
BAND_PRIORITY = {"low": 0, "normal": 5, "high": 9}
"""The priority a message read from a band's subject is given when its body names none."""


def valid_queue(name: object) -> bool:
    """Queue names are 1-64 letters, digits, ``_`` or ``-``: one subject token."""
    return isinstance(name, str) and bool(_QUEUE.fullmatch(name))


def check_queue(name: object) -> str:
    """Return ``name`` if it can be a queue name, else raise ConfigurationError."""
    if not valid_queue(name):
        raise ConfigurationError(
            f"invalid queue name {name!r}: use 1-{MAX_QUEUE_NAME} letters, digits, '_' or '-', "
            "e.g. 'reports'"
        )
    return str(name)


def valid_priority(value: object) -> bool:
    """Priorities are integers from 0 to 9 (booleans are not integers)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9


def check_priority(value: object) -> int:
    """Return ``value`` if it is a priority (0-9), else raise ConfigurationError."""
    if not isinstance(value, int) or not valid_priority(value):
        raise ConfigurationError(
            f"invalid priority {value!r}: use an integer from 0 (lowest) to 9 (most urgent)"
        )
    return value


def band_of(priority: int | None) -> str:
    """The band of a priority: 0-2 low, 3-6 (or None) normal, 7-9 high."""
    if priority is None:
        return NORMAL
    return "low" if priority <= 2 else "high" if priority >= 7 else NORMAL


def band_rank(band: str) -> int:
    """Higher is more urgent: low 0, normal 1, high 2."""
    return BANDS.index(band)


def subject_for(task: str, queue: str | None, band: str = NORMAL) -> str:
    """The subject of a task sent to ``queue`` (None: default) in ``band``."""
    queue = queue or DEFAULT_QUEUE
    if queue == DEFAULT_QUEUE and band == NORMAL:
        return topology.task_subject(task)
    return f"{QUEUE_PREFIX}{topology.subject_token(queue)}.{band}.{topology.subject_tokens(task)}"


def due_subject_for(task: str, queue: str | None, band: str = NORMAL) -> str:
    """Where the schedule of a delayed task fires (a subject of ACTORS_SCHEDULED)."""
    subject = subject_for(task, queue, band)
    if subject.startswith(QUEUE_PREFIX):
        return DUE_QUEUE_PREFIX + subject[len(QUEUE_PREFIX) :]
    return topology.due_subject(task)


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """What a task subject says: the queue, the band and the task name (maybe invalid)."""

    queue: str
    band: str
    task: str


def parse_subject(subject: str) -> Route | None:
    """The route of a task subject, or None when it is not one (any task text is returned
    as is: check it with ``topology.valid_task_name``)."""
    name = topology.task_name_from_subject(subject)
    if name is not None:
        return Route(DEFAULT_QUEUE, NORMAL, name)
    if not subject.startswith(QUEUE_PREFIX):
        return None
    parts = subject[len(QUEUE_PREFIX) :].split(".", 2)
    if len(parts) != 3 or not valid_queue(parts[0]) or parts[1] not in BANDS:
        return None
    return Route(parts[0], parts[1], parts[2])


# -- task_routes (Celery's forms) -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RouteRule:
    """One entry of ``task_routes``: a name, glob or regex, and the queue (and priority)."""

    pattern: str | re.Pattern[str]
    queue: str | None
    priority: int | None = None

    def matches(self, task: str) -> bool:
        """Whether this rule applies to ``task``."""
        if isinstance(self.pattern, re.Pattern):
            return bool(self.pattern.match(task))
        if any(c in self.pattern for c in "*?["):
            return fnmatch.fnmatchcase(task, self.pattern)
        return task == self.pattern


def compile_routes(routes: Any) -> tuple[RouteRule, ...]:
    """``task_routes`` as rules, checked: a map of task name, glob (``tasks.email.*``) or
    compiled regex to a queue name or ``{"queue": ..., "priority": ...}``, or a list of such
    maps (the first match wins). None means no routes."""
    if routes is None:
        return ()
    tables = routes if isinstance(routes, list | tuple) else [routes]
    rules: list[RouteRule] = []
    for table in tables:
        if not isinstance(table, Mapping):
            raise ConfigurationTypeError(
                "task_routes must be a map of task name or glob to a queue, or a list of "
                f"such maps, got {type(table).__name__}"
            )
        for pattern, target in table.items():
            if not isinstance(pattern, str | re.Pattern):
                raise ConfigurationTypeError(f"task_routes key {pattern!r} must be a str")
            rules.append(_rule(pattern, target))
    return tuple(rules)


def _rule(pattern: str | re.Pattern[str], target: Any) -> RouteRule:
    if isinstance(target, str):
        return RouteRule(pattern, check_queue(target))
    if not isinstance(target, Mapping):
        raise ConfigurationTypeError(
            f"task_routes[{pattern!r}] must be a queue name or a map with 'queue', got {target!r}"
        )
    unknown = sorted(set(target) - {"queue", "priority"})
    if unknown:
        raise ConfigurationError(
            f"task_routes[{pattern!r}] has unknown key(s) {', '.join(map(str, unknown))}: "
            "actors routes by 'queue' (and 'priority'); exchanges and routing keys do not apply"
        )
    queue = target.get("queue")
    priority = target.get("priority")
    return RouteRule(
        pattern,
        None if queue is None else check_queue(queue),
        None if priority is None else check_priority(priority),
    )


def resolve(
    task: str,
    queue: str | None,
    priority: int | None,
    rules: Iterable[RouteRule],
    actor_queue: str | None,
) -> tuple[str | None, int | None]:
    """The queue (None: default) and priority of a send, as Celery orders them: the explicit
    ``queue`` of the call or signature, then the first matching ``task_routes`` rule, then the
    actor's own queue, then the default queue. A rule's priority applies when the call gave
    none."""
    rule = None if queue is not None and priority is not None else _first(rules, task)
    if queue is None:
        queue = rule.queue if rule is not None and rule.queue is not None else actor_queue
    if priority is None and rule is not None:
        priority = rule.priority
    return (None if queue == DEFAULT_QUEUE else queue), priority


def _first(rules: Iterable[RouteRule], task: str) -> RouteRule | None:
    return next((rule for rule in rules if rule.matches(task)), None)


# -- consumers --------------------------------------------------------------------------------


def consumer_name(queue: str, band: str, subjects: Iterable[str] | None = None) -> str:
    """The durable consumer of a queue and band.

    A named queue has one, ``q~<queue>~<band>``, filtering ``queue_filter(queue, band)``.
    The default queue has one per set of actors served, ``q~default~<band>~<12 hex digits of
    the SHA-1 of the sorted subjects>``, filtering those subjects. ``~`` never occurs in a
    per-actor consumer name of protocol 1.
    """
    if subjects is None:
        return f"q~{queue}~{band}"
    digest = hashlib.sha1("\n".join(sorted(subjects)).encode()).hexdigest()[:12]
    return f"q~{queue}~{band}~{digest}"


def queue_filter(queue: str, band: str) -> str:
    """The filter subject of a named queue's consumer: every task on that queue and band."""
    return f"{QUEUE_PREFIX}{topology.subject_token(queue)}.{band}.>"


def consumed_by(subject: str, filters: set[str] | frozenset[str]) -> bool:
    """Whether a consumer with ``filters`` consumes ``subject``: a filter equal to it, or the
    named-queue filter of its queue and band (the only wildcards actors uses)."""
    route = parse_subject(subject)
    wildcard = None
    if route is not None and route.queue != DEFAULT_QUEUE:
        wildcard = queue_filter(route.queue, route.band)
    return subject in filters or (wildcard is not None and wildcard in filters)


@dataclasses.dataclass(frozen=True, slots=True)
class ConsumerPlan:
    """How a worker serves the subjects of one queue and band."""

    bind: tuple[str, ...]
    """Existing consumers that filter only subjects this worker serves: it pulls from them
    too (workers with the same actors, earlier subsets, per-actor consumers of protocol 1)."""
    create: tuple[str, tuple[str, ...]] | None
    """A consumer to create (name, filter subjects) for the subjects no consumer holds."""
    claimed: dict[str, tuple[str, ...]]
    """Consumers holding some of our subjects along with subjects this worker does not
    serve: those subjects are left to the workers of that consumer."""


def plan_consumers(
    queue: str, band: str, wanted: Iterable[str], existing: Mapping[str, Iterable[str]]
) -> ConsumerPlan:
    """Decide which consumers serve ``wanted`` subjects, given the ``existing`` consumers'
    filter subjects. On a work-queue stream two consumers may not share a subject, and a
    worker must never be handed a message it cannot run; so a worker pulls from every
    consumer whose subjects it all serves, and creates one for the rest."""
    want = set(wanted)
    bind: list[str] = []
    claimed: dict[str, tuple[str, ...]] = {}
    covered: set[str] = set()
    for name, filters in sorted(existing.items()):
        subjects = set(filters)
        shared = subjects & want
        if not shared:
            continue
        if subjects <= want:
            bind.append(name)
        else:
            claimed[name] = tuple(sorted(shared))
        covered |= shared
    rest = tuple(sorted(want - covered))
    create = (consumer_name(queue, band, rest), rest) if rest else None
    return ConsumerPlan(tuple(bind), create, claimed)
