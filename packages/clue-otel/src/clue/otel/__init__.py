"""clue.otel: OpenTelemetry in one call, with an adaptive sampler and error promotion.

Example:
    >>> from clue import otel
    >>> cfg = otel.new_config("orders", "1.0.0")
    >>> otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
"""

from __future__ import annotations

from clue.otel import _env  # noqa: F401 (first: a malformed OTEL_PROPAGATORS must not break imports)
from clue.otel._bounded import Shutdown
from clue.otel._build import new_config
from clue.otel._config import Config, configure_opentelemetry, reset_opentelemetry
from clue.otel._diagnostics import ErrorHandler, OpenTelemetryError, log_error
from clue.otel._exporters import (
    new_grpc_log_exporter,
    new_grpc_metric_exporter,
    new_grpc_span_exporter,
    new_http_log_exporter,
    new_http_metric_exporter,
    new_http_span_exporter,
    new_otlp_log_exporter,
    new_otlp_metric_exporter,
    new_otlp_span_exporter,
)
from clue.otel._promotion import ErrorPromotionProcessor, PromotionStats
from clue.otel._sampler import AdaptiveSampler

__all__ = [
    "AdaptiveSampler",
    "Config",
    "ErrorHandler",
    "ErrorPromotionProcessor",
    "OpenTelemetryError",
    "PromotionStats",
    "Shutdown",
    "configure_opentelemetry",
    "log_error",
    "new_config",
    "new_grpc_log_exporter",
    "new_grpc_metric_exporter",
    "new_grpc_span_exporter",
    "new_http_log_exporter",
    "new_http_metric_exporter",
    "new_http_span_exporter",
    "new_otlp_log_exporter",
    "new_otlp_metric_exporter",
    "new_otlp_span_exporter",
    "reset_opentelemetry",
]
