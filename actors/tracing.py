"""OpenTelemetry tracing: ``app.add_middleware(TracingMiddleware())`` (extra ``actors[otel]``).

Publishing a task starts a PRODUCER span ``send <task>`` (a child of the current span) and
puts its W3C trace context in the message's ``headers`` map as ``traceparent`` (and
``tracestate``; docs/protocol.md, "Trace context"). The worker starts a CONSUMER span
``run <task>`` with that parent and makes it current while the task runs and while the worker
sends what follows it, so one trace spans ``delay()``, the task, tasks it sends, the next steps
of its chain and a chord's body. A missing or malformed ``traceparent`` is ignored: the run
starts a new trace.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

from actors.errors import ConfigurationError
from actors.middleware import ExceptionInfo, Middleware
from actors.wire.message import TaskMessage
from actors.wire.record import FAILURE

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError("tracing needs OpenTelemetry: pip install 'actors[otel]'") from exc

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_MAX_TRACESTATE = 512
_PROPAGATOR = TraceContextTextMapPropagator()

_running: ContextVar[tuple[Any, object] | None] = ContextVar("actors_span", default=None)


def trace_headers(headers: Any) -> dict[str, str]:
    """The valid trace context in a message's ``headers`` map; hostile input yields ``{}``."""
    if not isinstance(headers, dict):
        return {}
    parent = headers.get(TRACEPARENT)
    if not isinstance(parent, str) or not _TRACEPARENT.fullmatch(parent):
        return {}
    if parent.startswith("ff") or parent[3:35] == "0" * 32 or parent[36:52] == "0" * 16:
        return {}  # version ff and all-zero ids are invalid (W3C Trace Context)
    out = {TRACEPARENT: parent}
    state = headers.get(TRACESTATE)
    if isinstance(state, str) and len(state) <= _MAX_TRACESTATE and state.isprintable():
        out[TRACESTATE] = state
    return out


class TracingMiddleware(Middleware):
    """Spans for sending and running tasks, linked through ``traceparent``.

    ``tracer_provider`` defaults to OpenTelemetry's global one.
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        self.tracer = trace.get_tracer("actors", tracer_provider=tracer_provider)

    def before_publish(self, message: TaskMessage, subject: str) -> None:
        span = self.tracer.start_span(
            f"send {message.task}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": subject,
                "messaging.message.id": message.id,
            },
        )
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        span.end()
        message.headers.pop(TRACESTATE, None)
        message.headers.update(carrier)

    def before_start(self, actor: Any, message: TaskMessage) -> None:
        parent = _PROPAGATOR.extract(trace_headers(message.headers))
        span = self.tracer.start_span(
            f"run {message.task}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.message.id": message.id,
                "actors.task": message.task,
                "actors.retries": message.retries,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        _running.set((span, token))

    def on_failure(self, actor: Any, message: TaskMessage, einfo: ExceptionInfo) -> None:
        running = _running.get()
        if running is not None:
            running[0].record_exception(einfo.exception)

    def after_return(self, actor: Any, message: TaskMessage, state: str, value: Any) -> None:
        running = _running.get()
        if running is None:
            return
        _running.set(None)
        span, token = running
        span.set_attribute("actors.state", state)
        if state == FAILURE:
            span.set_status(Status(StatusCode.ERROR, repr(value)[:200]))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]
