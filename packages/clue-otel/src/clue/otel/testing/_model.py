"""What the OTLP receiver collected, decoded into plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "AttributeValue",
    "ReceivedEvent",
    "ReceivedLink",
    "ReceivedLogRecord",
    "ReceivedMetric",
    "ReceivedPoint",
    "ReceivedSpan",
    "Transport",
    "decode_logs",
    "decode_metrics",
    "decode_spans",
]

Transport = Literal["grpc", "http"]
AttributeValue = str | bool | int | float | bytes | tuple[Any, ...] | dict[str, Any] | None
"""A decoded OTLP ``AnyValue``: arrays become tuples, key/value lists dicts."""


@dataclass(frozen=True)
class ReceivedEvent:
    """A span event: ``name``, ``attributes`` and ``time_unix_nano``."""

    name: str
    attributes: dict[str, AttributeValue]
    time_unix_nano: int


@dataclass(frozen=True)
class ReceivedLink:
    """A span link to ``trace_id``/``span_id`` (hex) with ``attributes``."""

    trace_id: str
    span_id: str
    attributes: dict[str, AttributeValue]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it.

    Ids are lowercase hex (``trace_id`` 32 chars, ``span_id`` 16); ``parent_span_id`` is
    None for a root span. ``kind`` is ``"internal"``, ``"server"``, ``"client"``,
    ``"producer"`` or ``"consumer"``; ``status_code`` is ``"UNSET"``, ``"OK"`` or
    ``"ERROR"``. ``resource`` holds the resource attributes of the batch the span came
    in, ``scope`` the instrumentation scope name, ``transport`` how it arrived.
    """

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    attributes: dict[str, AttributeValue]
    resource: dict[str, AttributeValue]
    scope: str
    status_code: str
    status_message: str
    events: tuple[ReceivedEvent, ...]
    links: tuple[ReceivedLink, ...]
    start_time_unix_nano: int
    end_time_unix_nano: int
    flags: int
    trace_state: str
    transport: Transport

    @property
    def is_root(self) -> bool:
        """Whether the span has no parent."""
        return self.parent_span_id is None

    @property
    def duration_ns(self) -> int:
        """End minus start, in nanoseconds."""
        return self.end_time_unix_nano - self.start_time_unix_nano

    def event(self, name: str) -> ReceivedEvent | None:
        """The first event called ``name``, if any."""
        return next((e for e in self.events if e.name == name), None)


@dataclass(frozen=True)
class ReceivedPoint:
    """One data point: ``value`` for sums and gauges, ``count``/``sum`` for histograms."""

    attributes: dict[str, AttributeValue]
    value: int | float | None
    count: int | None
    sum: float | None
    time_unix_nano: int


@dataclass(frozen=True)
class ReceivedMetric:
    """One metric of one export.

    ``kind`` is ``sum``, ``gauge``, ``histogram``, ``exponential_histogram`` or ``summary``.
    """

    name: str
    description: str
    unit: str
    kind: str
    points: tuple[ReceivedPoint, ...]
    resource: dict[str, AttributeValue]
    scope: str
    transport: Transport


@dataclass(frozen=True)
class ReceivedLogRecord:
    """One log record; ids are hex, empty when the record has no span context."""

    body: AttributeValue
    severity_text: str
    severity_number: int
    attributes: dict[str, AttributeValue]
    trace_id: str
    span_id: str
    resource: dict[str, AttributeValue]
    scope: str
    time_unix_nano: int
    transport: Transport
    observed_time_unix_nano: int = 0


_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def decode_spans(request: Any, transport: Transport) -> list[ReceivedSpan]:
    """Decode an ``ExportTraceServiceRequest``."""
    out: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            out.extend(_span(s, resource, scope, transport) for s in scope_spans.spans)
    return out


def decode_metrics(request: Any, transport: Transport) -> list[ReceivedMetric]:
    """Decode an ``ExportMetricsServiceRequest``."""
    out: list[ReceivedMetric] = []
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data") or "unknown"
                points = (
                    tuple(_point(p) for p in getattr(metric, kind).data_points)
                    if kind != "unknown"
                    else ()
                )
                out.append(
                    ReceivedMetric(
                        name=metric.name,
                        description=metric.description,
                        unit=metric.unit,
                        kind=kind,
                        points=points,
                        resource=resource,
                        scope=scope,
                        transport=transport,
                    )
                )
    return out


def decode_logs(request: Any, transport: Transport) -> list[ReceivedLogRecord]:
    """Decode an ``ExportLogsServiceRequest``."""
    out: list[ReceivedLogRecord] = []
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name
            out.extend(_log(r, resource, scope, transport) for r in scope_logs.log_records)
    return out


def _span(
    span: Any, resource: dict[str, AttributeValue], scope: str, transport: Transport
) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        kind=_KINDS.get(span.kind, str(span.kind)),
        attributes=_attributes(span.attributes),
        resource=resource,
        scope=scope,
        status_code=_STATUS.get(span.status.code, str(span.status.code)),
        status_message=span.status.message,
        events=tuple(
            ReceivedEvent(e.name, _attributes(e.attributes), e.time_unix_nano) for e in span.events
        ),
        links=tuple(
            ReceivedLink(link.trace_id.hex(), link.span_id.hex(), _attributes(link.attributes))
            for link in span.links
        ),
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
        flags=span.flags,
        trace_state=span.trace_state,
        transport=transport,
    )


def _log(
    record: Any, resource: dict[str, AttributeValue], scope: str, transport: Transport
) -> ReceivedLogRecord:
    return ReceivedLogRecord(
        body=_value(record.body),
        severity_text=record.severity_text,
        severity_number=int(record.severity_number),
        attributes=_attributes(record.attributes),
        trace_id=record.trace_id.hex(),
        span_id=record.span_id.hex(),
        resource=resource,
        scope=scope,
        time_unix_nano=record.time_unix_nano,
        transport=transport,
        observed_time_unix_nano=record.observed_time_unix_nano,
    )


def _point(point: Any) -> ReceivedPoint:
    value: int | float | None = None
    fields = {f.name for f, _ in point.ListFields()}
    if "as_int" in fields:
        value = point.as_int
    elif "as_double" in fields:
        value = point.as_double
    count = point.count if hasattr(point, "count") else None
    total = point.sum if hasattr(point, "sum") else None
    return ReceivedPoint(
        attributes=_attributes(point.attributes),
        value=value,
        count=count,
        sum=total,
        time_unix_nano=point.time_unix_nano,
    )


def _attributes(pairs: Any) -> dict[str, AttributeValue]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _value(value: Any) -> AttributeValue:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    result: AttributeValue = getattr(value, kind)
    return result
