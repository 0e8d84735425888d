"""structlog set-up. Library modules only call ``structlog.get_logger``; the CLI calls
:func:`configure_logging`."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from actors.errors import ConfigurationError

VALUE_LIMIT = 1000
"""Characters kept of one logged value; the rest is replaced by a ``...[truncated N chars]``."""
EXCEPTION_LIMIT = 8 * 1024
"""Characters kept of a rendered exception (traceback) or stack."""
_LONG_KEYS = frozenset({"exception", "stack"})
_SCALARS = (int, float, bool, type(None))


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (loggers are cached on first use,
    and test runners and CLI harnesses swap stderr).

    Each call writes and flushes one whole line, under the lock shared by the processes of
    ``actors run --processes N`` when there is one: lines longer than a pipe's atomic write
    (4 KiB, e.g. a traceback) would otherwise interleave with other processes' lines.
    """

    lock: Any = None
    """An inter-process lock (multiprocessing.Lock), or None in a single process."""

    def write(self, text: str) -> int:
        if self.lock is None:
            written = sys.stderr.write(text)
            sys.stderr.flush()
            return written
        with self.lock:
            written = sys.stderr.write(text)
            sys.stderr.flush()
            return written

    def flush(self) -> None:
        pass  # every write is flushed


_OUTPUT = _CurrentStderr()


def share_output_lock(lock: Any) -> None:
    """Serialize log lines with other processes holding the same ``multiprocessing`` lock."""
    _OUTPUT.lock = lock


def _clip(text: str, limit: int, tail: int = 0) -> str:
    # Private twin of message.clip_text, with a kept tail for tracebacks (their last line
    # names the exception).
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    end = text[len(text) - tail :] if tail else ""
    return f"{text[: limit - tail]}...[truncated {cut} chars]{end}"


def bound_values(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: cap every value of an event, so one hostile message (a huge
    argument, an exception whose repr holds the body) cannot make a huge log line."""
    for key, value in event.items():
        if isinstance(value, _SCALARS):
            continue
        if key in _LONG_KEYS and isinstance(value, str):
            event[key] = _clip(value, EXCEPTION_LIMIT, tail=EXCEPTION_LIMIT // 4)
        elif isinstance(value, str):
            event[key] = _clip(value, VALUE_LIMIT)
        else:  # containers and objects: rendered through repr() anyway
            shown = repr(value)
            if len(shown) > VALUE_LIMIT:
                event[key] = _clip(shown, VALUE_LIMIT)
    return event


def get_task_logger(name: str) -> Any:
    """A logger for task code; lines logged during a task carry its name, id and retries."""
    return structlog.get_logger(name)


_INHERITED = "ACTORS_LOG_INHERITED"
"""``level:format`` for processes started from this one (``pool="process"`` children)."""


def configure_inherited_logging() -> None:
    """In a child process: log as the process that started it, if it configured logging."""
    level, _, fmt = os.environ.get(_INHERITED, "").partition(":")
    if level:
        configure_logging(level, fmt or None)


def configure_logging(level: str = "info", fmt: str | None = None) -> None:
    """Console rendering on a TTY, JSON lines otherwise or when ``fmt == "json"``.

    stdlib ``logging`` (task code, libraries) goes through the same processors: timestamp,
    level, logger name and the task context (task, task_id, retries) bound for a run.
    Child processes started later can log the same way (:func:`configure_inherited_logging`).
    """
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ConfigurationError(f"unknown log level {level!r}: use debug, info, warning or error")
    if fmt not in (None, "json", "console"):
        raise ConfigurationError(f"unknown log format {fmt!r}: use console or json")
    use_json = fmt == "json" or (fmt is None and not sys.stderr.isatty())
    os.environ[_INHERITED] = f"{level}:{'json' if use_json else 'console'}"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            bound_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=_OUTPUT),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(_OUTPUT)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                bound_values,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        if getattr(old, "_actors", False):
            root.removeHandler(old)
    handler._actors = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric)
