"""``/livez`` and ``/readyz`` (and ``/metrics``) on a tiny asyncio HTTP server.

Kubernetes probes need only a status line: no framework, one request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from actors.errors import ConfigurationError
from actors.worker.worker import Worker

log = structlog.get_logger(__name__)

Route = Callable[[], tuple[int, str, bytes]]
"""Answers one GET: status, content type, body."""
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_TEXT = "text/plain; charset=utf-8"


def liveness(worker: Worker) -> str | None:
    """Why the worker process should be restarted, or None while it is alive.

    Alive: the connection to NATS is up or has been down for less than ``max_disconnected``,
    and every pull loop runs (until the worker stops). That this is answered at all shows the
    event loop is not stuck.
    """
    if worker.lost_reason:
        return f"connection to NATS lost: {worker.lost_reason}"
    try:
        lost = worker.broker.connection_lost(worker.settings.max_disconnected)
    except Exception as exc:  # not started
        return str(exc)
    if lost:
        return f"connection to NATS lost: {lost}"
    if not worker.stopping:
        dead = [name for name, consumer in worker.consumers.items() if not consumer.running]
        if dead:
            return f"pull loops ended: {', '.join(sorted(dead))}"
    return None


def readiness(worker: Worker) -> str | None:
    """Why the worker should get no traffic now, or None once its consumers are bound."""
    if worker.stopping:
        return "stopping"
    if not worker.consumers:
        return "consumers not bound yet"
    if not worker.broker.connected:
        return "not connected to NATS"
    return liveness(worker)


def probe(check: Callable[[], str | None]) -> Route:
    """A route answering 200 ``ok``, or 503 with the reason ``check`` gives."""

    def answer() -> tuple[int, str, bytes]:
        problem = check()
        return (200, _TEXT, b"ok\n") if problem is None else (503, _TEXT, f"{problem}\n".encode())

    return answer


class HttpEndpoints:
    """Serves ``routes`` (path -> answer) for GET on ``host:port`` in the running loop."""

    def __init__(self, routes: dict[str, Route], host: str, port: int) -> None:
        self.routes = routes
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; port 0 picks a free one (read :attr:`port` after)."""
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); "
                "choose another port"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("http.listening", host=self.host, port=self.port, paths=sorted(self.routes))

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            route = self.routes.get(path)
            if method not in ("GET", "HEAD"):
                status, kind, body = 405, _TEXT, b"GET only\n"
            elif route is None:
                status, kind, body = 404, _TEXT, b"not found\n"
            else:
                status, kind, body = route()
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (body if method == "GET" else b""))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        except Exception as exc:  # a probe must never take the worker down
            log.warning("http.failed", error=repr(exc))
        finally:
            writer.close()


async def serve_endpoints(
    worker: Worker, host: str, metrics_port: int | None, health_port: int | None
) -> list[HttpEndpoints]:
    """Start ``/metrics`` on ``metrics_port`` and the probes on ``health_port`` (after start).

    One server when both ports are the same.
    """
    by_port: dict[int, dict[str, Route]] = {}
    if metrics_port is not None:
        from actors.worker.metrics import WorkerMetrics  # prometheus-client is optional

        metrics = WorkerMetrics(worker)
        metrics.instrument()
        by_port.setdefault(metrics_port, {})["/metrics"] = metrics.render
    if health_port is not None:
        routes = by_port.setdefault(health_port, {})
        routes["/livez"] = probe(lambda: liveness(worker))
        routes["/readyz"] = probe(lambda: readiness(worker))
    servers = [HttpEndpoints(routes, host, port) for port, routes in by_port.items()]
    try:
        for server in servers:
            await server.start()
    except ConfigurationError:
        for server in servers:
            await server.stop()
        raise
    return servers
