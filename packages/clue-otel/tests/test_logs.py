"""Logs beside spans and metrics: records emitted through the Logs API reach the collector.

Records are emitted the way an application or clue-log does it, through
``opentelemetry._logs.get_logger(...).emit(...)``, and read back at a real OTLP receiver
over gRPC and HTTP/protobuf.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import _logs, trace
from opentelemetry._logs import NoOpLoggerProvider, SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult
from opentelemetry.test.globals_test import reset_logging_globals

from clue import otel
from clue.otel import _switch
from clue.otel.testing import OTLPReceiver


@pytest.fixture(autouse=True)
def _fresh_logs_global() -> Iterator[None]:
    reset_logging_globals()
    yield
    otel.reset_opentelemetry(timeout=2.0)
    reset_logging_globals()


@pytest.fixture(scope="module")
def rx() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


def _exporter(rx: OTLPReceiver, transport: str) -> Any:
    if transport == "grpc":
        return otel.new_grpc_log_exporter(endpoint=rx.grpc_endpoint)[0]
    return otel.new_http_log_exporter(endpoint=rx.http_logs_endpoint)[0]


_KEYS = st.text(min_size=1, max_size=12)
_VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
)
_RECORDS = st.lists(
    st.fixed_dictionaries(
        {
            "body": st.text(max_size=80),
            "attributes": st.dictionaries(_KEYS, _VALUES, max_size=5),
            "severity": st.sampled_from(list(SeverityNumber)[1:]),
            "timestamp": st.integers(1, 2**63 - 1),
            "observed": st.integers(1, 2**63 - 1),
            "in_span": st.booleans(),
        }
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_records_arrive_with_their_fields(rx: OTLPReceiver, transport: str) -> None:
    """Hypothesis-made records arrive in order with body, attributes, severity, times, ids."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    cfg = otel.new_config(
        "orders",
        "1.4.0",
        span_exporter=InMemorySpanExporter(),
        log_exporter=_exporter(rx, transport),
        max_sampling_rate=1e9,
    )
    otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    logger = _logs.get_logger("app.orders")
    tracer = trace.get_tracer("t")

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_RECORDS)
    def check(records: list[dict[str, Any]]) -> None:
        rx.clear()
        ids: list[tuple[str, str]] = []
        for r in records:
            fields = {
                "body": r["body"],
                "attributes": r["attributes"],
                "severity_number": r["severity"],
                "severity_text": r["severity"].name,
                "timestamp": r["timestamp"],
                "observed_timestamp": r["observed"],
            }
            if r["in_span"]:
                with tracer.start_as_current_span("op") as span:
                    logger.emit(**fields)
                    ctx = span.get_span_context()
                    ids.append((f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"))
            else:
                logger.emit(**fields)
                ids.append(("", ""))
        assert cfg.force_flush(10)
        got = rx.wait_for_logs(len(records), timeout=10)
        assert len(got) == len(records)
        for r, (trace_id, span_id), g in zip(records, ids, got, strict=True):
            assert g.body == r["body"]
            assert g.attributes == r["attributes"]
            assert (g.severity_number, g.severity_text) == (r["severity"].value, r["severity"].name)
            assert (g.time_unix_nano, g.observed_time_unix_nano) == (r["timestamp"], r["observed"])
            assert (g.trace_id, g.span_id) == (trace_id, span_id)
            assert g.scope == "app.orders"
            assert g.resource["service.name"] == "orders"
            assert g.transport == transport

    check()


class _Opaque:
    def __repr__(self) -> str:
        return "opaque"


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")

    __repr__ = __str__


def _cycle() -> list[Any]:
    loop: list[Any] = []
    loop.extend([loop, loop])
    return loop


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


# Values the Logs API takes but the OTLP encoder cannot (or a collector cannot parse).
_HOSTILE_BODIES = st.recursive(
    st.one_of(
        st.builds(_Opaque),
        st.builds(_Unprintable),
        st.sets(st.integers(), max_size=3),
        st.integers(2**63, 2**80) | st.integers(-(2**80), -(2**63) - 1),
        st.sampled_from(["\ud800", "a\udfffb", "ok"]),
        st.builds(_cycle),
        st.integers(33, 120).map(_nested),
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.one_of(st.text(max_size=3), st.integers(), st.just("\ud800")), inner, max_size=3
        )
    ),
    max_leaves=6,
)
_HOSTILE_FIELDS = st.fixed_dictionaries(
    {"body": _HOSTILE_BODIES},
    optional={
        "severity_text": st.one_of(st.builds(_Opaque), st.just("\ud800")),
        "event_name": st.one_of(st.builds(_Opaque), st.integers()),
        "timestamp": st.one_of(
            st.integers(max_value=-1), st.integers(min_value=2**64), st.floats()
        ),
        "observed_timestamp": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**64)),
    },
)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_record_the_encoder_cannot_take_never_loses_its_batch(
    rx: OTLPReceiver, transport: str
) -> None:
    """A hostile body, severity text, event name or timestamp arrives as text; its batch too.

    The OTLP encoder raises on such a record, and the batch processor then drops every
    record of the batch: each record is made encodable as it is emitted.
    """
    cfg = otel.new_config("orders", "1.4.0", log_exporter=_exporter(rx, transport))
    otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    logger = _logs.get_logger("app.orders")

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_HOSTILE_FIELDS)
    def check(fields: dict[str, Any]) -> None:
        rx.clear()
        logger.emit(body="before", attributes={"n": 1}, timestamp=5)
        logger.emit(**fields)
        logger.emit(body={"after": [1, "two", 3.0, True, None, b"x"]}, event_name="e")
        assert cfg.force_flush(10)
        before, hostile, after = rx.wait_for_logs(3, timeout=10)
        assert (before.body, before.attributes, before.time_unix_nano) == ("before", {"n": 1}, 5)
        assert after.body == {"after": (1, "two", 3.0, True, None, b"x")}
        assert hostile.body is not None
        assert hostile.observed_time_unix_nano > 0

    check()


