"""What the monitor knows about tasks: an in-memory index built from the events stream. Pure.

The index is rebuilt from ``ACTORS_EVENTS`` when the monitor starts (the stream is the state,
so a restart loses nothing) and kept current by following the stream. Memory is bounded:
at most ``max_tasks`` tasks (the oldest first seen is forgotten first), at most
``_MAX_TIMELINE`` events per task, and per-minute counters for ``_MINUTES`` minutes.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from actors.wire import events

# Celery's state names; RECEIVED and REJECTED exist only in the monitor (no result record).
PENDING = "PENDING"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
REJECTED = "REJECTED"
STATES = (PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, REJECTED)
_STATE_OF = {
    events.TASK_SENT: PENDING,
    events.TASK_RECEIVED: RECEIVED,
    events.TASK_STARTED: STARTED,
    events.TASK_RETRIED: RETRY,
    events.TASK_SUCCEEDED: SUCCESS,
    events.TASK_FAILED: FAILURE,
    events.TASK_REVOKED: REVOKED,
    events.TASK_REJECTED: REJECTED,
}
# Events of one flush share a timestamp's neighbourhood: on a tie the later step wins.
_RANK = {state: rank for rank, state in enumerate(STATES)}
_FINAL = frozenset({SUCCESS, FAILURE, REVOKED, REJECTED})
_OUTCOMES = {events.TASK_SUCCEEDED: "succeeded", events.TASK_FAILED: "failed"}
_OUTCOMES[events.TASK_RETRIED] = "retried"
_MAX_TIMELINE = 32
_MINUTES = 60
_TEXT = 500  # characters kept of any text field of an event (workers send at most 200)


@dataclasses.dataclass(slots=True)
class TaskView:
    """One task as its events describe it. Times are Unix seconds."""

    id: str
    name: str = ""
    state: str = PENDING
    state_at: float = 0.0
    worker: str = ""
    args: str = ""
    kwargs: str = ""
    result: str = ""
    exception: str = ""
    reason: str = ""
    retries: int = 0
    eta: str = ""
    root_id: str = ""
    parent_id: str = ""
    group_id: str = ""
    chord: str = ""
    sent: float | None = None
    received: float | None = None
    started: float | None = None
    finished: float | None = None
    runtime: float | None = None
    timeline: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The fields a task list shows."""
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "worker": self.worker,
            "retries": self.retries,
            "received": self.received,
            "started": self.started,
            "finished": self.finished,
            "runtime": self.runtime,
            "updated": self.state_at,
        }

    def to_json(self) -> dict[str, Any]:
        """Everything known, as a plain map."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class TaskFilter:
    """What a task list shows; empty fields match everything."""

    state: str = ""
    name: str = ""
    worker: str = ""
    search: str = ""
    """A task id, or the start of one."""
    since: float | None = None
    until: float | None = None

    def matches(self, task: TaskView) -> bool:
        """True when ``task`` passes every given condition."""
        if self.state and task.state != self.state:
            return False
        if self.name and self.name not in task.name:
            return False
        if self.worker and self.worker not in task.worker:
            return False
        if self.search and not task.id.startswith(self.search):
            return False
        seen = task.received or task.sent or task.state_at
        if self.since is not None and seen < self.since:
            return False
        return self.until is None or seen <= self.until


class TaskIndex:
    """Tasks by id in the order first seen, with per-minute outcome counts."""

    def __init__(self, max_tasks: int = 100_000) -> None:
        self.max_tasks = max_tasks
        self.tasks: dict[str, TaskView] = {}
        self.events_seen = 0
        self.last_event_at: float | None = None
        self.forgotten = 0
        self._minutes: dict[int, Counter[str]] = {}
        self._states: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.tasks)

    def add(self, event: Mapping[str, Any]) -> TaskView | None:
        """Apply one event; the task it changed (None for worker and unreadable events)."""
        self.events_seen += 1
        kind = event.get("type")
        stamp = event.get("timestamp")
        stamp = float(stamp) if isinstance(stamp, int | float) else 0.0
        self.last_event_at = max(self.last_event_at or 0.0, stamp)
        task_id = event.get("uuid")
        if kind not in _STATE_OF or not isinstance(task_id, str) or not task_id:
            return None
        task = self.tasks.get(task_id)
        if task is None:
            task = self.tasks[task_id] = TaskView(id=task_id[:_TEXT], state_at=stamp)
            self._states[task.state] += 1
            self._forget_oldest()
        self._apply(task, str(kind), stamp, event)
        if kind in _OUTCOMES:
            counts = self._minutes.setdefault(int(stamp // 60), Counter())
            counts[_OUTCOMES[str(kind)]] += 1
            counts["actor:" + task.name] += 1
            self._drop_old_minutes(int(stamp // 60))
        return task

    def _apply(self, task: TaskView, kind: str, stamp: float, event: Mapping[str, Any]) -> None:
        text = {k: _text(v) for k, v in event.items() if k not in ("timestamp", "clock")}
        # Names and hostnames repeat across tasks: one copy each (a quarter of the memory).
        task.name = sys.intern(text["name"]) if text.get("name") else task.name
        hostname = sys.intern(text.get("hostname", ""))
        retries = event.get("retries")
        if isinstance(retries, int) and not isinstance(retries, bool):
            task.retries = max(task.retries, retries)
        for field in ("args", "kwargs", "eta", "root_id", "parent_id", "group_id", "chord"):
            if text.get(field):
                setattr(task, field, text[field])
        state = _STATE_OF[kind]
        if kind == events.TASK_SENT:
            task.sent = stamp
        elif kind == events.TASK_RECEIVED:
            task.received = task.received or stamp
            task.worker = hostname
        elif kind == events.TASK_STARTED:
            task.started = stamp
            task.worker = hostname
        else:
            task.finished = stamp if state != RETRY else None
            runtime = event.get("runtime")
            if isinstance(runtime, int | float) and not isinstance(runtime, bool):
                task.runtime = float(runtime)
            task.result = text.get("result", task.result)
            task.exception = text.get("exception", task.exception)
            task.reason = text.get("reason", task.reason)
        if _moves(task, state, stamp):
            self._states[task.state] -= 1
            task.state, task.state_at = state, stamp
            self._states[state] += 1
        step: dict[str, Any] = {"type": kind, "timestamp": stamp, "hostname": hostname}
        for field in ("runtime", "exception", "reason", "eta", "retries"):
            if field in event:
                step[field] = event[field] if field in ("runtime", "retries") else text[field]
        task.timeline.append(step)
        if len(task.timeline) > _MAX_TIMELINE:
            del task.timeline[1]  # keep the first step (received or sent) and the latest ones
        task.timeline.sort(key=_step_order)

    def _forget_oldest(self) -> None:
        while len(self.tasks) > self.max_tasks:
            oldest = self.tasks.pop(next(iter(self.tasks)))
            self._states[oldest.state] -= 1
            self.forgotten += 1

    def _drop_old_minutes(self, now: int) -> None:
        if len(self._minutes) > _MINUTES:
            for minute in [m for m in self._minutes if m <= now - _MINUTES]:
                del self._minutes[minute]

    # -- reading -----------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskView | None:
        """The task with this id, if the index holds it."""
        return self.tasks.get(task_id)

    def states(self) -> dict[str, int]:
        """How many tasks the index holds in each state."""
        return {state: self._states.get(state, 0) for state in STATES}

    def newest_first(self) -> Iterator[TaskView]:
        """Every task, the one first seen last coming first."""
        return reversed(self.tasks.values())

    def page(self, where: TaskFilter, offset: int, limit: int) -> tuple[list[TaskView], int]:
        """``limit`` tasks matching ``where`` after ``offset`` (newest first), and how many
        match in all."""
        found: list[TaskView] = []
        total = 0
        for task in self.newest_first():
            if where.matches(task):
                if offset <= total < offset + limit:
                    found.append(task)
                total += 1
        return found, total

    def outcomes(self, now: float, minutes: int = 15) -> list[dict[str, Any]]:
        """Per minute, oldest first, for the last ``minutes`` minutes up to ``now``: how many
        tasks succeeded, failed and were retried."""
        last = int(now // 60)
        rows = []
        for minute in range(last - minutes + 1, last + 1):
            counts = self._minutes.get(minute, Counter())
            rows.append(
                {"minute": minute * 60, **{k: counts.get(k, 0) for k in _OUTCOMES.values()}}
            )
        return rows

    def rates(self, now: float, minutes: int = 5) -> dict[str, float]:
        """Per task name, runs that ended (succeeded, failed or retried) per second over the last
        ``minutes`` full minutes and the current one."""
        last = int(now // 60)
        total: Counter[str] = Counter()
        for minute in range(last - minutes, last + 1):
            total.update(self._minutes.get(minute, Counter()))
        span = minutes * 60 + (now % 60)
        return {k[6:]: v / span for k, v in sorted(total.items()) if k.startswith("actor:")}

    def workflow(self, task: TaskView) -> list[TaskView]:
        """The tasks of ``task``'s workflow, oldest first (at most 200): those sharing its
        root, and the members of a chord it belongs to or follows, with their own roots."""
        roots = {task.root_id or task.id}
        chords = {task.chord} - {""}
        found: list[TaskView] = []
        for _ in range(3):  # a chord's members have roots of their own: follow them once more
            found = [
                t
                for t in self.tasks.values()
                if (t.root_id or t.id) in roots or (t.chord and t.chord in chords)
            ]
            more_roots = {t.root_id or t.id for t in found}
            more_chords = {t.chord for t in found if t.chord}
            if more_roots <= roots and more_chords <= chords:
                break
            roots |= more_roots
            chords |= more_chords
        return found[:200]


def _moves(task: TaskView, state: str, stamp: float) -> bool:
    """True when an event bringing ``state`` at ``stamp`` changes the task's state.

    Clocks of different hosts disagree: a client's ``task-sent`` may carry a later time than
    the worker's ``task-succeeded``. So time decides only between steps of the same kind:
    sent never replaces anything, a final state is replaced only by a later final one, and
    any final state replaces a step still under way (a retry goes on with new steps)."""
    if state == PENDING:
        return task.state == PENDING
    if task.state in _FINAL:
        return state in _FINAL and stamp >= task.state_at
    if state in _FINAL or task.state == PENDING:
        return True
    return (stamp, _RANK[state]) >= (task.state_at, _RANK[task.state])


def _step_order(step: dict[str, Any]) -> tuple[bool, float]:
    return step["type"] != events.TASK_SENT, step["timestamp"]


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:_TEXT]
