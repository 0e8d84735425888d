"""Periodic tasks: schedule types (interval, crontab) and the beat actor that publishes them.

``schedulers`` builds on ``actors``; the ``actors`` library never imports it (only the CLI
does, for ``actors beat`` and ``actors schedule``). See docs/periodic.md.
"""

from schedulers.beat import Beat, serve, tick_task_id
from schedulers.entries import Entry
from schedulers.policy import Policy
from schedulers.schedules import (
    Interval,
    Schedule,
    crontab,
    parse_schedule,
    schedule_from_dict,
    ticks_between,
)
from schedulers.store import ScheduleInfo, ScheduleNotFound, ScheduleStore

__all__ = [
    "Beat",
    "Entry",
    "Interval",
    "Policy",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFound",
    "ScheduleStore",
    "crontab",
    "parse_schedule",
    "schedule_from_dict",
    "serve",
    "tick_task_id",
    "ticks_between",
]
