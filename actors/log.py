"""structlog set-up. Library modules only call ``structlog.get_logger``; the CLI calls
:func:`configure_logging`."""

from __future__ import annotations

import logging
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
    and test runners and CLI harnesses swap stderr)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


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


def configure_logging(level: str = "info", fmt: str | None = None) -> None:
    """Console rendering on a TTY, JSON lines otherwise or when ``fmt == "json"``."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ConfigurationError(f"unknown log level {level!r}: use debug, info, warning or error")
    use_json = fmt == "json" or (fmt is None and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            bound_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(name)s %(message)s")
