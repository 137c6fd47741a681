"""clue-otel survives OpenTelemetry's own test utilities resetting the API's globals.

A state machine interleaves ``configure_opentelemetry``, ``reset_opentelemetry`` and the
resets OpenTelemetry's test helpers do (``opentelemetry.test.globals_test``); after every
configuration, a span from the global tracer reaches the latest configuration's
exporter, and nothing reports a foreign provider.
"""

from __future__ import annotations

import structlog
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.test.globals_test import reset_metrics_globals, reset_trace_globals

from clue.otel import configure_opentelemetry, new_config, reset_opentelemetry


class Globals(RuleBasedStateMachine):
    """configure / reset / OpenTelemetry's own resets, in any order."""

    def __init__(self) -> None:
        super().__init__()
        self.exporter: InMemorySpanExporter | None = None
        self.spans = 0

    @rule()
    def reset_trace(self) -> None:
        reset_trace_globals()
        self.exporter = None  # the global is the API's placeholder again

    @rule()
    def reset_metrics(self) -> None:
        reset_metrics_globals()

    @rule()
    def reset_clue(self) -> None:
        reset_opentelemetry(timeout=1)
        self.exporter = None

    @rule()
    def configure(self) -> None:
        exporter = InMemorySpanExporter()
        cfg = new_config(
            "svc", "1", span_exporter=exporter, max_sampling_rate=1e6, sample_size=1000
        )
        with structlog.testing.capture_logs() as logs:
            configure_opentelemetry(cfg, shutdown_at_exit=False)
        assert [e for e in logs if "foreign" in e["event"]] == []
        self.exporter = exporter
        self.spans = 0

    @rule()
    def span(self) -> None:
        trace.get_tracer("machine").start_span("op").end()
        if self.exporter is not None:
            self.spans += 1

    @invariant()
    def spans_reach_the_latest_exporter(self) -> None:
        if self.exporter is not None:
            trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
            assert len(self.exporter.get_finished_spans()) == self.spans

    def teardown(self) -> None:
        reset_opentelemetry(timeout=1)


Globals.TestCase.settings = settings(max_examples=40, stateful_step_count=12, deadline=None)
test_globals_state_machine = Globals.TestCase


def test_configure_after_reset_globals_exports_spans_and_metrics() -> None:
    """After reset_trace_globals/reset_metrics_globals, configure installs again and exports."""
    configure_opentelemetry(new_config("first", "1"), shutdown_at_exit=False)
    reset_trace_globals()
    reset_metrics_globals()
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    cfg = new_config("svc", "1", span_exporter=exporter, max_sampling_rate=1e6)
    from opentelemetry.sdk.metrics import MeterProvider

    cfg.meter_provider = MeterProvider(metric_readers=[reader])
    configure_opentelemetry(cfg, shutdown_at_exit=False)
    trace.get_tracer("t").start_span("after-reset").end()
    metrics.get_meter("m").create_counter("hits").add(2)
    assert cfg.force_flush(5)
    assert [s.name for s in exporter.get_finished_spans()] == ["after-reset"]
    data = reader.get_metrics_data()
    assert data is not None
    names = [m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert names == ["hits"]
