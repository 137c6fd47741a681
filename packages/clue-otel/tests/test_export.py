"""End to end through the real OTLP receiver: gRPC and HTTP exporters, env vars, faults."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.trace import StatusCode

from clue import otel
from clue.otel.testing import OTLPReceiver

Helpers = tuple[Callable[..., Any], Callable[..., Any], str]


def _endpoints(rx: OTLPReceiver, transport: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if transport == "grpc":
        return {"endpoint": rx.grpc_endpoint}, {"endpoint": rx.grpc_endpoint}
    return {"endpoint": rx.http_traces_endpoint}, {"endpoint": rx.http_metrics_endpoint}


def _helpers(transport: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    if transport == "grpc":
        return otel.new_grpc_span_exporter, otel.new_grpc_metric_exporter
    return otel.new_http_span_exporter, otel.new_http_metric_exporter


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_spans_and_metrics_arrive_with_resource_links_and_attributes(
    otlp_receiver: OTLPReceiver, transport: str
) -> None:
    """Spans and metrics exported by a configured service arrive decoded, over each transport."""
    span_opts, metric_opts = _endpoints(otlp_receiver, transport)
    new_span, new_metric = _helpers(transport)
    span_exporter, span_shutdown = new_span(**span_opts)
    metric_exporter, metric_shutdown = new_metric(**metric_opts)
    cfg = otel.new_config(
        "orders",
        "1.2.3",
        metric_exporter,
        span_exporter,
        max_sampling_rate=1000,
        reader_interval=0.05,
        resource={"deployment.environment": "test"},
    )
    otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    tracer = trace.get_tracer("orders.api")
    with tracer.start_as_current_span("POST /orders", kind=trace.SpanKind.SERVER) as root:
        root.set_attribute("http.status", 201)
        with tracer.start_as_current_span(
            "db.insert", attributes={"db.rows": 3, "tags": ["a", "b"]}
        ):
            trace.get_current_span().add_event("retry", {"attempt": 2})
    metrics.get_meter("orders.api").create_counter("orders.created").add(5, {"shop": "eu"})
    assert cfg.force_flush(5)

    spans = otlp_receiver.wait_for_spans(2, timeout=10)
    server = otlp_receiver.span("POST /orders")
    db = otlp_receiver.span("db.insert")
    assert server.is_root
    assert server.kind == "server"
    assert db.parent_span_id == server.span_id
    assert db.trace_id == server.trace_id
    assert db.attributes == {"db.rows": 3, "tags": ("a", "b")}
    retry = db.event("retry")
    assert retry is not None
    assert retry.attributes == {"attempt": 2}
    assert server.attributes["http.status"] == 201
    assert server.resource["service.name"] == "orders"
    assert server.resource["service.version"] == "1.2.3"
    assert server.resource["deployment.environment"] == "test"
    assert {s.transport for s in spans} == {transport}
    assert format(root.get_span_context().trace_id, "032x") == server.trace_id

    (metric, *_) = otlp_receiver.wait_for_metrics("orders.created", timeout=10)
    assert metric.kind == "sum"
    assert (metric.points[0].value, metric.points[0].attributes) == (5, {"shop": "eu"})
    assert metric.resource["service.name"] == "orders"
    assert cfg.shutdown(5)
    # The exporters were stopped with the providers: their own shutdowns stay bounded.
    assert span_shutdown(1)
    assert metric_shutdown(1)


def test_exporters_honour_otel_exporter_otlp_variables(
    otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without options, the helpers read OTEL_EXPORTER_OTLP_* like the SDK does."""
    for key, value in otlp_receiver.env("http/protobuf").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    http_exporter, http_shutdown = otel.new_http_span_exporter()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp_receiver.grpc_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-tenant=acme")
    grpc_exporter, grpc_shutdown = otel.new_grpc_span_exporter()
    for exporter, name in ((http_exporter, "via-http"), (grpc_exporter, "via-grpc")):
        cfg = otel.new_config("svc", "1", span_exporter=exporter, max_sampling_rate=1000)
        cfg.tracer_provider.get_tracer("t").start_span(name).end()
        assert cfg.force_flush(5)
    spans = otlp_receiver.wait_for_spans(2, timeout=10)
    assert {(s.name, s.transport) for s in spans} == {("via-http", "http"), ("via-grpc", "grpc")}
    assert otlp_receiver.requests(transport="http")[0].content_encoding == "gzip"
    assert http_shutdown(2)
    assert grpc_shutdown(2)


def test_unknown_exporter_option_raises_value_error() -> None:
    """An option the SDK exporter does not take is a ValueError naming it."""
    with pytest.raises(ValueError, match="'endpont'"):
        otel.new_grpc_span_exporter(endpont="http://127.0.0.1:4317")
    with pytest.raises(ValueError, match="'insecure'"):
        otel.new_http_metric_exporter(insecure=True)


