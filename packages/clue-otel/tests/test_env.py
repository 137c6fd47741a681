"""Each OTEL_* variable in the README's table, set (and malformed) in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

_SCRIPT = textwrap.dedent(
    """
    import json
    import structlog

    capture = structlog.testing.capture_logs()
    logs = capture.__enter__()
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from clue import otel

    exporter = InMemorySpanExporter()
    cfg = otel.new_config("svc", "", None, exporter, max_sampling_rate=1e9)
    metric_cfg = otel.new_config("svc", "1", otel.new_http_metric_exporter()[0])
    tracer = cfg.tracer_provider.get_tracer("t")
    recording = []
    for _ in range(200):
        span = tracer.start_span("op")
        recording.append(span.is_recording())
        span.end()
    cfg.force_flush(5)
    log_exporter = InMemoryLogRecordExporter()
    log_cfg = otel.new_config("svc", "1", log_exporter=log_exporter)
    logger = log_cfg.logger_provider.get_logger("l")
    for _ in range(200):
        logger.emit(body="x")
    log_cfg.force_flush(5)
    grpc_log_exporter, _ = otel.new_grpc_log_exporter()
    otlp_logs, _ = otel.new_otlp_log_exporter()
    grpc_exporter, _ = otel.new_grpc_span_exporter()
    otlp_exporter, _ = otel.new_otlp_span_exporter()
    otlp_metrics, _ = otel.new_otlp_metric_exporter()
    resource = getattr(cfg.tracer_provider, "resource", None)
    print(json.dumps({
        "events": sorted({(e["event"], e.get("variable", "")) for e in logs}),
        "sampler": getattr(getattr(cfg.tracer_provider, "sampler", None), "get_description", str)(),
        "sampled": len(exporter.get_finished_spans()),
        "recording": sum(recording),
        "tracer_provider": type(cfg.tracer_provider).__name__,
        "meter_provider": type(metric_cfg.meter_provider).__name__,
        "propagators": sorted(cfg.propagators.fields),
        "timeout": grpc_exporter._timeout,
        "grpc_endpoint": grpc_exporter._endpoint,
        "compression": int(grpc_exporter._compression),
        "otlp": type(otlp_exporter).__module__.split(".")[4],
        "otlp_metrics": type(otlp_metrics).__module__.split(".")[4],
        "logger_provider": type(log_cfg.logger_provider).__name__,
        "logged": len(log_exporter.get_finished_logs()),
        "log_timeout": grpc_log_exporter._timeout,
        "log_endpoint": grpc_log_exporter._endpoint,
        "log_compression": int(grpc_log_exporter._compression),
        "otlp_logs": type(otlp_logs).__module__.split(".")[4],
        "version": resource.attributes.get("service.version") if resource else None,
    }))
    """
)


def run(env: dict[str, str]) -> dict[str, Any]:
    """Run the probe script in a fresh interpreter with only these OTEL_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env={**clean, **env},
        check=False,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    out["events"] = [tuple(e) for e in out["events"]]
    return out


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    return run({})


def test_nothing_set_gives_clues_defaults(baseline: dict[str, Any]) -> None:
    """Without OTEL_* variables: the adaptive sampler, both signals, W3C propagators."""
    assert baseline["sampler"].startswith("ParentBased{root:Adaptive{")
    assert baseline["sampled"] == 200
    assert baseline["propagators"] == ["baggage", "traceparent", "tracestate"]
    assert baseline["events"] == []
    assert (baseline["otlp"], baseline["otlp_metrics"], baseline["otlp_logs"]) == ("http",) * 3
    assert (baseline["logger_provider"], baseline["logged"]) == ("LoggerProvider", 200)


