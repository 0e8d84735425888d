"""Settings: one object built from App arguments and ``ACTORS_*`` environment variables."""

from __future__ import annotations

import dataclasses
import inspect
import os
import weakref
from collections.abc import Callable, Mapping
from datetime import timedelta
from difflib import get_close_matches
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from actors import celery_settings
from actors.errors import ConfigurationError

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


@dataclasses.dataclass
class Settings:
    """Every setting of an App. Each one can also come from ``ACTORS_<NAME>`` in the environment.

    Precedence: arguments to ``App(...)`` (or assignments to ``app.conf``), then environment,
    then the defaults below. Durations are float seconds. The full table is in README.md.
    """

    nats_url: str | None = None
    """Comma-separated NATS seed URLs. None: the local default, started if not reachable."""
    nats_user: str | None = None
    nats_password: str | None = None
    nats_token: str | None = None
    nats_creds: str | None = None
    """Path of a NATS credentials (.creds) file."""
    nats_tls_ca: str | None = None
    nats_tls_cert: str | None = None
    nats_tls_key: str | None = None
    nats_tls_hostname: str | None = None
    connect_timeout: float = 5.0
    stream_replicas: int = 1
    """Replicas of every stream and bucket: 3 on a 3-node cluster."""
    result_ttl: float = 86400.0
    """How long results are kept."""
    ignore_result: bool = False
    """Default for tasks: do not store results."""
    track_started: bool = False
    """Default for tasks: store a STARTED record when a task begins (costs one write)."""
    ack_wait: float = 30.0
    """Seconds without an ack or heartbeat before a message is redelivered."""
    max_deliveries: int = 5
    """Deliveries of one message before it goes to the dead-letter stream."""
    concurrency: int = 64
    """Tasks in flight per worker process (threads for sync tasks, coroutines for async)."""
    shutdown_grace: float = 30.0
    """Seconds a stopping worker waits for in-flight tasks before it exits anyway."""
    max_message_bytes: int = 1024 * 1024
    """Messages larger than this are refused by the client and dead-lettered by workers."""
    unrouted_grace: float = 60.0
    """A message no worker has a consumer for is failed (TaskNotRegistered) after this age."""
    publish_timeout: float = 10.0
    confirm_publish: bool = False
    """Sync ``delay()``/``apply_async()``/``send_task()`` wait for the server's PubAck before
    they return (and raise there when the publish fails). Off (the default): the message is
    handed to the connection and confirmed in the background; a failure is raised by the
    task's ``get()``/``ready()`` and by ``app.flush()`` (docs/tasks.md "Publish pipeline")."""
    publish_window: int = 1000
    """Pipelined publishes not yet confirmed, at most; ``delay()`` blocks while it is full."""
    max_disconnected: float = 60.0
    """Seconds a worker may stay disconnected from NATS before it exits (status 4) so that its
    supervisor (systemd, Kubernetes, ``--processes``) restarts it."""
    time_limit: float | None = None
    """Default hard time limit of tasks, in seconds (see docs/tasks.md for what applies when)."""
    soft_time_limit: float | None = None
    """Default soft time limit: SoftTimeLimitExceeded is raised inside the task."""
    events: bool = True
    """Workers publish task and worker events to ACTORS_EVENTS (``actors events``); measured
    to cost under 10% of throughput (docs/operations.md "Events and workers")."""
    task_send_sent_event: bool = False
    """Clients publish a ``task-sent`` event for every task they send (one more message)."""
    events_flush_interval: float = 0.25
    """Seconds a worker gathers events before it publishes them, one message per kind."""
    events_max_age: float = 86400.0
    """How long ACTORS_EVENTS keeps events, so a monitor started later can replay them."""
    events_max_bytes: int = 256 * 1024 * 1024
    """The most ACTORS_EVENTS holds; the oldest events go first."""
    worker_heartbeat: float = 2.0
    """Seconds between worker heartbeats; a record not refreshed for 3 of them disappears."""
    embedded_dir: str = ".actors"
    """Where the embedded nats-server keeps its data (under ``nats/``)."""
    timezone: str = "UTC"
    """IANA zone of beat's crontabs, and of naive ``eta``/``expires`` datetimes."""
    acks_late: bool = True
    """Default of the actor option ``acks_late`` (Celery's ``task_acks_late``)."""
    max_retries: int | None = 3
    """Default of the actor option ``max_retries`` (None: retry for ever)."""
    default_retry_delay: float = 180.0
    """Default of the actor option ``default_retry_delay``, in seconds."""
    prefetch_multiplier: int = 1
    """Each consumer (one per queue and priority band) holds up to its queue's slots x this many
    fetched messages."""
    max_tasks_per_child: int | None = None
    """A worker process that ran this many tasks stops and its supervisor starts a fresh one."""
    max_memory_per_child: int | None = None
    """A worker process whose resident memory passes this many KiB after a task is replaced."""
    beat_schedule: dict[str, Any] = dataclasses.field(default_factory=dict)
    tracing: bool = False
    """Install OpenTelemetry tracing (``actors.tracing.TracingMiddleware``) on the App; needs
    the extra ``actors[otel]`` (ConfigurationError without it)."""
    task_routes: Any = None
    """Celery's ``task_routes``: a map of task name or glob to a queue name (or
    ``{"queue": ..., "priority": ...}``), or a list of such maps (docs/routing.md)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _FIELDS:
            if name not in celery_settings.RENAMED and name not in celery_settings.REFUSED:
                raise ConfigurationError(_unknown(name))
            for ours, converted in celery_settings.translate(name, value):
                setattr(self, ours, converted)
            return
        super().__setattr__(name, _coerce(name, value))
        for watcher in self.__dict__.get("_watchers", ()):
            callback = watcher()
            if callback is not None:
                callback(name)

    def watch(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(name)`` after each later change of a setting (the App applies
        ``tracing`` and the task defaults). A bound method is held weakly."""
        ref: Callable[[], Callable[[str], None] | None] = (
            weakref.WeakMethod(callback) if inspect.ismethod(callback) else lambda: callback
        )
        self.__dict__.setdefault("_watchers", []).append(ref)

    def __repr__(self) -> str:
        shown = []
        for name in _FIELDS:
            value = getattr(self, name)
            if name in _SECRETS and value is not None:
                value = "***"
            elif name == "nats_url" and value is not None:
                value = redact_url(value)
            shown.append(f"{name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def redact(self, text: str) -> str:
        """``text`` with every password and token these settings hold replaced by ``***``."""
        secrets = [getattr(self, name) for name in _SECRETS]
        secrets += [secret for url in self.nats_servers for secret in _url_secrets(url)]
        for secret in sorted(filter(None, secrets), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def update(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Set several settings at once, like Celery's ``app.conf.update``; Celery's setting
        names are read as ours (actors/celery_settings.py)."""
        for name, value in {**(values or {}), **kwargs}.items():
            setattr(self, name, value)

    @property
    def nats_servers(self) -> list[str]:
        """The seed URLs as a list."""
        return [u.strip() for u in (self.nats_url or DEFAULT_NATS_URL).split(",") if u.strip()]

    @classmethod
    def build(
        cls, overrides: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Settings from ``overrides`` first, then ``ACTORS_*`` variables, then defaults."""
        env = os.environ if environ is None else environ
        settings = cls()
        for name in _FIELDS:
            value = env.get("ACTORS_" + name.upper())
            if value is not None and value != "":
                setattr(settings, name, value)
        for name, value in overrides.items():
            setattr(settings, name, value)
        return settings


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_SECRETS = ("nats_password", "nats_token")


def redact_url(url: str) -> str:
    """NATS URL(s) fit to print: ``nats://user:***@host``, ``nats://***@host`` (a token)."""
    return ",".join(_redact_one(part) for part in url.split(","))


def _split_userinfo(url: str) -> tuple[str, str, str]:
    """``(before, userinfo, after)`` of one URL; userinfo is empty when there is none."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url, "", ""
    return f"{scheme}{sep}", userinfo, f"@{host}{slash}{path}"


def _redact_one(url: str) -> str:
    before, userinfo, after = _split_userinfo(url)
    if not userinfo:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{before}{user}:***{after}" if colon else f"{before}***{after}"


def _url_secrets(url: str) -> list[str]:
    """The password (or token) in a URL, also percent-decoded, as it could appear in text."""
    _, userinfo, _ = _split_userinfo(url)
    user, colon, password = userinfo.partition(":")
    secret = password if colon else user
    return [secret, unquote(secret)] if secret else []


def _unknown(name: str) -> str:
    close = get_close_matches(name, list(_FIELDS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown setting {name!r}{hint}; settings are listed in README.md"


def _coerce(name: str, value: Any) -> Any:
    """Convert strings from the environment and timedeltas to the setting's type."""
    kind = _FIELDS[name].type
    if name == "timezone":
        _check_zone(value)
    try:
        if isinstance(value, timedelta):
            return value.total_seconds()
        if not isinstance(value, str) or kind in ("str | None", "str"):
            return value
        if kind == "bool":
            lowered = value.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes", "on")
        if kind in ("int", "int | None"):
            return int(value) if value.strip().lower() not in ("", "none") else None
        if kind in ("float", "float | None"):
            return float(value) if value.strip().lower() not in ("", "none") else None
    except ValueError:
        raise ConfigurationError(
            f"setting {name!r} expects {kind}, got {value!r} (check ACTORS_{name.upper()})"
        ) from None
    return value


def _check_zone(value: Any) -> None:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"timezone {value!r} is not an IANA zone name (e.g. 'Europe/Paris')"
        ) from None
