"""The NATS connection itself: connecting with our options, connection events, and
request/reply over one inbox. Everything above this module sees no nats-py types."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg

from actors.config import Settings, redact_url
from actors.errors import BrokerUnavailable, ConfigurationError, MessageTooLarge
from actors.nats.timeout_heap import TimeoutHeap, fail_with_timeout

log = structlog.get_logger(__name__)

NATS_ERRORS = (nats.errors.Error, nats.js.errors.Error, OSError, asyncio.TimeoutError)
"""What nats-py raises for connection and JetStream trouble; wrapped at our boundary."""


async def connect(settings: Settings, name: str) -> tuple[Client, ConnectionEvents]:
    """Connect to the configured NATS servers; BrokerUnavailable says what to check."""
    events = ConnectionEvents(settings.redact)
    options: dict[str, Any] = {
        "servers": settings.nats_servers,
        "name": name,
        "connect_timeout": settings.connect_timeout,
        # Bounded for the first connect, so a wrong URL fails fast; unbounded after.
        "max_reconnect_attempts": 2,
        "reconnect_time_wait": 0.5,
        "allow_reconnect": True,
        "error_cb": events.on_error,
        "disconnected_cb": events.on_disconnect,
        "reconnected_cb": events.on_reconnect,
        "closed_cb": events.on_closed,
        "pending_size": 64 * 1024 * 1024,
        # nats-py's subject check stays on (the default, skip_subject_validation=False): it
        # refuses whitespace and CR/LF, so even a subject built from data that escaped our
        # own guard (topology.subject_token) cannot inject NATS protocol. Costs one regex
        # search per publish.
    }
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password
    if settings.nats_token:
        options["token"] = settings.nats_token
    if settings.nats_creds:
        options["user_credentials"] = settings.nats_creds
    tls = tls_context(settings)
    if tls is not None:
        options["tls"] = tls
        if settings.nats_tls_hostname:
            options["tls_hostname"] = settings.nats_tls_hostname
    nc = Client()
    # nats-py can keep retrying some failures (e.g. TLS verification) for ever: bound it.
    deadline = settings.connect_timeout * 3 * len(settings.nats_servers) + 2
    try:
        await asyncio.wait_for(nc.connect(**options), deadline)
    except NATS_ERRORS as exc:
        with contextlib.suppress(*NATS_ERRORS):
            await nc.close()
        cause = events.last_error or exc
        error = BrokerUnavailable(
            f"cannot connect to NATS at {redact_url(','.join(settings.nats_servers))} "
            f"({settings.redact(repr(cause))}); start one with `actors server`, or set "
            "ACTORS_NATS_URL to a running server"
        )
        # Chained only when the cause cannot show a password in a traceback.
        secret = settings.redact(repr(exc)) != repr(exc) or settings.redact(str(exc)) != str(exc)
        raise error from (None if secret else exc)
    nc.options["max_reconnect_attempts"] = -1
    return nc, events


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context the settings ask for, or None."""
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.nats_tls_ca)
        if settings.nats_tls_cert:
            context.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load TLS files: {exc}") from exc
    return context


_HEADER_BLOCK = len(b"NATS/1.0\r\n\r\n")


def wire_size(body: bytes, headers: Mapping[str, str] | None) -> int:
    """Bytes the server counts against ``max_payload``: the encoded header block plus the body.

    Counts headers the way nats-py encodes them: ``NATS/1.0``, one ``Key: value`` line each,
    a blank line.
    """
    if headers is None:
        return len(body)
    size = _HEADER_BLOCK + len(body)
    for key, value in headers.items():
        if key.strip():  # nats-py skips empty keys
            size += len(key.strip().encode()) + len(value.strip().encode()) + 4  # ": ", CRLF
    return size


def check_size(nc: Client, subject: str, body: bytes, headers: Mapping[str, str] | None) -> None:
    """Raise MessageTooLarge when the server would refuse the message.

    nats-py checks only the body; a message whose body and headers together exceed the
    server's ``max_payload`` makes the server close the connection, and nats-py does not
    reconnect after that.
    """
    size = wire_size(body, headers)
    if size > nc.max_payload:
        raise MessageTooLarge(
            f"message to {subject} is {size} bytes with headers, over the server's "
            f"max_payload of {nc.max_payload} bytes; send a reference (a key, a URL) instead "
            "of the data",
            size,
            nc.max_payload,
        )


