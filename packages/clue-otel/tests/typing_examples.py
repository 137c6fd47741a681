"""The public API as users write it, checked by ``mypy --strict`` (the typecheck session).

Not a test module: pytest does not collect it and nothing runs it. Each ``assert_type``
states the type a user's code sees; a change of a public signature that breaks one fails
the typecheck session.
"""

from __future__ import annotations

from datetime import timedelta
from typing import assert_type

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

import clue.otel
from clue.otel import testing


def setup() -> None:
    span_exporter, stop_spans = clue.otel.new_otlp_span_exporter(endpoint="localhost:4317")
    metric_exporter, stop_metrics = clue.otel.new_grpc_metric_exporter(insecure=True)
    assert_type(span_exporter, SpanExporter)
    assert_type(metric_exporter, MetricExporter)
    assert_type(stop_spans, clue.otel.Shutdown)
    assert_type(stop_spans(timeout=1.0), bool)
    assert_type(stop_metrics(), bool)
    assert_type(clue.otel.new_http_span_exporter()[0], SpanExporter)
    assert_type(clue.otel.new_http_metric_exporter()[0], MetricExporter)
    assert_type(clue.otel.new_grpc_span_exporter()[0], SpanExporter)
    assert_type(clue.otel.new_otlp_metric_exporter()[0], MetricExporter)

    def on_error(error: BaseException) -> None:
        clue.otel.log_error(error)

    cfg = clue.otel.new_config(
        "orders",
        "1.2.3",
        metric_exporter,
        span_exporter,
        reader_interval=timedelta(seconds=30),
        resource={"deployment.environment": "prod"},
        error_handler=on_error,
        error_promotion=True,
    )
    assert_type(cfg, clue.otel.Config)
    assert_type(cfg.sampler, clue.otel.AdaptiveSampler | None)
    clue.otel.configure_opentelemetry(cfg, shutdown_timeout=2.0)
    assert_type(cfg.force_flush(timeout=1.0), bool)
    assert_type(cfg.shutdown(), bool)
    if cfg.error_promotion is not None:
        assert_type(cfg.error_promotion.stats(), clue.otel.PromotionStats)
    clue.otel.reset_opentelemetry()


def sampler() -> None:
    s = clue.otel.AdaptiveSampler(max_sampling_rate=2.0, sample_size=10)
    assert_type(s.get_description(), str)


def handler_type(handler: clue.otel.ErrorHandler) -> None:
    handler(clue.otel.OpenTelemetryError("export failed", "opentelemetry.sdk"))


def receiver_in_tests() -> None:
    with testing.OTLPReceiver(http=False) as receiver:
        assert_type(receiver, testing.OTLPReceiver)
        assert_type(receiver.env(), dict[str, str])
        spans = receiver.wait_for_spans(1, name="GET /orders")
        assert_type(spans, list[testing.ReceivedSpan])
        assert_type(receiver.span("GET /orders").attributes, dict[str, testing.AttributeValue])
        assert_type(receiver.metrics(), list[testing.ReceivedMetric])
        assert_type(receiver.logs(), list[testing.ReceivedLogRecord])
        receiver.fail(1)
    testing.reset_opentelemetry()
