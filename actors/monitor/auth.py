"""Who may use the monitor: its settings, the credential check and the CSRF token. Pure.

Actions (revoke, replay, purge, rate limit, shutdown, ...) need credentials: a user and
password (HTTP basic auth, what a browser asks for) or a bearer token (for scripts). With
credentials set, every page needs them, except ``/healthz``. Without them the monitor is
read-only, and it refuses to listen on anything but a loopback address.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping

from actors.errors import ConfigurationError

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclasses.dataclass(frozen=True, slots=True)
class MonitorSettings:
    """How the monitor listens and whom it lets in. Build it with :meth:`build`."""

    address: str = "127.0.0.1"
    port: int = 5555
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    token: str | None = dataclasses.field(default=None, repr=False)
    max_tasks: int = 100_000
    """Tasks the index keeps at most (the oldest first seen are forgotten first)."""

    @classmethod
    def build(
        cls,
        address: str = "127.0.0.1",
        port: int = 5555,
        max_tasks: int = 100_000,
        env: Mapping[str, str] | None = None,
    ) -> MonitorSettings:
        """Settings from the arguments and ``ACTORS_MONITOR_USER``, ``ACTORS_MONITOR_PASSWORD``
        and ``ACTORS_MONITOR_TOKEN``; ConfigurationError when they do not make sense."""
        env = os.environ if env is None else env
        user = env.get("ACTORS_MONITOR_USER") or None
        password = env.get("ACTORS_MONITOR_PASSWORD") or None
        token = env.get("ACTORS_MONITOR_TOKEN") or None
        if (user is None) != (password is None):
            raise ConfigurationError(
                "set both ACTORS_MONITOR_USER and ACTORS_MONITOR_PASSWORD, or neither"
            )
        if user is not None and ":" in user:
            raise ConfigurationError("ACTORS_MONITOR_USER must not contain ':'")
        if not 0 < port < 65536:
            raise ConfigurationError(f"--port must be a TCP port (1-65535), got {port}")
        if max_tasks < 1:
            raise ConfigurationError(f"--max-tasks must be at least 1, got {max_tasks}")
        settings = cls(address, port, user, password, token, max_tasks)
        if not settings.auth_enabled and not is_loopback(address):
            raise ConfigurationError(
                f"the monitor would listen on {address} without authentication: set "
                "ACTORS_MONITOR_USER and ACTORS_MONITOR_PASSWORD, or ACTORS_MONITOR_TOKEN, "
                "or listen on 127.0.0.1"
            )
        return settings

    @property
    def auth_enabled(self) -> bool:
        """True when credentials are set (actions are possible)."""
        return self.password is not None or self.token is not None

    def check(self, authorization: str | None) -> str | None:
        """How the request authenticated (``basic`` or ``bearer``), or None."""
        scheme, _, value = (authorization or "").partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.token is not None:
            return "bearer" if _same(value, self.token) else None
        if scheme.lower() == "basic" and self.password is not None:
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            user, _, password = decoded.partition(":")
            ok = _same(user, self.user or "") & _same(password, self.password)
            return "basic" if ok else None
        return None

    def csrf_token(self) -> str:
        """The token forms carry: derived from the credentials, so every copy of the monitor
        behind a load balancer agrees, and a change of password changes it."""
        secret = f"{self.user}:{self.password}:{self.token}".encode()
        return hmac.new(secret, b"actors-monitor-csrf", hashlib.sha256).hexdigest()

    def csrf_ok(self, given: str | None) -> bool:
        """True when ``given`` is the CSRF token."""
        return given is not None and _same(given, self.csrf_token())


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
