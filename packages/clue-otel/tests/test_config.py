"""new_config / configure_opentelemetry / Config: building, installing, replacing, shutting down."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from typing import Any

import pytest
import structlog
from opentelemetry import metrics, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clue.otel import Config, configure_opentelemetry, new_config, reset_opentelemetry


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"service_name": ""}, "service_name"),
        ({"service_name": 3}, "service_name"),
        ({"service_version": None}, "service_version"),
        ({"metric_exporter": InMemorySpanExporter()}, "metric_exporter"),
        ({"span_exporter": "console"}, "span_exporter"),
        ({"max_sampling_rate": -1}, "max_sampling_rate"),
        ({"sample_size": 0}, "sample_size"),
        ({"reader_interval": 0}, "reader_interval"),
        ({"reader_interval": timedelta(seconds=-1)}, "reader_interval"),
        ({"propagators": ["tracecontext"]}, "propagators"),
        ({"resource": ["a"]}, "resource"),
        ({"error_handler": "log"}, "error_handler"),
        ({"error_promotion": "yes"}, "error_promotion"),
    ],
)
def test_bad_configuration_raises_value_error_naming_the_option(
    kwargs: dict[str, Any], option: str
) -> None:
    """Each invalid argument raises ValueError naming it."""
    args: dict[str, Any] = {"service_name": "svc", "service_version": "1", **kwargs}
    with pytest.raises(ValueError, match=option):
        new_config(**args)


def test_none_exporters_give_noop_providers() -> None:
    """Without exporters both signals are disabled with no-op providers."""
    cfg = new_config("svc", "1")
    assert isinstance(cfg.tracer_provider, NoOpTracerProvider)
    assert isinstance(cfg.meter_provider, NoOpMeterProvider)
    assert cfg.sampler is None
    assert cfg.error_promotion is None
    assert cfg.shutdown(1) is True


def test_traces_use_parent_based_adaptive_sampler() -> None:
    """The tracer provider samples with ParentBased(Adaptive{...})."""
    cfg = new_config(
        "svc", "1", span_exporter=InMemorySpanExporter(), max_sampling_rate=7, sample_size=3
    )
    assert isinstance(cfg.tracer_provider, SdkTracerProvider)
    description = cfg.tracer_provider.sampler.get_description()
    assert description.startswith("ParentBased{root:Adaptive{maxSamplingRate:7,sampleSize:3}")
    cfg.shutdown(1)


def test_resource_merges_default_service_and_user_attributes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resource is SDK default + OTEL_RESOURCE_ATTRIBUTES + service name/version + user's."""
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,team=core")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    cfg = new_config(
        "orders", "1.2.3", span_exporter=InMemorySpanExporter(), resource={"team": "payments"}
    )
    attrs = cfg.tracer_provider.resource.attributes  # type: ignore[attr-defined]
    assert attrs["service.name"] == "orders"
    assert attrs["service.version"] == "1.2.3"
    assert attrs["deployment.environment"] == "staging"
    assert attrs["team"] == "payments"
    assert attrs["telemetry.sdk.language"] == "python"
    cfg.shutdown(1)


def test_resource_accepts_a_resource_object() -> None:
    """A Resource passed as resource is merged last."""
    cfg = new_config(
        "svc", "1", span_exporter=InMemorySpanExporter(), resource=Resource({"host.name": "h1"})
    )
    attrs = cfg.tracer_provider.resource.attributes  # type: ignore[attr-defined]
    assert (attrs["host.name"], attrs["service.name"]) == ("h1", "svc")
    cfg.shutdown(1)


def test_default_propagators_are_tracecontext_and_baggage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without OTEL_PROPAGATORS the propagators are W3C trace context and baggage."""
    monkeypatch.delenv("OTEL_PROPAGATORS", raising=False)
    cfg = new_config("svc", "1")
    assert cfg.propagators.fields == {"traceparent", "tracestate", "baggage"}


def test_otel_propagators_env_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_PROPAGATORS picks the propagators when none are given."""
    monkeypatch.setenv("OTEL_PROPAGATORS", "baggage")
    assert new_config("svc", "1").propagators.fields == {"baggage"}
    monkeypatch.setenv("OTEL_PROPAGATORS", "nonsense")
    with structlog.testing.capture_logs() as logs:
        fields = new_config("svc", "1").propagators.fields
    assert fields == {"traceparent", "tracestate", "baggage"}  # invalid: treated as unset
    assert [(e["event"], e["variable"]) for e in logs] == [("otel.env.invalid", "OTEL_PROPAGATORS")]


def test_explicit_propagators_win() -> None:
    """A list of propagators is combined; a single one is used as is."""
    combined = new_config("svc", "1", propagators=[TraceContextTextMapPropagator()]).propagators
    assert combined.fields == {"traceparent", "tracestate"}
    single = W3CBaggagePropagator()
    assert new_config("svc", "1", propagators=single).propagators is single


