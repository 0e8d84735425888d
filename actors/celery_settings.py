"""Celery's setting names, read as ours: ``app.conf.update(task_acks_late=True)`` and
``app.config_from_object("celeryconfig")`` take a Celery project's settings unchanged.

Each Celery name maps to one of our settings (actors/config.py), or is refused with the reason
and what to use instead: a setting that cannot apply must not be accepted and then ignored.
The table is also in docs/celery.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from actors.errors import ConfigurationError

_SERIALIZERS = {"json", "msgpack", "application/json", "application/msgpack"}
_SERIALIZERS.add("application/x-msgpack")


def _nats_url(value: Any) -> Any:
    for url in str(value).split(","):
        scheme = url.strip().partition("://")[0].lower()
        if scheme not in ("nats", "tls", "ws", "wss"):
            raise ConfigurationError(
                f"broker_url {scheme}:// is not NATS: actors runs on NATS JetStream only; give "
                "nats://host:4222 (comma-separate a cluster's seeds)"
            )
    return value


def _serializer(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        values = [value] if isinstance(value, str) else list(value)
        for item in values:
            if str(item).lower() not in _SERIALIZERS:
                raise ConfigurationError(
                    f"{name}={item!r} is refused: actors never uses pickle (a message could run "
                    "code in the worker) or yaml; messages are msgpack or JSON, and both carry "
                    "datetime, date, time, UUID and Decimal (docs/protocol.md, 'Argument types')"
                )

    return check


def _enable_utc(value: Any) -> None:
    if not value:
        raise ConfigurationError(
            "enable_utc=False is refused: message times are always UTC on the wire (RFC 3339 "
            "with Z); set timezone= to read naive eta/expires datetimes in your zone"
        )


def _prefetch(value: Any) -> Any:
    if int(value) < 1:
        raise ConfigurationError(
            "worker_prefetch_multiplier must be at least 1: an unbounded prefetch (Celery's 0) "
            "is not offered, since one worker would hold messages others could run"
        )
    return int(value)


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _result_expires(value: Any) -> Any:
    if value is None:
        raise ConfigurationError(
            "result_expires=None (keep results for ever) is refused: results live in a KV "
            "bucket with a TTL; give seconds (or a timedelta)"
        )
    return _seconds(value)


_SAME = lambda value: value  # noqa: E731

RENAMED: dict[str, tuple[str | None, Callable[[Any], Any]]] = {
    "broker_url": ("nats_url", _nats_url),
    "result_expires": ("result_ttl", _result_expires),
    "task_acks_late": ("acks_late", _SAME),
    "task_time_limit": ("time_limit", _seconds),
    "task_soft_time_limit": ("soft_time_limit", _seconds),
    "task_ignore_result": ("ignore_result", _SAME),
    "task_track_started": ("track_started", _SAME),
    "task_default_retry_delay": ("default_retry_delay", _seconds),
    "task_max_retries": ("max_retries", _SAME),
    "worker_concurrency": ("concurrency", _SAME),
    "worker_prefetch_multiplier": ("prefetch_multiplier", _prefetch),
    "worker_max_tasks_per_child": ("max_tasks_per_child", _SAME),
    "worker_max_memory_per_child": ("max_memory_per_child", _SAME),
    # Checked, then nothing to set: the wire already does what they ask for.
    "enable_utc": (None, _enable_utc),
    "task_serializer": (None, _serializer("task_serializer")),
    "result_serializer": (None, _serializer("result_serializer")),
    "accept_content": (None, _serializer("accept_content")),
    "result_accept_content": (None, _serializer("result_accept_content")),
}
"""Celery name -> (our setting, or None when it only needs checking; converter/checker)."""

_IMPORTS = (
    "import the task modules from the app's module, or call app.autodiscover_tasks([...]); "
    "`actors run module:app` imports that module"
)
_LOG_FORMAT = "logs are structlog key-value lines: --log-format console|json"
_BEAT_STATE = "beat keeps its state in the NATS KV bucket actors_beat"

REFUSED: dict[str, str] = {
    "result_backend": "results always live in the NATS KV bucket actors_results (no backend "
    "to choose); result_expires sets how long",
    "broker_transport_options": "NATS options are settings of their own (nats_user, "
    "nats_creds, nats_tls_ca, connect_timeout, ...), see README.md",
    "task_always_eager": "call the task to run it in-process (add(2, 2)); a test runs a real "
    "worker against a real nats-server (docs/celery.md 'Testing')",
    "task_eager_propagates": "see task_always_eager: call the task in-process instead",
    "worker_pool": "sync tasks run in threads, async ones on the loop; pool='process' per task "
    "and `actors run --processes N` give processes",
    "broker_connection_retry_on_startup": "the client and the worker always retry the "
    "connection (connect_timeout, max_disconnected)",
    "result_extended": "every result record already carries the task name and dates",
    "worker_send_task_events": "workers publish events by default: set events=True/False",
    "imports": _IMPORTS,
    "include": _IMPORTS,
    "task_annotations": "give options per task in @app.task(...)",
    "task_default_rate_limit": "give rate_limit per task in @app.task(rate_limit=...)",
    "task_compression": "messages are not compressed; pass a reference (a key, a URL) for "
    "large data (max_message_bytes)",
    "task_reject_on_worker_lost": "with acks_late a task whose worker died is redelivered, up "
    "to max_deliveries, then dead-lettered",
    "task_publish_retry": "publishing always retries through leader elections, up to "
    "publish_timeout",
    "broker_pool_limit": "one NATS connection per process and event loop carries everything",
    "worker_hijack_root_logger": "only the `actors` command configures logging "
    "(--log-level, --log-format)",
    "worker_log_format": _LOG_FORMAT,
    "worker_task_log_format": _LOG_FORMAT,
    "beat_scheduler": _BEAT_STATE,
    "beat_schedule_filename": _BEAT_STATE,
}
"""Celery names refused, with the reason and what to use instead."""


def translate(name: str, value: Any) -> list[tuple[str, Any]]:
    """Our ``(setting, value)`` pairs for Celery's ``name``; [] when nothing is to be set.

    Raises ConfigurationError for a refused setting, KeyError when ``name`` is not Celery's.
    """
    if name in REFUSED:
        raise ConfigurationError(f"setting {name!r} has no equivalent: {REFUSED[name]}")
    ours, convert = RENAMED[name]
    converted = convert(value)
    return [] if ours is None else [(ours, converted)]
