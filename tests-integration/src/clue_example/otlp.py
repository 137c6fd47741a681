"""The harness's view of clue-otel's OTLP receiver (``clue.otel.testing.OTLPReceiver``)."""

from __future__ import annotations

from clue.otel.testing import OTLPReceiver, ReceivedSpan
from clue_example.analysis import LogMetrics, RecordView, SpanView

__all__ = ["grpc_endpoint", "log_metrics", "log_records", "spans", "spans_of_trace"]


def grpc_endpoint(receiver: OTLPReceiver) -> str:
    """The ``endpoint`` option for the services' OTLP/gRPC span exporters."""
    return receiver.grpc_endpoint


def spans(receiver: OTLPReceiver) -> list[SpanView]:
    """Every span received so far."""
    return [_view(s) for s in receiver.spans()]


def spans_of_trace(receiver: OTLPReceiver, trace_id: str) -> list[SpanView]:
    """The spans received so far for one trace."""
    return [_view(s) for s in receiver.spans(trace_id=trace_id)]


def _view(span: ReceivedSpan) -> SpanView:
    return SpanView(
        service=str(span.resource.get("service.name", "")),
        name=span.name,
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        is_error=span.status_code == "ERROR",
        kind=span.kind.upper(),
    )


def log_records(receiver: OTLPReceiver) -> list[RecordView]:
    """Every log record received so far, in arrival order."""
    return [
        RecordView(str(r.resource.get("service.name", "")), str(r.body), r.trace_id)
        for r in receiver.logs()
    ]


def log_metrics(receiver: OTLPReceiver) -> dict[str, LogMetrics]:
    """Per service, clue-log's ``clue.log.*`` metrics as received.

    The counters are cumulative, so a service's total per attribute value is the highest
    value of all its exports (its last, at shutdown); the buffered bytes are a value per
    export, of which the peak is kept.
    """
    result: dict[str, LogMetrics] = {}
    for metric in receiver.metrics():
        if metric.scope != "clue.log":
            continue
        service = str(metric.resource.get("service.name", ""))
        found = result.setdefault(service, LogMetrics())
        for point in metric.points:
            value = int(point.value or 0)
            if metric.name == "clue.log.buffered.bytes":
                found.exports += 1
                peak = found.peak_buffered_bytes
                found.peak_buffered_bytes = value if peak is None else max(peak, value)
                continue
            table, key = {
                "clue.log.contexts": (found.contexts, "clue.log.outcome"),
                "clue.log.entries": (found.entries, "clue.log.outcome"),
                "clue.log.output.bytes": (found.output_bytes, "clue.log.output"),
            }.get(metric.name, ({}, ""))
            label = str(point.attributes.get(key, ""))
            table[label] = max(table.get(label, 0), value)
    return result
