"""Names of every NATS object actors uses, and their configurations. Pure: no I/O.

docs/protocol.md is the specification; this module is its implementation.
"""

from __future__ import annotations

import re

from actors.errors import ConfigurationError, ProtocolError

PROTOCOL_VERSION = 1

TASK_STREAM = "ACTORS"
TASK_PREFIX = "actors.task."
SCHEDULE_PREFIX = "actors.sched."
# Delayed tasks live apart from ACTORS: message schedules force rollup headers on their
# stream, and a `Nats-Rollup: all` header on a task subject would purge every queued task.
SCHEDULED_STREAM = "ACTORS_SCHEDULED"
DUE_PREFIX = "actors.due."
DEAD_STREAM = "ACTORS_DEAD"
DEAD_PREFIX = "actors.dead."
RESULTS_BUCKET = "actors_results"
REVOKED_BUCKET = "actors_revoked"
CHORDS_BUCKET = "actors_chords"
CHORD_COUNTER_STREAM = "ACTORS_CHORD_COUNTERS"
CHORD_COUNTER_PREFIX = "actors.chord."

MSGPACK = "application/msgpack"
JSON = "application/json"

# Headers we set or read, besides Nats-Msg-Id and Content-Type.
DEAD_REASON = "Actors-Dead-Reason"
DEAD_SUBJECT = "Actors-Dead-Subject"
DEAD_SEQUENCE = "Actors-Dead-Sequence"
DEAD_TASK = "Actors-Dead-Task"
DEAD_TRUNCATED = "Actors-Dead-Truncated"
DEAD_QUEUE = "Actors-Dead-Queue"
SCHEDULE = "Nats-Schedule"
SCHEDULE_TARGET = "Nats-Schedule-Target"
TTL = "Nats-TTL"

RATE_STREAM = "ACTORS_RATE"
RATE_PREFIX = "actors.rate."

EVENTS_STREAM = "ACTORS_EVENTS"
EVENT_PREFIX = "actors.event."
WORKERS_BUCKET = "actors_workers"
CONTROL_PREFIX = "actors.control."

MAX_TASK_NAME = 200
_TASK_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")


def valid_task_name(name: object) -> bool:
    """Task names are dot-separated words of letters, digits and underscores (at most 200)."""
    return isinstance(name, str) and len(name) <= MAX_TASK_NAME and bool(_TASK_NAME.fullmatch(name))


def validate_task_name(name: str) -> str:
    """Return ``name`` if it can be a task name, else raise ConfigurationError.

    Names are dot-separated words of letters, digits and underscores, so that each maps to
    one NATS subject and one consumer name with no collisions.
    """
    if not valid_task_name(name):
        raise ConfigurationError(
            f"invalid task name {name!r}: use dot-separated words of letters, digits and "
            f"underscores, at most {MAX_TASK_NAME} characters, e.g. 'billing.tasks.charge'"
        )
    return name


# The one guard for data that goes into a subject or a header value. A subject is sent as
# text in the NATS protocol: CR/LF would end the command and start another (one message
# deleted a stream that way), a space or tab splits the command, and * and > make a
# wildcard. Messages are validated before this (actors/wire/validation.py); this is the last
# line.
_TOKEN = r"[^\s\x00-\x1f\x7f*>.]+"
_TOKENS = re.compile(rf"{_TOKEN}(\.{_TOKEN})*")
_HEADER_VALUE = re.compile(r"[^\r\n\x00]*")


def subject_token(text: str) -> str:
    """Return ``text`` if it is safe as one subject token, else raise ProtocolError.

    Refused: empty, whitespace, control characters (CR, LF, NUL ...), ``*``, ``>`` and ``.``.
    """
    if not isinstance(text, str) or "." in text or not _TOKENS.fullmatch(text):
        raise ProtocolError(f"{text!r:.100} cannot be a NATS subject token")
    return text