@pytest.mark.parametrize(
    ("env", "check"),
    [
        # OTEL_TRACES_SAMPLER: the operator's choice wins; an unknown name is warned, ignored.
        ({"OTEL_TRACES_SAMPLER": "always_off"}, lambda o: o["sampled"] == 0),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
            lambda o: "TraceIdRatioBased{0.5}" in o["sampler"] and 60 < o["sampled"] < 140,
        ),
        (
            {"OTEL_TRACES_SAMPLER": "bogus"},
            lambda o: (
                o["sampler"].startswith("ParentBased{root:Adaptive{")
                and ("otel.env.invalid", "OTEL_TRACES_SAMPLER") in o["events"]
            ),
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "abc"},
            lambda o: (
                o["sampled"] == 200
                and ("otel.env.invalid", "OTEL_TRACES_SAMPLER_ARG") in o["events"]
            ),
        ),
        # The ratio's argument unset or blank: the specification's default 1.0, no warning.
        *[
            (
                {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", **arg},
                lambda o: "TraceIdRatioBased{1.0}" in o["sampler"] and o["events"] == [],
            )
            for arg in ({}, {"OTEL_TRACES_SAMPLER_ARG": ""}, {"OTEL_TRACES_SAMPLER_ARG": " "})
        ],
        # Enum values are case-insensitive.
        ({"OTEL_TRACES_SAMPLER": "Always_Off"}, lambda o: o["sampled"] == 0),
        (
            {"OTEL_PROPAGATORS": "Baggage"},
            lambda o: o["propagators"] == ["baggage"] and o["events"] == [],
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "GRPC"},
            lambda o: (
                o["otlp"] == "grpc"
                and o["otlp_metrics"] == "grpc"
                and ("otel.env.invalid", "OTEL_EXPORTER_OTLP_PROTOCOL") not in o["events"]
            ),
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "HTTP/Protobuf"},
            lambda o: (
                o["otlp"] == "http"
                and ("otel.env.invalid", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") not in o["events"]
            ),
        ),
        # OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER: none disables; others are reported.
        ({"OTEL_TRACES_EXPORTER": "none"}, lambda o: o["tracer_provider"] == "NoOpTracerProvider"),
        (
            {"OTEL_TRACES_EXPORTER": "console"},
            lambda o: (
                o["sampled"] == 200 and ("otel.env.ignored", "OTEL_TRACES_EXPORTER") in o["events"]
            ),
        ),
        ({"OTEL_METRICS_EXPORTER": "none"}, lambda o: o["meter_provider"] == "NoOpMeterProvider"),
        (
            {"OTEL_METRICS_EXPORTER": "prometheus"},
            lambda o: (
                o["meter_provider"] == "MeterProvider"
                and ("otel.env.ignored", "OTEL_METRICS_EXPORTER") in o["events"]
            ),
        ),
        # OTEL_LOGS_EXPORTER: none disables logs; others are reported, clue's exporter used.
        ({"OTEL_LOGS_EXPORTER": "none"}, lambda o: o["logger_provider"] == "NoOpLoggerProvider"),
        ({"OTEL_LOGS_EXPORTER": "NONE"}, lambda o: o["logger_provider"] == "NoOpLoggerProvider"),
        (
            {"OTEL_LOGS_EXPORTER": "console"},
            lambda o: (
                o["logged"] == 200 and ("otel.env.ignored", "OTEL_LOGS_EXPORTER") in o["events"]
            ),
        ),
        ({"OTEL_LOGS_EXPORTER": "otlp"}, lambda o: o["logged"] == 200 and o["events"] == []),
        # OTEL_EXPORTER_OTLP_LOGS_*: the logs helpers read them first, then the general ones.
        (
            {"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "7", "OTEL_EXPORTER_OTLP_TIMEOUT": "3"},
            lambda o: o["log_timeout"] == 7 and o["timeout"] == 3,
        ),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "abc"},
            lambda o: (
                o["log_timeout"] == 10
                and ("otel.env.invalid", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT") in o["events"]
            ),
        ),
        ({"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": " "}, lambda o: o["log_timeout"] == 10),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "gzip"},
            lambda o: o["log_compression"] == 2 and o["compression"] == 0,
        ),
        ({"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "none"}, lambda o: o["log_compression"] == 0),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "zstd"},
            lambda o: (
                o["log_compression"] == 0
                and ("otel.env.invalid", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION") in o["events"]
            ),
        ),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:9"},
            lambda o: o["log_endpoint"] == "127.0.0.1:9" and o["grpc_endpoint"] != "127.0.0.1:9",
        ),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "grpc"},
            lambda o: o["otlp_logs"] == "grpc" and o["otlp"] == "http",
        ),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/json"},
            lambda o: (
                o["otlp_logs"] == "http"
                and ("otel.env.unsupported", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL") in o["events"]
            ),
        ),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "carrier-pigeon"},
            lambda o: ("otel.env.invalid", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL") in o["events"],
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            lambda o: o["otlp_logs"] == "grpc",
        ),
        # OTEL_PROPAGATORS: honoured; an unknown item is warned and the default used.
        ({"OTEL_PROPAGATORS": "baggage"}, lambda o: o["propagators"] == ["baggage"]),
        (
            {"OTEL_PROPAGATORS": "tracecontext,bogus"},
            lambda o: (
                o["propagators"] == ["baggage", "traceparent", "tracestate"]
                and ("otel.env.invalid", "OTEL_PROPAGATORS") in o["events"]
            ),
        ),
        # OTEL_EXPORTER_OTLP_TIMEOUT: seconds, as the SDK reads it; malformed: the default.
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "7"}, lambda o: o["timeout"] == 7),
        (
            {"OTEL_EXPORTER_OTLP_TIMEOUT": "abc"},
            lambda o: (
                o["timeout"] == 10
                and ("otel.env.invalid", "OTEL_EXPORTER_OTLP_TIMEOUT") in o["events"]
            ),
        ),
        # OTEL_EXPORTER_OTLP_COMPRESSION: honoured; malformed: none, warned.
        (
            {"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
            lambda o: o["compression"] == 2,
        ),  # grpc.Compression.Gzip
        (
            {"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
            lambda o: (
                o["compression"] == 0  # grpc.Compression.NoCompression
                and ("otel.env.invalid", "OTEL_EXPORTER_OTLP_COMPRESSION") in o["events"]
            ),
        ),
        # OTEL_EXPORTER_OTLP_PROTOCOL: the helper's transport is used; a mismatch is reported.
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            lambda o: (
                ("otel.env.ignored", "OTEL_EXPORTER_OTLP_PROTOCOL") in o["events"]
                and o["otlp"] == "http"
            ),
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            lambda o: o["otlp"] == "grpc" and o["otlp_metrics"] == "grpc",
        ),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"},
            lambda o: o["otlp"] == "http" and o["otlp_metrics"] == "grpc",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            lambda o: (
                o["otlp"] == "http"
                and ("otel.env.unsupported", "OTEL_EXPORTER_OTLP_PROTOCOL") in o["events"]
            ),
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
            lambda o: ("otel.env.invalid", "OTEL_EXPORTER_OTLP_PROTOCOL") in o["events"],
        ),
        # OTEL_RESOURCE_ATTRIBUTES: an empty service_version keeps the environment's.
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.version=9.9"}, lambda o: o["version"] == "9.9"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.version"}, lambda o: o["version"] is None),
        # OTEL_RESOURCE_ATTRIBUTES: the SDK's complaint goes through structlog, not bare stderr.
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "k=v,%zz"},
            lambda o: o["sampled"] == 200 and ("otel.error", "") not in o["events"],
        ),
        # OTEL_BSP_*: honoured; malformed or out of range (which the SDK's constructor
        # raises on): warned, the default.
        ({"OTEL_BSP_SCHEDULE_DELAY": "250"}, lambda o: o["events"] == []),
        *[
            (
                {variable: value},
                lambda o, variable=variable: (
                    o["sampled"] == 200 and ("otel.env.invalid", variable) in o["events"]
                ),
            )
            for variable, value in [
                ("OTEL_BSP_SCHEDULE_DELAY", "abc"),
                ("OTEL_BSP_SCHEDULE_DELAY", "0"),
                ("OTEL_BSP_SCHEDULE_DELAY", "-5"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-1"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096"),  # above the default queue
                ("OTEL_BSP_MAX_QUEUE_SIZE", str(10**23)),  # overflows the queue
                ("OTEL_BSP_SCHEDULE_DELAY", str(10**23)),  # overflows the timer
            ]
        ],
        # A queue of 100 is kept (batches capped to it); spans past a full queue are dropped,
        # as the SDK drops them, so how many of the 200 arrive depends on the export thread.
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "100"}, lambda o: o["sampled"] >= 100 and o["events"] == []),
        # OTEL_BLRP_*: as OTEL_BSP_*, for the batch log record processor.
        ({"OTEL_BLRP_SCHEDULE_DELAY": "250"}, lambda o: o["logged"] == 200 and o["events"] == []),
        *[
            (
                {variable: value},
                lambda o, variable=variable: (
                    o["logged"] == 200 and ("otel.env.invalid", variable) in o["events"]
                ),
            )
            for variable, value in [
                ("OTEL_BLRP_SCHEDULE_DELAY", "abc"),
                ("OTEL_BLRP_SCHEDULE_DELAY", "0"),
                ("OTEL_BLRP_SCHEDULE_DELAY", str(10**23)),
                ("OTEL_BLRP_MAX_QUEUE_SIZE", "0"),
                ("OTEL_BLRP_MAX_QUEUE_SIZE", "-3"),
                ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "-1"),
                ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "4096"),  # above the default queue
            ]
        ],
        # The export timeouts: malformed or out of range is warned, never an error (the
        # SDK's processors log one to the error handler); a valid one is silent.
        *[
            (
                {variable: value},
                lambda o, variable=variable: (
                    (o["logged"], o["sampled"]) == (200, 200)
                    and ("otel.env.invalid", variable) in o["events"]
                    and ("otel.error", "") not in o["events"]
                ),
            )
            for variable, value in [
                ("OTEL_BLRP_EXPORT_TIMEOUT", "abc"),
                ("OTEL_BLRP_EXPORT_TIMEOUT", "-5"),
                ("OTEL_BSP_EXPORT_TIMEOUT", "1.5"),
                ("OTEL_BSP_EXPORT_TIMEOUT", str(10**23)),
            ]
        ],
        (
            {"OTEL_BLRP_EXPORT_TIMEOUT": "2000", "OTEL_BSP_EXPORT_TIMEOUT": " 0 "},
            lambda o: (o["logged"], o["sampled"], o["events"]) == (200, 200, []),
        ),
        (
            {"OTEL_BLRP_MAX_QUEUE_SIZE": "100"},
            lambda o: o["logged"] >= 100 and o["events"] == [],
        ),
        # OTEL_METRIC_EXPORT_INTERVAL: not positive (the SDK raises on it): warned, 60 s.
        *[
            (
                {"OTEL_METRIC_EXPORT_INTERVAL": value},
                lambda o: (
                    o["meter_provider"] == "MeterProvider"
                    and ("otel.env.invalid", "OTEL_METRIC_EXPORT_INTERVAL") in o["events"]
                ),
            )
            for value in ("0", "-1", "nan", "abc", "1e300")
        ],
        # A blank variable is unset (the SDK's exporters take it as set and raise on it).
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": ""}, lambda o: o["timeout"] == 10 and o["events"] == []),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": " ", "OTEL_EXPORTER_OTLP_TIMEOUT": "7"},
            lambda o: o["timeout"] == 7 and o["events"] == [],
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "abc"},
            lambda o: (
                o["timeout"] == 10
                and ("otel.env.invalid", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") in o["events"]
            ),
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"},
            lambda o: (
                o["compression"] == 0
                and ("otel.env.invalid", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") in o["events"]
            ),
        ),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": ""}, lambda o: o["compression"] == 0),
        # Values the specification allows that the SDK's gRPC exporters raise on.
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "none"}, lambda o: o["compression"] == 0),
        ({"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "None"}, lambda o: o["compression"] == 0),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "deflate"}, lambda o: o["compression"] == 1),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": " ",
                "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            },
            lambda o: o["compression"] == 2 and o["events"] == [],
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, lambda o: o["grpc_endpoint"] == "localhost:4317"),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            },
            lambda o: o["grpc_endpoint"] == "127.0.0.1:9",
        ),
        # OTEL_SDK_DISABLED: honoured by the SDK's providers (only "true" disables).
        (
            {"OTEL_SDK_DISABLED": "true"},
            lambda o: (o["recording"], o["sampled"], o["logged"]) == (0, 0, 0),
        ),
        ({"OTEL_SDK_DISABLED": "maybe"}, lambda o: o["sampled"] == 200 and o["logged"] == 200),
    ],
    ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else "",
)
def test_variable_in_a_fresh_process(env: dict[str, str], check: Any) -> None:
    """The variable (valid or malformed) has the documented outcome; start-up never crashes."""
    outcome = run(env)
    assert check(outcome), outcome


