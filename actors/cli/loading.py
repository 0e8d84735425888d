"""Loading an app for the command line, and starting a local nats-server when it needs one."""

from __future__ import annotations

import importlib
import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import structlog

from actors.app import App
from actors.config import DEFAULT_NATS_URL
from actors.errors import ConfigurationError
from actors.nats.server import EmbeddedServer

log = structlog.get_logger(__name__)


def load_app(path: str) -> App:
    """Import ``module:attribute`` (attribute defaults to ``app``) and return the App."""
    module_name, _, attribute = path.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attribute or "app", None)
    if not isinstance(app, App):
        raise ConfigurationError(
            f"{path!r} is not an actors App: give MODULE:ATTRIBUTE, e.g. tasks:app"
        )
    return app


def reachable(url: str, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections at the URL's host and port."""
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout
        ):
            return True
    except OSError:
        return False


def start_embedded(app: App) -> EmbeddedServer | None:
    """Start a local nats-server when no URL is configured and none listens at the default."""
    if app.conf.nats_url is not None or reachable(DEFAULT_NATS_URL):
        return None
    port = urlparse(DEFAULT_NATS_URL).port or 4222
    server = EmbeddedServer(Path(app.conf.embedded_dir) / "nats", port=port)
    server.start()
    log.info("server.embedded_started", url=server.url, store_dir=str(server.store_dir.resolve()))
    return server


def open_app(path: str) -> tuple[App, EmbeddedServer | None]:
    """Load the app at ``path`` and start the embedded server if it needs one.

    The app (and processes started from here, through the environment) then use that server.
    """
    app = load_app(path)
    server = start_embedded(app)
    if server is not None:
        app.conf.nats_url = server.url
        os.environ["ACTORS_NATS_URL"] = server.url
    return app, server


def load_callable(path: str) -> Any:
    """Import ``module:attribute`` and return the attribute."""
    module_name, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load {path!r}: {exc}") from exc