def test_configure_installs_providers_and_propagators() -> None:
    """configure_opentelemetry makes the config's providers and propagators global."""
    exporter = InMemorySpanExporter()
    cfg = new_config("svc", "1", span_exporter=exporter, propagators=[W3CBaggagePropagator()])
    configure_opentelemetry(cfg, shutdown_at_exit=False)
    with trace.get_tracer("t").start_as_current_span("hello"):
        pass
    assert cfg.force_flush(5)
    assert [s.name for s in exporter.get_finished_spans()] == ["hello"]
    assert propagate.get_global_textmap() is cfg.propagators


def test_configuring_twice_replaces_and_never_stacks() -> None:
    """A second configure replaces the first: earlier tracers follow, nothing doubles."""
    early_tracer = trace.get_tracer("early")
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    cfg1 = new_config("svc", "1", span_exporter=first, max_sampling_rate=1e6)
    configure_opentelemetry(cfg1, shutdown_at_exit=False)
    early_tracer.start_span("one").end()
    cfg2 = new_config("svc", "2", span_exporter=second, max_sampling_rate=1e6)
    configure_opentelemetry(cfg2, shutdown_at_exit=False)
    configure_opentelemetry(cfg2, shutdown_at_exit=False)
    early_tracer.start_span("two").end()
    trace.get_tracer("late").start_span("three").end()
    assert cfg2.force_flush(5)
    assert [s.name for s in first.get_finished_spans()] == ["one"]
    assert [s.name for s in second.get_finished_spans()] == ["two", "three"]
    assert cfg1.shutdown(1) is True  # already shut down by the replacement