_FUZZ = textwrap.dedent(
    """
    import os
    import threading

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    import structlog

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    from clue import otel

    crashed = []
    threading.excepthook = lambda args: crashed.append(repr(args.exc_value))
    VARIABLES = [
        "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_METRIC_EXPORT_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
        "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_PROPAGATORS",
        "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_SDK_DISABLED",
        "OTEL_LOGS_EXPORTER", "OTEL_BLRP_MAX_QUEUE_SIZE", "OTEL_BLRP_SCHEDULE_DELAY",
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "OTEL_BLRP_EXPORT_TIMEOUT",
        "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS", "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
        "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
        "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_INSECURE",
        "OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    ]
    number = st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.sampled_from(["0", "1", "512", "2048", "2147483647", "2147483648", " 7 ", "1e3"]),
    )
    word = st.sampled_from([
        "", " ", "gzip", "GZIP", "none", "deflate", "zstd", "grpc", "http/protobuf",
        "http/json", "always_off", "traceidratio", "parentbased_traceidratio", "bogus",
        "tracecontext,baggage", "TraceContext", "tracecontext,", "none", "otlp", "true",
        "a=b=c,%zz,k=%E2%9C%93", ",,=", "\\u00e9", "collector:4317", "http://127.0.0.1:9",
        "https://[::1]:9/x", "http://", "::", "/nonexistent", "x-k=%zz", "=v", "k=",
    ])
    value = st.one_of(number, word, st.text(max_size=8))

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.dictionaries(st.sampled_from(VARIABLES), value, max_size=6))
    def check(env):
        env = {k: v.replace("\\x00", "") for k, v in env.items()}
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            cfg = otel.new_config(
                "svc", "1", ConsoleMetricExporter(out=open(os.devnull, "w")),
                InMemorySpanExporter(), error_promotion=True,
                log_exporter=InMemoryLogRecordExporter(),
            )
            cfg.tracer_provider.get_tracer("t").start_span("x").end()
            cfg.logger_provider.get_logger("l").emit(body="x")
            for helper in (
                otel.new_grpc_span_exporter, otel.new_grpc_metric_exporter,
                otel.new_http_span_exporter, otel.new_http_metric_exporter,
                otel.new_otlp_span_exporter, otel.new_otlp_metric_exporter,
                otel.new_grpc_log_exporter, otel.new_http_log_exporter,
                otel.new_otlp_log_exporter,
            ):
                _, stop = helper()
                stop(1)
            cfg.shutdown(5)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert not crashed, (env, crashed)

    check()
    print("ok")
    """
)


def test_no_setting_crashes_start_up_hypothesis() -> None:
    """Hypothesis-chosen OTEL_* values: new_config and every helper build, no thread dies."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", _FUZZ],
        env=clean,
        check=False,
        timeout=600,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.strip().endswith("ok"), result.stdout[-2000:]
