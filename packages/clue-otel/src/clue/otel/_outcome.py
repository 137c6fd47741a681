"""Export outcomes: exporters that count their failures, so flushes report them.

The SDK's batch processor and periodic reader drop what ``export`` returns (a
``FAILURE`` is at most logged), so their ``force_flush`` says True while every export
failed. :func:`new_config` hands them these wrappers, and ``Config.force_flush`` and
``Config.shutdown`` report False when an export failed while they ran.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from clue.otel import _fork

__all__ = ["Failures", "counting_metric_exporter", "counting_span_exporter"]


class Failures:
    """A count of failed exports (rare: adding takes a lock, reading does not)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        _fork.register(self)

    def after_fork(self) -> None:
        """In a forked child: a new lock."""
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    def add(self) -> None:
        with self._lock:
            self._count += 1


def counting_span_exporter(inner: SpanExporter, failures: Failures) -> SpanExporter:
    """``inner``, counting each export that does not succeed into ``failures``."""
    return _CountingSpanExporter(inner, failures)


def counting_metric_exporter(inner: MetricExporter, failures: Failures) -> MetricExporter:
    """``inner``, counting each export that does not succeed into ``failures``."""
    return _CountingMetricExporter(inner, failures)


class _CountingSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, failures: Failures) -> None:
        self._inner = inner
        self._failures = failures

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except BaseException:
            self._failures.add()
            raise
        if result is not SpanExportResult.SUCCESS:
            self._failures.add()
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def __getattr__(self, name: str) -> Any:
        # Anything else (an exporter's own attributes) is the wrapped exporter's.
        return getattr(self._inner, name)


class _CountingMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, failures: Failures) -> None:
        # The reader reads the wrapped exporter's preferences from these.
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._failures = failures

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except BaseException:
            self._failures.add()
            raise
        if result is not MetricExportResult.SUCCESS:
            self._failures.add()
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