def test_meter_provider_is_installed_and_replaced() -> None:
    """Meters taken after configure come from the current config's provider."""
    reader = InMemoryMetricReader()
    cfg = new_config("svc", "1")
    cfg.meter_provider = SdkMeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    configure_opentelemetry(cfg, shutdown_at_exit=False)
    metrics.get_meter("m").create_counter("hits").add(2)
    data = reader.get_metrics_data()
    assert data is not None
    names = [m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert names == ["hits"]
    reset_opentelemetry()
    assert isinstance(metrics.get_meter_provider().delegate, NoOpMeterProvider)  # type: ignore[attr-defined]


def _points(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    if data is None:
        return {}
    return {
        m.name: m.data.data_points[0]
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }


def test_instruments_follow_a_reconfiguration() -> None:
    """Instruments made under one config record into the next one after a reconfigure."""
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    cfg1, cfg2 = new_config("svc", "1"), new_config("svc", "2")
    cfg1.meter_provider = SdkMeterProvider(metric_readers=[first], shutdown_on_exit=False)
    cfg2.meter_provider = SdkMeterProvider(metric_readers=[second], shutdown_on_exit=False)
    configure_opentelemetry(cfg1, shutdown_at_exit=False)
    meter = metrics.get_meter("early")
    counter = meter.create_counter("c")
    updown = meter.create_up_down_counter("u")
    histogram = meter.create_histogram("h", explicit_bucket_boundaries_advisory=[1.0, 10.0])
    gauge = meter.create_gauge("g")
    observed: list[int] = []

    def observe(options: Any) -> list[Any]:
        from opentelemetry.metrics import Observation

        observed.append(1)
        return [Observation(7)]

    meter.create_observable_gauge("og", callbacks=[observe])
    counter.add(1)
    assert _points(first)["c"].value == 1
    configure_opentelemetry(cfg2, shutdown_at_exit=False)
    counter.add(2)
    updown.add(-3)
    histogram.record(5.0)
    gauge.set(9)
    points = _points(second)
    assert points["c"].value == 2
    assert points["u"].value == -3
    assert (points["h"].count, list(points["h"].explicit_bounds)) == (1, [1.0, 10.0])
    assert points["g"].value == 9
    assert points["og"].value == 7
    assert observed  # the callback is read by the new provider


def test_configure_rejects_bad_arguments() -> None:
    """configure_opentelemetry validates its arguments."""
    with pytest.raises(ValueError, match="cfg"):
        configure_opentelemetry("cfg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shutdown_timeout"):
        configure_opentelemetry(new_config("svc", "1"), shutdown_timeout=0)
    with pytest.raises(ValueError, match="diagnostics_level"):
        configure_opentelemetry(new_config("svc", "1"), diagnostics_level="INFO")  # type: ignore[arg-type]


def test_shutdown_is_bounded_and_logged(hanging_exporter: Any, logs: list[dict[str, Any]]) -> None:
    """Shutdown with a stuck exporter returns False within its timeout and logs the timeout."""
    cfg = new_config("svc", "1", span_exporter=hanging_exporter)
    cfg.tracer_provider.get_tracer("t").start_span("s").end()
    start = time.monotonic()
    assert cfg.shutdown(0.3) is False
    assert time.monotonic() - start < 2.0
    assert any(e["event"] == "otel.timeout" for e in logs)
    start = time.monotonic()
    assert cfg.shutdown(5) is False  # later calls return the first outcome at once
    assert time.monotonic() - start < 0.5


def test_force_flush_reports_success() -> None:
    """force_flush exports pending spans and says so."""
    exporter = InMemorySpanExporter()
    cfg = new_config("svc", "1", span_exporter=exporter)
    cfg.tracer_provider.get_tracer("t").start_span("pending").end()
    assert cfg.force_flush(5) is True
    assert len(exporter.get_finished_spans()) == 1
    cfg.shutdown(1)


def test_configure_registers_shutdown_at_exit(tmp_path: Any) -> None:
    """With shutdown_at_exit, spans still pending at interpreter exit are exported."""
    out = tmp_path / "exported.txt"
    script = textwrap.dedent(
        f"""
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
        from clue import otel

        class FileExporter(SpanExporter):
            def export(self, spans):
                with open({str(out)!r}, "a") as f:
                    f.writelines(s.name + "\\n" for s in spans)
                return SpanExportResult.SUCCESS

        cfg = otel.new_config("svc", "1", span_exporter=FileExporter())
        otel.configure_opentelemetry(cfg, shutdown_timeout=5)
        trace.get_tracer("t").start_span("at-exit").end()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert out.read_text() == "at-exit\n"


def test_instruments_created_before_configure_record_into_it() -> None:
    """A counter made at import time, before the first configure, exports through the config."""
    script = textwrap.dedent(
        """
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from clue import otel

        counter = metrics.get_meter("early").create_counter("early.hits")  # import time
        reader = InMemoryMetricReader()
        cfg = otel.new_config("svc", "1")
        cfg.meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
        otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
        counter.add(4)
        data = reader.get_metrics_data()
        print([(m.name, m.data.data_points[0].value)
               for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=60, capture_output=True, text=True
    )
    assert result.stdout.strip() == "[('early.hits', 4)]"


def test_foreign_global_provider_is_refused_loudly() -> None:
    """With another tracer provider installed first, configure raises and changes nothing."""
    script = textwrap.dedent(
        """
        from opentelemetry import propagate, trace
        from opentelemetry.sdk.trace import TracerProvider
        from clue import otel

        trace.set_tracer_provider(TracerProvider())
        before = propagate.get_global_textmap()
        try:
            otel.configure_opentelemetry(otel.new_config("svc", "1"), shutdown_at_exit=False)
        except RuntimeError as exc:
            print("refused:", exc)
        print("unchanged:", propagate.get_global_textmap() is before)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=60, capture_output=True, text=True
    )
    assert "refused: configure_opentelemetry: the global tracer" in result.stdout
    assert "OTEL_PYTHON_CONFIGURATOR=none opentelemetry-instrument" in result.stdout
    assert "unchanged: True" in result.stdout


def test_config_type_is_exported() -> None:
    """Config is what new_config returns."""
    assert isinstance(new_config("svc", "1"), Config)


class _RefusingSpanExporter(InMemorySpanExporter):
    """Records what it is handed and reports each export failed, as a collector that is down."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        super().export(spans)
        return SpanExportResult.FAILURE


def _refusing_metric_exporter() -> Any:
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

    class Refusing(MetricExporter):
        calls = 0

        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kw: Any) -> Any:
            Refusing.calls += 1
            return MetricExportResult.FAILURE

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kw: Any) -> None:
            pass

    return Refusing()


def test_force_flush_and_shutdown_report_a_failed_span_export() -> None:
    """force_flush() and shutdown() return False when the span exporter failed, never success."""
    exporter = _RefusingSpanExporter()
    cfg = new_config("svc", "1", span_exporter=exporter, max_sampling_rate=1000)
    cfg.tracer_provider.get_tracer("t").start_span("lost").end()  # type: ignore[attr-defined]
    assert cfg.force_flush(5) is False
    assert [s.name for s in exporter.get_finished_spans()] == ["lost"]  # it was attempted
    cfg.tracer_provider.get_tracer("t").start_span("lost too").end()  # type: ignore[attr-defined]
    assert cfg.shutdown(5) is False


def test_force_flush_and_shutdown_report_a_failed_metric_export() -> None:
    """force_flush() and shutdown() return False when the metric exporter failed."""
    exporter = _refusing_metric_exporter()
    cfg = new_config("svc", "1", metric_exporter=exporter, reader_interval=3600)
    cfg.meter_provider.get_meter("m").create_counter("c").add(1)
    assert cfg.force_flush(5) is False
    assert type(exporter).calls >= 1
    assert cfg.shutdown(5) is False


def test_force_flush_reports_a_collector_refusing_then_success_once_it_accepts() -> None:
    """Against a real receiver: False while it refuses every export, True once it accepts."""
    from clue.otel import new_http_span_exporter
    from clue.otel.testing import OTLPReceiver

    with OTLPReceiver() as rx:
        rx.fail(retry_after=0.01)
        exporter, _ = new_http_span_exporter(endpoint=rx.http_traces_endpoint, timeout=1)
        cfg = new_config("svc", "1", span_exporter=exporter, max_sampling_rate=1000)
        tracer = cfg.tracer_provider.get_tracer("t")  # type: ignore[attr-defined]
        tracer.start_span("refused").end()
        assert cfg.force_flush(10) is False
        rx.recover()
        tracer.start_span("accepted").end()
        assert cfg.force_flush(10) is True
        assert [s.name for s in rx.spans()] == ["accepted"]
        assert cfg.shutdown(5) is True