def test_exporter_shutdown_is_idempotent() -> None:
    """A helper's shutdown runs once and returns its first outcome after."""
    _, shutdown = otel.new_http_span_exporter(endpoint="http://127.0.0.1:9/v1/traces")
    assert shutdown() is True
    assert shutdown(0.01) is True


def test_bounded_shutdown_logs_failures_and_timeouts(logs: list[dict[str, Any]]) -> None:
    """A shutdown that raises or hangs is logged and reported False, never raised."""
    from clue.otel._bounded import bounded

    def broken() -> None:
        raise OSError("socket closed")

    assert bounded(broken, "broken exporter")() is False
    import threading

    release = threading.Event()
    start = time.monotonic()
    assert bounded(lambda: release.wait(5), "stuck exporter")(0.1) is False
    assert time.monotonic() - start < 1.0
    release.set()
    assert [(e["event"], e["component"]) for e in logs] == [
        ("otel.failed", "broken exporter"),
        ("otel.timeout", "stuck exporter"),
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_unreachable_collector_changes_nothing_for_requests(transport: str) -> None:
    """With the collector down, spans start and end normally and shutdown is bounded."""
    port = _closed_port()
    if transport == "grpc":
        exporter, _ = otel.new_grpc_span_exporter(endpoint=f"http://127.0.0.1:{port}", timeout=1)
    else:
        exporter, _ = otel.new_http_span_exporter(
            endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=1
        )
    cfg = otel.new_config("svc", "1", span_exporter=exporter, max_sampling_rate=1000)
    otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    tracer = trace.get_tracer("t")
    start = time.monotonic()
    for i in range(50):
        with tracer.start_as_current_span(f"request-{i}"):
            pass
    assert time.monotonic() - start < 1.0  # requests are not slowed by the export path
    cfg.force_flush(2)
    start = time.monotonic()
    cfg.shutdown(2)
    assert time.monotonic() - start < 3.0


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_exports_are_retried_after_unavailable(otlp_receiver: OTLPReceiver, transport: str) -> None:
    """UNAVAILABLE / 503 answers are retried and the spans finally arrive; nothing raises."""
    otlp_receiver.fail(2, retry_after=0.05)
    span_opts, _ = _endpoints(otlp_receiver, transport)
    new_span, _ = _helpers(transport)
    exporter, _ = new_span(**span_opts, timeout=5)
    cfg = otel.new_config("svc", "1", span_exporter=exporter, max_sampling_rate=1000)
    cfg.tracer_provider.get_tracer("t").start_span("retried").end()
    assert cfg.force_flush(10)
    assert [s.name for s in otlp_receiver.wait_for_spans(1, timeout=10)] == ["retried"]
    assert [r.accepted for r in otlp_receiver.requests("traces")] == [False, False, True]
    assert cfg.shutdown(5)


def test_promoted_trace_arrives_with_its_exception(otlp_receiver: OTLPReceiver) -> None:
    """With error promotion an unsampled failing trace arrives at the collector, a good one not."""
    exporter, _ = otel.new_grpc_span_exporter(endpoint=otlp_receiver.grpc_endpoint)
    cfg = otel.new_config(
        "svc", "1", span_exporter=exporter, max_sampling_rate=1e-9, error_promotion=True
    )
    otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    tracer = trace.get_tracer("t")
    for _ in range(9):  # the first window's sample_size - 1 decisions are sampled
        tracer.start_span("warm-up").end()
    with tracer.start_as_current_span("ok"):
        pass
    with tracer.start_as_current_span("failing") as span:
        with tracer.start_as_current_span("step"):
            span.record_exception(RuntimeError("db down"))
        span.set_status(StatusCode.ERROR, "db down")
    assert cfg.force_flush(5)
    otlp_receiver.wait_for_spans(11, timeout=10)
    assert not otlp_receiver.spans("ok")
    failing = otlp_receiver.span("failing")
    step = otlp_receiver.span("step")
    assert step.parent_span_id == failing.span_id
    assert failing.status_code == "ERROR"
    assert failing.event("exception").attributes["exception.message"] == "db down"  # type: ignore[union-attr]


def test_bounded_steps_run_when_threads_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """At interpreter shutdown (no new threads), bounded steps still run."""
    import threading

    from clue.otel._bounded import run_all_bounded

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    ran: list[str] = []
    assert run_all_bounded({"a": lambda: ran.append("a"), "b": lambda: ran.append("b")}, 1.0)
    assert sorted(ran) == ["a", "b"]


def test_bounded_steps_stay_bounded_when_threads_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.12 starts no thread at shutdown: threads started beforehand bound the steps."""
    import threading

    from clue.otel import _bounded

    _bounded._STANDBY.start()  # what configure_opentelemetry does on Python 3.12

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    collector = threading.Event()  # a collector that never answers, until released
    try:
        assert not _bounded.run_bounded(collector.wait, 0.2, "hangs")  # returns, timed out
    finally:
        collector.set()
