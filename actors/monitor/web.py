"""The monitor's HTTP side: pages, their JSON twins under ``/api``, live updates (server-sent
events), actions (POST, credentials and CSRF token), ``/metrics`` and ``/healthz``.

Each page and its ``/api`` twin come from one function returning (template, data): the page
renders the data, the API returns it as JSON, so the two never disagree.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from actors.errors import ActorsError, ConfigurationError
from actors.monitor import checks, drawing
from actors.monitor.auth import CSRF_FIELD, CSRF_HEADER, MonitorSettings
from actors.monitor.checks import BadInput
from actors.monitor.data import WORKER_COMMANDS, MonitorData
from actors.monitor.index import STATES
from actors.monitor.metrics import render_metrics
from schedulers.store import ScheduleNotFound

log = structlog.get_logger(__name__)
_HERE = Path(__file__).parent
Page = Callable[[Request], Awaitable[tuple[str, dict[str, Any]]]]


class NotFound(LookupError):
    """What the URL names does not exist (404)."""


def _when(stamp: float | None) -> str:
    if not stamp:
        return ""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def create_app(data: MonitorData, settings: MonitorSettings) -> Starlette:
    """The ASGI application over ``data``."""
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.filters["when"] = _when
    templates.env.globals["auth_enabled"] = settings.auth_enabled

    def page(path: str, api: str, read: Page) -> list[Route]:
        async def as_html(request: Request) -> Response:
            template, context = await read(request)
            context["csrf_token"] = settings.csrf_token() if settings.auth_enabled else ""
            context["notice"] = request.query_params.get("notice", "")[:300]
            return templates.TemplateResponse(request, template, context)

        async def as_json(request: Request) -> Response:
            _, context = await read(request)
            # default=repr: a value decoded from NATS may be bytes, which JSON cannot carry.
            body = json.dumps(context["data"], default=repr)
            return Response(body, media_type="application/json")

        return [Route(path, as_html), Route(api, as_json)]

    async def dashboard(request: Request) -> tuple[str, dict[str, Any]]:
        found = await data.dashboard()
        chart = drawing.outcome_bars(found["outcomes"])
        return "dashboard.html", {"data": found, "chart": chart, "live": "all"}

    async def tasks(request: Request) -> tuple[str, dict[str, Any]]:
        params = request.query_params
        where = checks.task_filter(params, time.time())
        page_no = checks.number(params, "page", 1, 1, 1_000_000)
        per_page = checks.number(params, "per_page", 50, 1, checks.MAX_PER_PAGE)
        found = data.tasks(where, page_no, per_page)
        query = {k: v for k, v in params.items() if k != "page"}
        return "tasks.html", {
            "data": found,
            "where": where,
            "query": "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items()),
            "states": STATES,
            "last": checks.number(params, "last", 0, 0, 60 * 24 * 366),
            "live": "all",
        }

    async def task(request: Request) -> tuple[str, dict[str, Any]]:
        task_id = checks.task_id(request.path_params["task_id"])
        found = await data.task(task_id)
        if found is None:
            raise NotFound(f"no task {task_id} in the events history or the results")
        graph = drawing.workflow_graph(found["workflow"], task_id)
        ids = " ".join(t["id"] for t in found["workflow"]) or task_id
        return "task.html", {"data": found, "graph": graph, "live": "ids", "ids": ids}

    async def workers(request: Request) -> tuple[str, dict[str, Any]]:
        return "workers.html", {"data": await data.workers(), "live": "poll"}

    async def worker(request: Request) -> tuple[str, dict[str, Any]]:
        hostname = checks.text({"w": request.path_params["hostname"]}, "w")
        found = await data.worker(hostname)
        if found is None:
            raise NotFound(f"no live worker {hostname}")
        return "worker.html", {"data": found}

    async def dead(request: Request) -> tuple[str, dict[str, Any]]:
        limit = checks.number(request.query_params, "limit", 100, 1, 1000)
        return "dead.html", {"data": await data.dead(limit)}

    async def dead_one(request: Request) -> tuple[str, dict[str, Any]]:
        seq = checks.number(request.path_params, "seq", 0, 1, 2**63)
        found = await data.dead_one(seq)
        if found is None:
            raise NotFound(f"no dead letter {seq}")
        return "dead_one.html", {"data": found}

    async def periodic(request: Request) -> tuple[str, dict[str, Any]]:
        return "periodic.html", {"data": await data.periodic()}

    # -- actions -----------------------------------------------------------------------------

    def action(run: Callable[[Request, dict[str, str]], Awaitable[str]]) -> Callable[..., Any]:
        async def handler(request: Request) -> Response:
            if not settings.auth_enabled:
                return _error(
                    request,
                    403,
                    "actions are off: start the monitor with ACTORS_MONITOR_USER and "
                    "ACTORS_MONITOR_PASSWORD, or ACTORS_MONITOR_TOKEN",
                )
            form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
            scheme = request.scope.get("auth_scheme")
            token = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            if scheme != "bearer" and not settings.csrf_ok(token):
                return _error(request, 403, "missing or wrong CSRF token: reload the page")
            done = await run(request, form)
            log.info("monitor.action", path=request.url.path, outcome=done)
            back = form.get("next", "")
            if _wants_json(request) or not back.startswith("/") or back.startswith("//"):
                return JSONResponse({"ok": done})
            sep = "&" if "?" in back else "?"
            return RedirectResponse(f"{back}{sep}notice={quote(done)}", status_code=303)

        return handler

    async def revoke(request: Request, form: dict[str, str]) -> str:
        task_id = checks.task_id(request.path_params["task_id"])
        terminate = checks.flag(form, "terminate")
        await data.revoke(task_id, terminate)
        return f"revoked {task_id}" + (" (terminate)" if terminate else "")

    async def replay(request: Request, form: dict[str, str]) -> str:
        seq = checks.number(request.path_params, "seq", 0, 1, 2**63)
        if not await data.replay(seq):
            raise NotFound(f"no dead letter {seq}")
        return f"replayed dead letter {seq}"

    async def purge(request: Request, form: dict[str, str]) -> str:
        return f"purged {await data.purge_dead()} dead letter(s)"

    async def switch(request: Request, form: dict[str, str]) -> str:
        name = request.path_params["name"]
        if request.path_params["verb"] not in ("enable", "disable"):
            raise NotFound("use /actions/periodic/<name>/enable or .../disable")
        enabled = request.path_params["verb"] == "enable"
        if len(name) > 200:
            raise BadInput("name: at most 200 characters")
        try:
            await data.switch_periodic(name, enabled)
        except ScheduleNotFound as exc:
            raise NotFound(str(exc)) from None
        return f"{'enabled' if enabled else 'disabled'} {name}"

    async def control(request: Request, form: dict[str, str]) -> str:
        hostname = checks.text({"w": request.path_params["hostname"]}, "w")
        command = request.path_params["command"].replace("-", "_")
        if command not in WORKER_COMMANDS:
            raise NotFound(f"no worker command {command!r}: one of {', '.join(WORKER_COMMANDS)}")
        if not any(w["hostname"] == hostname for w in await data.workers()):
            raise NotFound(f"no live worker {hostname}")
        actor = checks.task_name(form.get("actor", "")) if command != "shutdown" else ""
        rate = checks.rate(form.get("rate", "")) if command == "rate_limit" else None
        replies = await data.control(hostname, command, actor, rate)
        answer = next((r.get(hostname) for r in replies if hostname in r), None)
        if answer is None:
            return f"{command}: {hostname} did not answer"
        return f"{command}: {json.dumps(answer, default=str)[:300]}"

    # -- live, metrics, health ---------------------------------------------------------------

    async def stream(request: Request) -> Response:
        async def changes() -> AsyncIterator[str]:
            seen = data.feed.version
            yield "retry: 2000\n\n"
            quiet = 0.0
            while not await request.is_disconnected():
                await data.feed.wait(1.0)
                ids = data.feed.changed_since(seen)
                seen = data.feed.version
                if ids:
                    quiet = 0.0
                    yield f"event: tasks\ndata: {json.dumps({'ids': ids[:500]})}\n\n"
                else:
                    quiet += 1.0
                    if quiet >= 15:
                        quiet = 0.0
                        yield ": keep-alive\n\n"

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(changes(), media_type="text/event-stream", headers=headers)

    async def metrics(request: Request) -> Response:
        body, content_type = render_metrics(await data.dashboard())
        return Response(body, media_type=content_type)

    async def healthz(request: Request) -> Response:
        try:
            broker = await data.broker()
        except ActorsError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=503)
        if not broker.connected:
            return JSONResponse({"ok": False, "error": "NATS connection lost"}, status_code=503)
        body = {"ok": True, "events_reader": data.feed.running, "error": data.feed.error}
        return JSONResponse(body | {"tasks": len(data.index)})

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, BadInput):
            return _error(request, 400, str(exc))
        if isinstance(exc, NotFound):
            return _error(request, 404, str(exc))
        if isinstance(exc, ConfigurationError):  # e.g. a beat entry changed meanwhile
            return _error(request, 409, str(exc))
        log.warning("monitor.nats_error", path=request.url.path, error=str(exc))
        return _error(request, 503, f"NATS: {exc}")

    routes = [
        *page("/", "/api/dashboard", dashboard),
        *page("/tasks", "/api/tasks", tasks),
        *page("/tasks/{task_id}", "/api/tasks/{task_id}", task),
        *page("/workers", "/api/workers", workers),
        *page("/workers/{hostname}", "/api/workers/{hostname}", worker),
        *page("/dead", "/api/dead", dead),
        *page("/dead/{seq}", "/api/dead/{seq}", dead_one),
        *page("/periodic", "/api/periodic", periodic),
        Route("/actions/tasks/{task_id}/revoke", action(revoke), methods=["POST"]),
        Route("/actions/dead/purge", action(purge), methods=["POST"]),
        Route("/actions/dead/{seq}/replay", action(replay), methods=["POST"]),
        Route("/actions/periodic/{name}/{verb}", action(switch), methods=["POST"]),
        Route("/actions/workers/{hostname}/{command}", action(control), methods=["POST"]),
        Route("/api/stream", stream),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    handlers = {BadInput: on_error, NotFound: on_error, ActorsError: on_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.add_middleware(Guard, settings=settings)
    return app


def _wants_json(request: Request) -> bool:
    """JSON for the API and for clients that do not ask for HTML (scripts, curl)."""
    accept = request.headers.get("accept", "")
    return request.url.path.startswith("/api/") or "html" not in accept


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    text = html.escape(message)
    body = f"<!doctype html><title>{status}</title><p>{text}</p><a href='/'>back</a>"
    return Response(body, status_code=status, media_type="text/html")


class Guard:
    """Every request but ``/healthz`` needs the credentials when they are set; a POST from
    another site (an ``Origin`` that is not this host) is refused either way."""

    def __init__(self, app: ASGIApp, settings: MonitorSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if self.settings.auth_enabled:
            scheme = self.settings.check(request.headers.get("authorization"))
            if scheme is None:
                headers = {"WWW-Authenticate": 'Basic realm="actors monitor", charset="UTF-8"'}
                response = JSONResponse(
                    {"error": "authentication required"}, status_code=401, headers=headers
                )
                await response(scope, receive, send)
                return
            scope["auth_scheme"] = scheme
        origin = request.headers.get("origin")
        if (
            request.method == "POST"
            and origin
            and origin.split("://")[-1] != request.headers.get("host")
        ):
            await JSONResponse({"error": "cross-site request refused"}, status_code=403)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)
