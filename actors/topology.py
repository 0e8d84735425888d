"""Names of every NATS object actors uses, and their configurations. Pure: no I/O.

docs/protocol.md is the specification; this module is its implementation.
"""

from __future__ import annotations

import re

from actors.errors import ConfigurationError

PROTOCOL_VERSION = 1

TASK_STREAM = "ACTORS"
TASK_PREFIX = "actors.task."
SCHEDULE_PREFIX = "actors.sched."
DEAD_STREAM = "ACTORS_DEAD"
DEAD_PREFIX = "actors.dead."
RESULTS_BUCKET = "actors_results"
REVOKED_BUCKET = "actors_revoked"
CHORDS_BUCKET = "actors_chords"
CHORD_COUNTER_STREAM = "ACTORS_CHORD_COUNTERS"
CHORD_COUNTER_PREFIX = "actors.chord."
CONTROL_PREFIX = "actors.control."
EVENT_PREFIX = "actors.event."

MSGPACK = "application/msgpack"
JSON = "application/json"

# Headers we set or read, besides Nats-Msg-Id and Content-Type.
DEAD_REASON = "Actors-Dead-Reason"
DEAD_SUBJECT = "Actors-Dead-Subject"
DEAD_SEQUENCE = "Actors-Dead-Sequence"
DEAD_TASK = "Actors-Dead-Task"
DEAD_TRUNCATED = "Actors-Dead-Truncated"
SCHEDULE = "Nats-Schedule"
SCHEDULE_TARGET = "Nats-Schedule-Target"
TTL = "Nats-TTL"

RATE_STREAM = "ACTORS_RATE"
RATE_PREFIX = "actors.rate."

_TASK_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")


def validate_task_name(name: str) -> str:
    """Return ``name`` if it can be a task name, else raise ConfigurationError.

    Names are dot-separated words of letters, digits and underscores, so that each maps to
    one NATS subject and one consumer name with no collisions.
    """
    if not _TASK_NAME.fullmatch(name):
        raise ConfigurationError(
            f"invalid task name {name!r}: use dot-separated words of letters, digits and "
            "underscores, e.g. 'billing.tasks.charge'"
        )
    return name


def task_subject(name: str) -> str:
    """Subject an actor consumes: ``actors.task.<task name>``."""
    return TASK_PREFIX + name


def task_name_from_subject(subject: str) -> str | None:
    """The task name a task subject carries, or None for other subjects."""
    return subject[len(TASK_PREFIX) :] if subject.startswith(TASK_PREFIX) else None


def consumer_name(name: str) -> str:
    """Durable consumer of an actor: the task name with dots turned into dashes."""
    return name.replace(".", "-")


def dead_subject(name: str) -> str:
    """Subject a dead letter of task ``name`` is stored under."""
    return DEAD_PREFIX + (name if _TASK_NAME.fullmatch(name) else "_invalid")


def schedule_subject(task_id: str, retries: int = 0) -> str:
    """The subject holding the schedule of a delayed task: one schedule per subject."""
    base = SCHEDULE_PREFIX + task_id
    return base if retries == 0 else f"{base}.{retries}"


def rate_subject(task_name: str, window: int) -> str:
    """The counter subject of an actor's rate-limit window number ``window``."""
    return f"{RATE_PREFIX}{consumer_name(task_name)}.{window}"


def result_subject(task_id: str) -> str:
    """The KV subject holding the result of ``task_id``."""
    return f"$KV.{RESULTS_BUCKET}.{task_id}"


def chord_counter_subject(chord_id: str) -> str:
    """Counter subject (``Nats-Incr``) counting the finished members of a chord."""
    return CHORD_COUNTER_PREFIX + chord_id


_TASK_ID = re.compile(r"[A-Za-z0-9_\-=]{1,128}")


def valid_task_id(task_id: object) -> bool:
    """Task ids are usable as one KV key token: letters, digits, ``-``, ``_``, ``=``."""
    return isinstance(task_id, str) and bool(_TASK_ID.fullmatch(task_id))