def subject_tokens(text: str) -> str:
    """Return ``text`` if it is safe as dot-separated subject tokens (no empty token)."""
    if not isinstance(text, str) or not _TOKENS.fullmatch(text):
        raise ProtocolError(f"{text!r:.100} cannot be part of a NATS subject")
    return text


def header_value(text: str) -> str:
    """Return ``text`` if it is safe as a header value (no CR, LF or NUL), else ProtocolError."""
    if not isinstance(text, str) or not _HEADER_VALUE.fullmatch(text):
        raise ProtocolError(f"{text!r:.100} cannot be a NATS header value")
    return text


def task_subject(name: str) -> str:
    """Subject an actor consumes: ``actors.task.<task name>``."""
    return TASK_PREFIX + subject_tokens(name)


def task_name_from_subject(subject: str) -> str | None:
    """The task name a task subject carries, or None for other subjects."""
    return subject[len(TASK_PREFIX) :] if subject.startswith(TASK_PREFIX) else None


def consumer_name(name: str) -> str:
    """Durable consumer of an actor: the task name with dots turned into dashes."""
    return name.replace(".", "-")


def dead_subject(name: str) -> str:
    """Subject a dead letter of task ``name`` is stored under."""
    return DEAD_PREFIX + (name if valid_task_name(name) else "_invalid")


def schedule_subject(task_id: str, retries: int = 0) -> str:
    """The subject holding the schedule of a delayed task: one schedule per subject."""
    base = SCHEDULE_PREFIX + subject_token(task_id)
    return base if retries == 0 else f"{base}.{retries}"


def due_subject(name: str) -> str:
    """Where the schedule of a delayed task ``name`` fires: ``actors.due.<task name>``.

    The server requires a schedule's target to be a subject of the schedule's own stream
    (ACTORS_SCHEDULED); ACTORS sources ``actors.due.>`` from there as ``actors.task.>``.
    """
    return DUE_PREFIX + name


def task_to_due_subject(subject: str) -> str:
    """The due subject of a task subject (to move an old schedule); others unchanged."""
    return DUE_PREFIX + subject[len(TASK_PREFIX) :] if subject.startswith(TASK_PREFIX) else subject


def rate_subject(task_name: str, window: int) -> str:
    """The counter subject of an actor's rate-limit window number ``window``."""
    return f"{RATE_PREFIX}{subject_tokens(consumer_name(task_name))}.{window}"


def result_subject(task_id: str) -> str:
    """The KV subject holding the result of ``task_id``."""
    return kv_subject(RESULTS_BUCKET, task_id)


def kv_subject(bucket: str, key: str) -> str:
    """The subject of ``key`` in KV bucket ``bucket``; keys may be dot-separated tokens."""
    return f"$KV.{bucket}.{subject_tokens(key)}"


def event_subject(kind: str) -> str:
    """Subject of events of ``kind``: ``actors.event.<kind>``, e.g. ``actors.event.task-sent``."""
    return EVENT_PREFIX + subject_token(kind)


def chord_counter_subject(chord_id: str) -> str:
    """Counter subject (``Nats-Incr``) counting the finished members of a chord."""
    return CHORD_COUNTER_PREFIX + subject_token(chord_id)


_TASK_ID = re.compile(r"[A-Za-z0-9_\-=]{1,128}")


def valid_task_id(task_id: object) -> bool:
    """Task ids are usable as one KV key token: letters, digits, ``-``, ``_``, ``=``."""
    return isinstance(task_id, str) and bool(_TASK_ID.fullmatch(task_id))


_NOT_TOKEN = re.compile(r"[\s\x00-\x1f\x7f*>.]")


def worker_token(hostname: str) -> str:
    """A worker's id as one subject token: its hostname (``<pid>@<host>``) with ``.``, ``*``,
    ``>``, whitespace and control characters replaced by ``_`` (``1234@web.example`` ->
    ``1234@web_example``). Names its control subjects and its key in ``actors_workers``."""
    return subject_token(_NOT_TOKEN.sub("_", hostname) or "_")
