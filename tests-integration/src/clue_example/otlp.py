"""The harness's view of clue-otel's OTLP receiver (``clue.otel.testing.OTLPReceiver``)."""

from __future__ import annotations

from clue.otel.testing import OTLPReceiver, ReceivedSpan
from clue_example.analysis import SpanView

__all__ = ["grpc_endpoint", "spans", "spans_of_trace"]


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