class _RaisingText:
    def __str__(self) -> str:
        raise RuntimeError("no text")

    def __hash__(self) -> int:
        return 1


_JUNK = st.one_of(
    st.text(max_size=3),
    st.integers(),
    st.lists(st.tuples(st.text(max_size=2), st.integers()), max_size=2),
    st.builds(_RaisingText),
    st.builds(object),
)
_MISUSED_EMIT = st.fixed_dictionaries(
    {"body": st.just("misused")},
    optional={
        "attributes": st.one_of(_JUNK, st.dictionaries(st.builds(_RaisingText), _JUNK)),
        "context": _JUNK,
        "exception": _JUNK,
        "severity_number": _JUNK,
        "timestamp": _JUNK,
    },
)


def test_a_misused_emit_never_raises_into_the_application(rx: OTLPReceiver) -> None:
    """Arguments of the wrong type (a list of attributes, a string context...) never raise.

    The SDK's logger raises on them; the error goes to the error handler, and the
    records around it still arrive.
    """
    errors: list[BaseException] = []
    cfg = otel.new_config(
        "orders", "1.4.0", log_exporter=_exporter(rx, "http"), error_handler=errors.append
    )
    otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    logger = _logs.get_logger("app.orders")

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_MISUSED_EMIT)
    def check(fields: dict[str, Any]) -> None:
        rx.clear()
        logger.emit(body="before")
        logger.emit(**fields)
        logger.emit(body="after")
        assert cfg.force_flush(10)
        bodies = [r.body for r in rx.wait_for_logs(2, timeout=10)]
        assert [b for b in bodies if b != "misused"] == ["before", "after"]

    check()
    errors.clear()
    logger.emit(body="misused", attributes=[("order_id", 42)])  # type: ignore[arg-type]
    assert len(errors) == 1


def test_no_log_exporter_gives_a_noop_provider_and_leaves_the_global_alone() -> None:
    """Without a log exporter logs are off and the application may install its own provider."""
    cfg = otel.new_config("svc", "1")
    assert isinstance(cfg.logger_provider, NoOpLoggerProvider)
    otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    own = SdkLoggerProvider(shutdown_on_exit=False)
    _logs.set_logger_provider(own)
    assert _logs.get_logger_provider() is own


