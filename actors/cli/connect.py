"""The connection options every command takes, and running one action on a connection."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from actors.cli.output import fail
from actors.config import Settings
from actors.errors import ActorsError
from actors.log import configure_logging
from actors.nats.broker import Broker

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_PANEL = "Connection"
# (parameter, option, setting, help). Each one sets ACTORS_<SETTING> while the command
# runs, so that worker processes started from it and Settings.build see the same values.
_OPTIONS = (
    ("nats_url", "--nats-url", "nats_url", "NATS URL(s), comma-separated (env ACTORS_NATS_URL)."),
    ("nats_creds", "--nats-creds", "nats_creds", "NATS .creds file (env ACTORS_NATS_CREDS)."),
    ("nats_user", "--nats-user", "nats_user", "NATS user (env ACTORS_NATS_USER)."),
    (
        "nats_password",
        "--nats-password",
        "nats_password",
        "NATS password (env ACTORS_NATS_PASSWORD: safer).",
    ),
    ("nats_token", "--nats-token", "nats_token", "NATS token (env ACTORS_NATS_TOKEN)."),
    ("nats_tls_ca", "--tls-ca", "nats_tls_ca", "CA bundle (env ACTORS_NATS_TLS_CA)."),
    ("nats_tls_cert", "--tls-cert", "nats_tls_cert", "Client cert (env ACTORS_NATS_TLS_CERT)."),
    ("nats_tls_key", "--tls-key", "nats_tls_key", "Client key (env ACTORS_NATS_TLS_KEY)."),
)


def connection_options(command: F) -> F:
    """Add ``--nats-url`` and the credential options to a typer command.

    The wrapped command sees the values through the environment (``ACTORS_NATS_*``) for the
    time it runs, which is how ``Settings.build`` and worker processes read them.
    """
    signature = inspect.signature(command, eval_str=True)
    extra = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[str | None, typer.Option(flag, help=text, rich_help_panel=_PANEL)],
        )
        for name, flag, _, text in _OPTIONS
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {setting: kwargs.pop(name, None) for name, _, setting, _ in _OPTIONS}
        saved = {key: os.environ.get(key) for key in _env_keys()}
        for setting, value in given.items():
            if value is not None:
                os.environ["ACTORS_" + setting.upper()] = value
        try:
            return command(*args, **kwargs)
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old

    params = [*signature.parameters.values(), *extra]
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _env_keys() -> list[str]:
    return ["ACTORS_" + setting.upper() for _, _, setting, _ in _OPTIONS]


def with_broker(action: Callable[[Broker], Awaitable[T]], topology: bool = True) -> T:
    """Connect with the settings from the environment, run ``action``, close; errors exit 2."""
    configure_logging("error")

    async def run() -> T:
        broker = await Broker.connect(Settings.build({}), "actors-cli")
        try:
            if topology:
                await broker.streams.ensure_topology()
            return await action(broker)
        finally:
            await broker.close()

    try:
        return asyncio.run(run())
    except ActorsError as exc:
        fail(exc)
