""":func:`new_config`: the options checked, then the tracer, meter and logger providers built."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from opentelemetry._logs import LoggerProvider, NoOpLoggerProvider
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler
from opentelemetry.trace import NoOpTracerProvider, TracerProvider
from opentelemetry.util.types import AttributeValue

from clue.otel import _fork
from clue.otel._config import _STATE, Config
from clue.otel._diagnostics import ErrorHandler, log_error
from clue.otel._env import (
    batch_options,
    export_timeout_millis,
    metric_interval_millis,
    sampler_from_env,
    signal_disabled,
)
from clue.otel._outcome import Failures, counting_metric_exporter, counting_span_exporter
from clue.otel._promotion import ErrorPromotionProcessor, RecordDropped
from clue.otel._propagators import chosen_propagator
from clue.otel._sampler import AdaptiveSampler
from clue.otel._validate import is_positive_number, require

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExporter

__all__ = ["new_config"]


def new_config(
    service_name: str,
    service_version: str,
    metric_exporter: MetricExporter | None = None,
    span_exporter: SpanExporter | None = None,
    *,
    max_sampling_rate: float = 2,
    sample_size: int = 10,
    reader_interval: float | timedelta | None = None,
    propagators: TextMapPropagator | Sequence[TextMapPropagator] | None = None,
    resource: Resource | Mapping[str, AttributeValue] | None = None,
    error_handler: ErrorHandler | None = None,
    log_exporter: LogRecordExporter | None = None,
    error_promotion: bool = False,
) -> Config:
    """Build the tracer, meter and logger providers of a service.

    Args:
        service_name: ``service.name`` of the resource.
        service_version: ``service.version`` of the resource.
        metric_exporter: Where metrics go; None (or ``OTEL_METRICS_EXPORTER=none``)
            disables metrics (no-op provider).
        span_exporter: Where spans go; None (or ``OTEL_TRACES_EXPORTER=none``)
            disables traces (no-op provider).
        log_exporter: Where log records emitted through the OpenTelemetry Logs API
            go, through a batch processor (``OTEL_BLRP_*``); None (or
            ``OTEL_LOGS_EXPORTER=none``) disables logs (no-op provider, and the global
            logger provider is left alone).
        max_sampling_rate: Target maximum of sampled traces per second of the
            adaptive sampler, used unless ``OTEL_TRACES_SAMPLER`` names another one.
        sample_size: Decisions between two estimates of the request rate.
        reader_interval: Seconds (or a timedelta) between two metric exports; None
            uses the SDK default (``OTEL_METRIC_EXPORT_INTERVAL``, else 60 s).
        propagators: A propagator or a list of them; None uses
            ``OTEL_PROPAGATORS`` when set, else W3C trace context + baggage.
        resource: Extra resource attributes (a ``Resource`` or a mapping), merged
            over the SDK default resource (which reads ``OTEL_RESOURCE_ATTRIBUTES``)
            and ``service.name``/``service.version``.
        error_handler: Called with each error the SDK reports; default writes it
            through structlog.
        error_promotion: Record the traces the sampler drops and export those that
            end in error (see the README).

    Returns:
        A :class:`Config` to pass to :func:`configure_opentelemetry`.

    Raises:
        ValueError: Naming the first invalid argument.

    Example:
        >>> from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        >>> cfg = new_config("orders", "1.2.3", span_exporter=ConsoleSpanExporter())
        >>> cfg.sampler.get_description()
        'Adaptive{maxSamplingRate:2,sampleSize:10}'

    .. versionadded:: 0.1.0
    """
    require(
        isinstance(service_name, str) and bool(service_name),
        "service_name",
        "a non-empty string",
        service_name,
    )
    require(isinstance(service_version, str), "service_version", "a string", service_version)
    require(
        metric_exporter is None or isinstance(metric_exporter, MetricExporter),
        "metric_exporter",
        "an opentelemetry MetricExporter or None",
        metric_exporter,
    )
    require(
        span_exporter is None or isinstance(span_exporter, SpanExporter),
        "span_exporter",
        "an opentelemetry SpanExporter or None",
        span_exporter,
    )
    if log_exporter is not None:
        from clue.otel import _logs  # the logs SDK, only when logs are exported

        require(
            _logs.is_log_exporter(log_exporter),
            "log_exporter",
            "an opentelemetry LogRecordExporter or None",
            log_exporter,
        )
    sampler = AdaptiveSampler(max_sampling_rate, sample_size)
    interval_ms = _interval_millis(reader_interval)
    propagator = chosen_propagator(propagators)
    require(
        error_handler is None or callable(error_handler),
        "error_handler",
        "a callable or None",
        error_handler,
    )
    require(isinstance(error_promotion, bool), "error_promotion", "a bool", error_promotion)
    require(
        resource is None or isinstance(resource, Resource | Mapping),
        "resource",
        "a Resource or a mapping of attributes",
        resource,
    )

    if span_exporter is not None and signal_disabled("OTEL_TRACES_EXPORTER"):
        span_exporter = None
    if metric_exporter is not None and signal_disabled("OTEL_METRICS_EXPORTER"):
        metric_exporter = None
    if log_exporter is not None and signal_disabled("OTEL_LOGS_EXPORTER"):
        log_exporter = None
    chosen = sampler_from_env() if span_exporter is not None else None
    # The SDK's own warnings while building (a malformed OTEL_RESOURCE_ATTRIBUTES
    # item...) go to structlog too, not to bare stderr.
    failures = Failures()
    with _STATE.routing_while_building(error_handler or log_error):
        full_resource = _resource(service_name, service_version, resource)
        tracer_provider: TracerProvider = NoOpTracerProvider()
        promotion: ErrorPromotionProcessor | None = None
        if span_exporter is not None:
            queue, delay, batch = batch_options()
            processor: SpanProcessor = BatchSpanProcessor(
                counting_span_exporter(span_exporter, failures),
                max_queue_size=queue,
                schedule_delay_millis=delay,
                max_export_batch_size=batch,
                export_timeout_millis=export_timeout_millis("OTEL_BSP_EXPORT_TIMEOUT"),
            )
            root: Sampler = chosen if chosen is not None else ParentBased(sampler)
            if error_promotion:
                processor = promotion = ErrorPromotionProcessor(processor)
                root = RecordDropped(root)
            sdk_tracer = SdkTracerProvider(
                sampler=root, resource=full_resource, shutdown_on_exit=False
            )
            sdk_tracer.add_span_processor(processor)
            tracer_provider = sdk_tracer
        meter_provider: MeterProvider = NoOpMeterProvider()
        if metric_exporter is not None:
            reader = PeriodicExportingMetricReader(
                counting_metric_exporter(metric_exporter, failures),
                export_interval_millis=(
                    metric_interval_millis() if interval_ms is None else interval_ms
                ),
            )
            sdk_meter = SdkMeterProvider(
                metric_readers=[reader], resource=full_resource, shutdown_on_exit=False
            )
            _fork.start_metrics_afresh_after_fork(sdk_meter)
            meter_provider = sdk_meter
        logger_provider: LoggerProvider = NoOpLoggerProvider()
        if log_exporter is not None:
            logger_provider = _logs.new_logger_provider(log_exporter, full_resource, failures)
        return Config(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            propagators=propagator,
            error_handler=error_handler or log_error,
            sampler=sampler if span_exporter is not None and chosen is None else None,
            error_promotion=promotion,
            logger_provider=logger_provider,
            _failures=failures,
        )


def _interval_millis(reader_interval: float | timedelta | None) -> float | None:
    if reader_interval is None:
        return None
    seconds = (
        reader_interval.total_seconds()
        if isinstance(reader_interval, timedelta)
        else reader_interval
    )
    require(
        is_positive_number(seconds),
        "reader_interval",
        "a positive number of seconds or a timedelta",
        reader_interval,
    )
    return seconds * 1000


def _resource(
    service_name: str,
    service_version: str,
    extra: Resource | Mapping[str, AttributeValue] | None,
) -> Resource:
    # SDK default (+ OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME), then ours, then the
    # user's. An empty service_version leaves the environment's version alone.
    ours: dict[str, AttributeValue] = {SERVICE_NAME: service_name}
    if service_version:
        ours[SERVICE_VERSION] = service_version
    base = Resource.create(ours)
    if extra is None:
        return base
    if isinstance(extra, Resource):
        return base.merge(extra)
    return base.merge(Resource(dict(extra)))