def test_otel_logs_exporter_none_disables_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_LOGS_EXPORTER=none disables logs even when code passed an exporter."""
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    exporter = InMemoryLogRecordExporter()
    cfg = otel.new_config("svc", "1", log_exporter=exporter)
    assert isinstance(cfg.logger_provider, NoOpLoggerProvider)


def test_a_bad_log_exporter_is_a_value_error_naming_it() -> None:
    """log_exporter must be a LogRecordExporter: anything else is a ValueError naming it."""
    with pytest.raises(ValueError, match="log_exporter"):
        otel.new_config("svc", "1", log_exporter=object())  # type: ignore[arg-type]


def test_loggers_follow_a_reconfiguration_and_never_stack() -> None:
    """A logger taken before configuring follows each configuration; the replaced one stops."""
    early = _logs.get_logger("early")
    early.emit(body="before any configuration")
    first, second = InMemoryLogRecordExporter(), InMemoryLogRecordExporter()
    cfg1 = otel.new_config("svc", "1", log_exporter=first)
    otel.configure_opentelemetry(cfg1, shutdown_at_exit=False)
    early.emit(body="one")
    cfg2 = otel.new_config("svc", "2", log_exporter=second)
    otel.configure_opentelemetry(cfg2, shutdown_at_exit=False)
    early.emit(body="two")
    assert cfg2.force_flush(5)
    assert [r.log_record.body for r in first.get_finished_logs()] == ["one"]
    assert [r.log_record.body for r in second.get_finished_logs()] == ["two"]
    assert _logs.get_logger_provider() is _switch.LOGGER_PROVIDER
    otel.configure_opentelemetry(otel.new_config("svc", "3"), shutdown_at_exit=False)
    early.emit(body="logs off")
    assert [r.log_record.body for r in second.get_finished_logs()] == ["two"]


def test_a_foreign_logger_provider_is_refused_loudly() -> None:
    """A logger provider set by someone else makes configuring logs raise, changing nothing."""
    own = SdkLoggerProvider(shutdown_on_exit=False)
    _logs.set_logger_provider(own)
    cfg = otel.new_config("svc", "1", log_exporter=InMemoryLogRecordExporter())
    with pytest.raises(RuntimeError, match="the global logger provider"):
        otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    assert _logs.get_logger_provider() is own
    assert _switch.LOGGER_PROVIDER.delegate is not cfg.logger_provider
    cfg.shutdown(2)


def test_a_refused_configuration_installs_no_global_at_all() -> None:
    """Refused for a foreign logger provider, configure leaves the tracer and meter unset.

    The API sets each global only once: a switchable tracer or meter provider installed
    on the way to the refusal would keep the application from installing its own.
    """
    script = textwrap.dedent(
        """
        from opentelemetry import _logs, metrics, trace
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from clue import otel

        _logs.set_logger_provider(LoggerProvider(shutdown_on_exit=False))
        cfg = otel.new_config(
            "svc", "1", span_exporter=InMemorySpanExporter(),
            log_exporter=InMemoryLogRecordExporter(),
        )
        try:
            otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
        except RuntimeError:
            print("refused")
        tracer_provider, meter_provider = TracerProvider(), MeterProvider()
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        print(trace.get_tracer_provider() is tracer_provider)
        print(metrics.get_meter_provider() is meter_provider)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        check=False,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["refused", "True", "True"], result.stderr


class _RefusingLogExporter(InMemoryLogRecordExporter):
    """Records what it is handed and reports each export failed, as a collector that is down."""

    def export(self, batch: Any) -> Any:
        super().export(batch)
        return LogRecordExportResult.FAILURE


def test_force_flush_and_shutdown_report_a_failed_log_export() -> None:
    """force_flush() and shutdown() return False when the log exporter failed."""
    exporter = _RefusingLogExporter()
    cfg = otel.new_config("svc", "1", log_exporter=exporter)
    logger = cfg.logger_provider.get_logger("t")
    logger.emit(body="lost")
    assert cfg.force_flush(5) is False
    assert [r.log_record.body for r in exporter.get_finished_logs()] == ["lost"]
    logger.emit(body="lost too")
    assert cfg.shutdown(5) is False


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_force_flush_reports_a_refusing_collector_then_success(transport: str) -> None:
    """Against a real receiver: False while it refuses log exports, True once it accepts."""
    with OTLPReceiver() as rx:
        rx.fail(retry_after=0.01)
        if transport == "grpc":
            exporter, _ = otel.new_grpc_log_exporter(endpoint=rx.grpc_endpoint, timeout=1)
        else:
            exporter, _ = otel.new_http_log_exporter(endpoint=rx.http_logs_endpoint, timeout=1)
        cfg = otel.new_config("svc", "1", log_exporter=exporter)
        logger = cfg.logger_provider.get_logger("t")
        logger.emit(body="refused")
        assert cfg.force_flush(10) is False
        rx.recover()
        logger.emit(body="accepted")
        assert cfg.force_flush(10) is True
        assert [r.body for r in rx.logs()] == ["accepted"]
        assert cfg.shutdown(5) is True


