"""What the interceptors do to each message: stamp it on send, read it on receive.

:class:`StreamTracing` is the validated configuration shared by all interceptors;
:class:`StreamTrace` is one stream's state: its name, the context it was opened in
(the "stream span", which per-message spans link to) and message counters.
"""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
from dataclasses import dataclass, field

from opentelemetry import context as otel_context
from opentelemetry import trace

from clue.interceptors import _carrier, _debugmark, _recv

__all__ = ["StreamTrace", "StreamTracing", "TracingOptions"]

_INSTRUMENTATION = "clue.interceptors"


@functools.cache
def _version() -> str:
    """The installed distribution's version: the spans' instrumentation scope version."""
    try:
        return importlib.metadata.version("clue-interceptors")
    except (importlib.metadata.PackageNotFoundError, ValueError):  # run from sources
        return "0+unknown"


@dataclass(frozen=True, slots=True)
class StreamTracing:
    """The interceptors' options, validated once at configuration time."""

    field: str = _carrier.DEFAULT_FIELD
    message_spans: bool = False
    overwrite: bool = True
    tracer_provider: trace.TracerProvider | None = None
    trust_baggage: bool = False
    max_mark_seconds: float = 60.0
    forward_baggage_mark: bool = False

    def __post_init__(self) -> None:
        _carrier.validate_field(self.field)
        _debugmark.check_seconds("max_mark_seconds", self.max_mark_seconds)
        for name in ("message_spans", "overwrite", "trust_baggage", "forward_baggage_mark"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.tracer_provider is not None and not isinstance(
            self.tracer_provider, trace.TracerProvider
        ):
            raise ValueError(
                f"tracer_provider must be an opentelemetry TracerProvider, "
                f"got {self.tracer_provider!r}"
            )

    def tracer(self) -> trace.Tracer:
        """The tracer for per-message spans (the global provider's unless given)."""
        return trace.get_tracer(_INSTRUMENTATION, _version(), tracer_provider=self.tracer_provider)

    def open(self, method: str | bytes | None) -> StreamTrace:
        """Start tracing one stream, opened in the current context."""
        tracer = self.tracer() if self.message_spans else None
        return StreamTrace(self, _stream_name(method), otel_context.get_current(), tracer)


class TracingOptions:
    """The keyword options every interceptor takes, validated into a StreamTracing."""

    def __init__(
        self,
        *,
        field: str = _carrier.DEFAULT_FIELD,
        message_spans: bool = False,
        overwrite: bool = True,
        tracer_provider: trace.TracerProvider | None = None,
        trust_baggage: bool = False,
        max_mark_seconds: float = 60.0,
        forward_baggage_mark: bool = False,
    ) -> None:
        self._tracing = StreamTracing(
            field,
            message_spans,
            overwrite,
            tracer_provider,
            trust_baggage,
            max_mark_seconds,
            forward_baggage_mark,
        )


@dataclass(slots=True)
class StreamTrace:
    """One stream: stamps what it sends, reads what it receives."""

    tracing: StreamTracing
    name: str
    context: otel_context.Context
    tracer: trace.Tracer | None = None
    _sent: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _received: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def send(self, message: object) -> None:
        """Stamp an outgoing message with the current context. Never raises."""
        tracing = self.tracing
        if not tracing.overwrite and _carrier.has_trace_metadata(message, tracing.field):
            return
        if self.tracer is None:
            _carrier.inject(message, field=tracing.field)
            return
        ctx = otel_context.get_current()
        span = self._message_span(
            self.tracer, "send", trace.SpanKind.PRODUCER, ctx, next(self._sent)
        )
        if span is None:
            _carrier.inject(message, field=tracing.field)
            return
        with span:
            _carrier.inject(message, field=tracing.field, context=trace.set_span_in_context(span))

    def receive(self, message: object) -> otel_context.Context:
        """The context a received message carries, recorded for the receive helpers."""
        tracing = self.tracing
        ctx = _carrier.read_context(message, tracing.field, self.context)
        ctx = _debugmark.screen(
            ctx,
            trust=tracing.trust_baggage,
            max_seconds=tracing.max_mark_seconds,
            forward=tracing.forward_baggage_mark,
        )
        if self.tracer is not None:
            span = self._message_span(
                self.tracer, "receive", trace.SpanKind.CONSUMER, ctx, next(self._received)
            )
            if span is not None:
                span.end()
                ctx = trace.set_span_in_context(span, ctx)
        _recv.record(message, ctx)
        return ctx

    def _message_span(
        self,
        tracer: trace.Tracer,
        operation: str,
        kind: trace.SpanKind,
        parent: otel_context.Context,
        seq: int,
    ) -> trace.Span | None:
        # A span for one message, child of `parent`, linked to the stream's span.
        try:
            stream_span = trace.get_current_span(self.context).get_span_context()
            parent_span = trace.get_current_span(parent).get_span_context()
            links = []
            if stream_span.is_valid and stream_span != parent_span:
                links.append(trace.Link(stream_span))
            service, _, method = self.name.rpartition("/")
            attributes: dict[str, str | int] = {
                "rpc.message.type": "SENT" if operation == "send" else "RECEIVED",
                "rpc.message.id": seq,
            }
            if service:
                attributes.update({"rpc.system": "grpc", "rpc.service": service})
            attributes["rpc.method"] = method
            return tracer.start_span(
                f"{self.name} {operation}",
                context=parent,
                kind=kind,
                attributes=attributes,
                links=links,
            )
        except Exception:  # telemetry never breaks the stream
            return None


def _stream_name(method: str | bytes | None) -> str:
    # "/pkg.Service/Method" (as gRPC names it) -> "pkg.Service/Method".
    if isinstance(method, bytes):
        method = method.decode("utf-8", "replace")
    return (method or "stream").lstrip("/")