class ConnectionEvents:
    """Logs connection trouble (quiet once the connection is being closed on purpose) and
    remembers since when the connection has been down."""

    def __init__(self, redact: Callable[[str], str] = str) -> None:
        self._redact = redact
        self.closing = False
        self.last_error: Exception | None = None
        self.disconnected_since: float | None = None
        """``time.monotonic()`` of the disconnect, while not reconnected."""
        self.on_reconnected: list[Callable[[], None]] = []

    async def on_error(self, exc: Exception) -> None:
        self.last_error = exc
        if not self.closing:
            log.warning("nats.error", error=self._redact(repr(exc)))

    async def on_disconnect(self) -> None:
        if self.disconnected_since is None:
            self.disconnected_since = time.monotonic()
        if not self.closing:
            log.warning("nats.disconnected")

    async def on_reconnect(self) -> None:
        self.disconnected_since = None
        log.info("nats.reconnected")
        for listener in self.on_reconnected:
            listener()

    async def on_closed(self) -> None:
        if not self.closing:
            log.error("nats.closed", error=repr(self.last_error) if self.last_error else None)


def reply_status(msg: Msg) -> str | None:
    """The server's status code of a reply (``503``, ``404``, ...), or None for a message.

    A direct get returns a stored message with its own headers, and a hostile publisher may
    have stored a ``Status`` header: a reply that carries ``Nats-Sequence`` is a stored
    message, whatever its other headers say.
    """
    headers = msg.headers or {}
    if "Nats-Sequence" in headers:
        return None
    return headers.get("Status")


class ReplyInbox:
    """Request/reply over one wildcard inbox subscription.

    nats-py's ``request`` wraps each call in ``asyncio.wait_for`` (a task per request); at
    thousands of publishes per second that dominates. Here a request is a future in a dict,
    and one :class:`TimeoutHeap` times them all out.
    """

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = nc.new_inbox()
        self._futures: dict[str, asyncio.Future[Msg]] = {}
        self._next = 0
        self._sub: Any = None
        self._deadlines: TimeoutHeap[str] = TimeoutHeap(self._expired)

    async def request(
        self, subject: str, payload: bytes, headers: dict[str, str] | None, timeout: float
    ) -> Msg:
        """Send a request and wait up to ``timeout`` seconds for its reply."""
        return await (await self.send(subject, payload, headers, timeout))

    async def send(
        self, subject: str, payload: bytes, headers: dict[str, str] | None, timeout: float
    ) -> asyncio.Future[Msg]:
        """Send a request and return the future of its reply (TimeoutError after
        ``timeout`` seconds) without waiting for it: requests pipelined."""
        check_size(self._nc, subject, payload, headers)  # before a future waits for a reply
        if self._sub is None:
            self._sub = await self._nc.subscribe(
                self._prefix + ".*", cb=self._on_reply, pending_msgs_limit=-1
            )
        self._next += 1
        token = str(self._next)
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        # Forgotten at the reply or at the deadline, whichever comes first: no done-callback
        # per request (a future's callbacks cost a loop turn each).
        self._futures[token] = future
        self._deadlines.add(token, timeout)
        try:
            await self._nc.publish(
                subject, payload, reply=f"{self._prefix}.{token}", headers=headers
            )
        except BaseException:
            del self._futures[token]
            future.cancel()
            raise
        return future

    def _expired(self, token: str) -> None:
        future = self._futures.pop(token, None)
        if future is not None:
            fail_with_timeout(future)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._futures.pop(msg.subject[len(self._prefix) + 1 :], None)
        if future is None or future.done():
            return
        if reply_status(msg) == "503":
            future.set_exception(nats.errors.NoRespondersError())
        else:
            future.set_result(msg)

    async def close(self) -> None:
        self._deadlines.close()