def test_helpers_follow_the_logs_protocol_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """new_otlp_log_exporter: OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, else the general one."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    exporter, stop = otel.new_otlp_log_exporter()
    assert type(exporter).__module__.split(".")[4] == "grpc"
    assert stop(2)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf")
    exporter, stop = otel.new_otlp_log_exporter()
    assert type(exporter).__module__.split(".")[4] == "http"
    assert stop(2)
    with pytest.raises(ValueError, match="bogus"):
        otel.new_grpc_log_exporter(bogus=1)


_CONFIGURED_AT_EXIT = textwrap.dedent(
    """
    import sys
    from opentelemetry import _logs
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from clue import otel

    ENDPOINT = sys.argv[1]
    otel.configure_opentelemetry(otel.new_config("svc", "1"), shutdown_timeout=2)
    # The application's own provider: clue (no log exporter) leaves the global to it.
    provider = LoggerProvider()
    exporter, _ = otel.new_grpc_log_exporter(endpoint=ENDPOINT)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    _logs.set_logger_provider(provider)
    _logs.get_logger("app").emit(body="own provider")
    """
)


@pytest.mark.parametrize("transport", ["grpc", "http/protobuf"])
@pytest.mark.parametrize(
    "env",
    [
        # A blank (whitespace) signal endpoint is unset: the general one applies.
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "  ", "OTEL_EXPORTER_OTLP_ENDPOINT": "{base}"},
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "", "OTEL_EXPORTER_OTLP_ENDPOINT": " {base}/ "},
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": " {own} ", "OTEL_EXPORTER_OTLP_ENDPOINT": "\t"},
        # The scheme decides plaintext or TLS; OTEL_EXPORTER_OTLP_[LOGS_]INSECURE only
        # applies to an endpoint without one (the OTLP exporter specification).
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "{base}", "OTEL_EXPORTER_OTLP_INSECURE": "false"},
        {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "{own}", "OTEL_EXPORTER_OTLP_LOGS_INSECURE": "no"},
    ],
    ids=["blank own", "empty own, padded base", "padded own", "insecure=false", "logs no"],
)
def test_endpoints_follow_the_specifications_rules(
    monkeypatch: pytest.MonkeyPatch, transport: str, env: dict[str, str]
) -> None:
    """Records reach the collector the endpoint variables name, read as the specification says."""
    with OTLPReceiver() as rx:
        base = rx.grpc_endpoint if transport == "grpc" else rx.http_endpoint
        own = rx.grpc_endpoint if transport == "grpc" else rx.http_logs_endpoint
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", transport)
        for name, value in env.items():
            monkeypatch.setenv(name, value.format(base=base, own=own))
        exporter, _ = otel.new_otlp_log_exporter(timeout=2)
        cfg = otel.new_config("svc", "1", log_exporter=exporter)
        cfg.logger_provider.get_logger("t").emit(body="routed")
        assert cfg.force_flush(5) is True
        assert [r.body for r in rx.wait_for_logs(1, timeout=5)] == ["routed"]
        assert cfg.shutdown(5) is True


def test_the_applications_own_logger_provider_is_still_flushed_at_exit() -> None:
    """Configured without a log exporter, the application's own provider is flushed at exit."""
    with OTLPReceiver() as rx:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["OTEL_BLRP_SCHEDULE_DELAY"] = "600000"
        subprocess.run(
            [sys.executable, "-c", _CONFIGURED_AT_EXIT, rx.grpc_endpoint],
            env=env,
            check=True,
            timeout=60,
            capture_output=True,
        )
        assert [r.body for r in rx.wait_for_logs(1, timeout=10)] == ["own provider"]
