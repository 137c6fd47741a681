"""The default buffering switch on the buffered call, against OpenTelemetry contexts of every
kind: none attached, empty ones, baggage only, sampled and unsampled spans, nested."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from clue import log

from .conftest import JsonOut


def _span(sampled: bool) -> trace.Span:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return NonRecordingSpan(SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=flags))


def _context(kind: str) -> Any:
    # What a step attaches: each kind of OpenTelemetry context a log call may run under.
    if kind == "current":  # the current context again (the variable's default, if unset)
        return otel_context.get_current()
    if kind == "empty":  # an empty Context of its own, not the default
        return otel_context.Context()
    if kind == "baggage":  # keys, but no span
        return baggage.set_baggage("tenant", "acme")
    if kind == "baggage+sampled":
        return trace.set_span_in_context(_span(True), baggage.set_baggage("tenant", "acme"))
    return trace.set_span_in_context(_span(kind == "sampled"))


STEP = st.one_of(
    st.tuples(
        st.just("attach"),
        st.sampled_from(["current", "empty", "baggage", "sampled", "unsampled", "baggage+sampled"]),
    ),
    st.tuples(st.just("detach"), st.none()),
    st.tuples(st.just("log"), st.none()),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEP, max_size=25))
def test_a_call_is_written_at_once_exactly_when_a_sampled_span_is_current(
    steps: list[tuple[str, str | None]],
) -> None:
    """Whatever OpenTelemetry contexts are attached and detached around the calls, a
    buffered call is written at once (after what its context buffered) exactly when the
    current span is sampled, and buffered otherwise; what is still buffered when the
    context ends is not written."""
    out = JsonOut()
    log.configure(output=out, format=log.format_json)
    tokens: list[object] = []
    written: list[str] = []  # the model: what must have been written, in order
    buffered: list[str] = []
    try:
        with log.context():
            for i, (what, kind) in enumerate(steps):
                if what == "attach":
                    assert kind is not None
                    tokens.append(otel_context.attach(_context(kind)))
                elif what == "detach":
                    if tokens:
                        otel_context.detach(tokens.pop())  # type: ignore[arg-type]
                else:
                    line = f"line {i}"
                    span = trace.get_current_span()
                    if span.get_span_context().trace_flags.sampled:
                        written.extend([*buffered, line])
                        buffered.clear()
                    else:
                        buffered.append(line)
                    log.info(line, step=i, kind="small", ratio=0.5)
                    assert out.msgs() == written
    finally:
        while tokens:
            otel_context.detach(tokens.pop())  # type: ignore[arg-type]
    assert out.msgs() == written
