"""OpenTelemetry: one trace from delay() through the task, its chain and a chord's body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from actors import App, chain, chord
from actors.tracing import TracingMiddleware, trace_headers
from tests.helpers import eventually


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def traced_app(make_app: Callable[..., App], provider: TracerProvider) -> App:
    app = make_app("traced")
    app.add_middleware(TracingMiddleware(provider))

    @app.actor(name="tr.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.actor(name="tr.total")
    def total(values: list[int]) -> int:
        return sum(values)

    return app


def finished(exporter: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    return eventually(
        lambda: list(exporter.get_finished_spans()),
        until=lambda s: len([x for x in s if x.name.startswith("run ")]) >= count,
        what=f"{count} run spans",
    )


def test_one_trace_spans_delay_the_task_the_chain_and_the_chord_body(
    make_app: Callable[..., App], thread_worker, spans: Any
) -> None:
    provider, exporter = spans
    app = traced_app(make_app, provider)
    add, total = app.get_actor("tr.add"), app.get_actor("tr.total")
    thread_worker(app)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request") as outer:
        workflow = chain(add.s(1, 1), add.s(2), chord([add.s(i) for i in (10, 20)], total.s()))
        assert workflow.apply_async().get(timeout=15) == 14 + 24
    runs = finished(exporter, 5)  # two chain steps, two header members, the body
    by_id = {s.context.span_id: s for s in runs}
    assert {s.context.trace_id for s in runs} == {outer.get_span_context().trace_id}
    run = {s.name: s for s in runs if s.kind is SpanKind.CONSUMER}
    assert set(run) == {"run tr.add", "run tr.total"}

    def ancestors(span: ReadableSpan) -> list[str]:
        names = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    body = run["run tr.total"]
    chain_of_body = [n for n in ancestors(body) if n.startswith("run ")]
    # the body was sent by the last header member, which the second step sent, sent by the first
    assert chain_of_body == ["run tr.add", "run tr.add", "run tr.add"]
    assert ancestors(body)[-1] == "request"


def test_a_malformed_traceparent_is_ignored(
    make_app: Callable[..., App], thread_worker, spans: Any
) -> None:
    provider, exporter = spans
    app = traced_app(make_app, provider)
    thread_worker(app)
    plain = make_app("untraced")  # sends without the middleware: the header is as given
    add = plain.actor(name="tr.add")(lambda x, y: x + y)
    for bad in ("garbage", 5, "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "x" * 10_000):
        result = add.apply_async((1, 2), headers={"traceparent": bad})
        assert result.get(timeout=10) == 3
    runs = finished(exporter, 4)
    assert all(s.parent is None for s in runs if s.name == "run tr.add")


def test_trace_headers_accept_only_w3c_trace_context() -> None:
    good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert trace_headers({"traceparent": good, "tracestate": "a=1"}) == {
        "traceparent": good,
        "tracestate": "a=1",
    }
    for bad in (None, 1, "", good.upper(), good + "x", "ff" + good[2:], {"a": 1}):
        assert trace_headers({"traceparent": bad}) == {}
    assert trace_headers({"traceparent": good, "tracestate": "\n"}) == {"traceparent": good}
    assert trace_headers("not a map") == {}
