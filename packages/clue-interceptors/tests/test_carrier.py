"""Transport-agnostic inject() / extract() on protobuf messages, dataclasses and dicts."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from chatpb.chat_pb2 import Note
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from clue.interceptors import extract, inject

TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass
class Event:
    """A dataclass message whose map starts out empty."""

    text: str
    trace_metadata: dict[str, str] | None = None


@dataclass(frozen=True)
class Frozen:
    """A frozen dataclass: it can only carry metadata in a map it already has."""

    trace_metadata: dict[str, str] | None = None


def _remote(trace_id: int, span_id: int, ctx=None):
    sc = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
    return trace.set_span_in_context(NonRecordingSpan(sc), ctx)


def _span_context(ctx):
    return trace.get_current_span(ctx).get_span_context()


@pytest.mark.parametrize(
    "make",
    [lambda: Note(text="x"), lambda: Event("x"), lambda: {"text": "x"}],
    ids=["protobuf", "dataclass", "dict"],
)
def test_round_trip_on_every_message_kind(make):
    """A context injected into a message is what extract() reads back, baggage included."""
    ctx = baggage.set_baggage("tenant", "acme", _remote(0xABC, 0xDEF))
    message = make()
    assert inject(message, context=ctx) is True
    got = extract(message, context=otel_context.Context())
    assert (_span_context(got).trace_id, _span_context(got).span_id) == (0xABC, 0xDEF)
    assert _span_context(got).is_remote
    assert baggage.get_all(got) == {"tenant": "acme"}


def test_inject_uses_the_current_context_by_default():
    """Without a context argument, inject() writes the current span."""
    message = Note()
    token = otel_context.attach(_remote(7, 9))
    try:
        inject(message)
    finally:
        otel_context.detach(token)
    assert message.trace_metadata["traceparent"] == f"00-{7:032x}-{9:016x}-01"


def test_reinject_removes_stale_keys_and_keeps_others():
    """Re-stamping drops the propagator's stale keys but leaves foreign keys alone."""
    message = {"trace_metadata": {"custom": "kept"}}
    inject(message, context=baggage.set_baggage("k", "v", _remote(1, 2)))
    assert set(message["trace_metadata"]) == {"custom", "traceparent", "baggage"}
    inject(message, context=_remote(3, 4))
    assert set(message["trace_metadata"]) == {"custom", "traceparent"}
    inject(message, context=otel_context.Context())
    assert message["trace_metadata"] == {"custom": "kept"}


def test_messages_without_the_field_are_left_alone():
    """inject() answers False and changes nothing when the message cannot carry metadata."""
    assert inject({"text": "x"}, field="headers_absent") is True  # dicts grow the field
    assert inject(object()) is False
    assert inject(Frozen()) is False
    assert inject(Note(), field="text") is False
    assert inject(Note(), field="nope") is False
    frozen = Frozen(trace_metadata={})
    assert inject(frozen, context=_remote(1, 2)) is True
    assert "traceparent" in frozen.trace_metadata


def test_extract_without_metadata_returns_the_base_context():
    """A message with no (or an empty) map yields the base context itself."""
    base = _remote(5, 6)
    for message in (Note(), Event("x"), {}, object(), None, 42):
        assert extract(message, context=base) is base


def test_custom_field():
    """The field option picks another map."""
    message = Note()
    inject(message, field="headers", context=_remote(1, 2))
    assert dict(message.trace_metadata) == {}
    assert _span_context(extract(message, field="headers")).trace_id == 1


def test_limits_on_received_metadata():
    """Too many entries drop the map; an oversized or non-string entry drops only itself."""
    good = f"00-{1:032x}-{2:016x}-01"
    too_many = {f"k{i}": "v" for i in range(33)} | {"traceparent": good}
    assert not _span_context(extract({"trace_metadata": too_many})).is_valid
    oversized = {"traceparent": good + " " * 9000}
    assert not _span_context(extract({"trace_metadata": oversized})).is_valid
    mixed = {"traceparent": good, 1: "x", "y": 2, "baggage": "k=" + "v" * 9000}
    got = extract({"trace_metadata": mixed})
    assert _span_context(got).trace_id == 1
    assert baggage.get_all(got) == {}
    upper = extract({"trace_metadata": {"Traceparent": good}})
    assert _span_context(upper).trace_id == 1


class _HostileMap(dict):
    """A mapping whose every method raises."""

    def __len__(self):
        raise RuntimeError("boom")

    def items(self):
        raise RuntimeError("boom")


class _Raising(TextMapPropagator):
    """A propagator that fails on every call."""

    def extract(self, carrier, context=None, getter=None):
        raise RuntimeError("extract failed")

    def inject(self, carrier, context=None, setter=None):
        raise RuntimeError("inject failed")

    @property
    def fields(self):
        return {"traceparent"}


@pytest.fixture
def raising_propagator():
    """Install a propagator that raises, restoring the previous one afterwards."""
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(_Raising())
    yield
    propagate.set_global_textmap(previous)


def test_unencodable_baggage_keeps_the_traceparent():
    """A baggage value the propagator cannot encode still lets the span context through."""
    message = Note()
    ctx = baggage.set_baggage("bad", "\ud800", _remote(1, 2))
    assert inject(message, context=ctx) is False
    assert _span_context(extract(message)).trace_id == 1


def test_hostile_mapping_is_ignored():
    """A map whose methods raise is ignored, not raised."""
    base = otel_context.Context()
    assert extract({"trace_metadata": _HostileMap()}, context=base) is base


def test_failing_propagator_never_raises(raising_propagator):
    """inject() reports False and extract() returns the base when the propagator raises."""
    message = Note()
    assert inject(message, context=_remote(1, 2)) is False
    message.trace_metadata["traceparent"] = f"00-{1:032x}-{2:016x}-01"
    base = otel_context.Context()
    assert extract(message, context=base) is base


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(["traceparent", "tracestate", "baggage"]), st.text(max_size=40)),
        st.one_of(st.text(max_size=200), st.from_regex(TRACEPARENT, fullmatch=True)),
        max_size=8,
    )
)
def test_extract_never_raises_and_trusts_only_wellformed_traceparents(metadata):
    """Any metadata: extract() never raises, and a span context comes only from a valid header."""
    got = extract({"trace_metadata": metadata}, context=otel_context.Context())
    sc = _span_context(got)
    if sc.is_valid:
        header = metadata["traceparent"]
        assert TRACEPARENT.match(header.strip())
        assert format(sc.trace_id, "032x") == header.strip()[3:35]


@settings(max_examples=100, deadline=None)
@given(
    trace_id=st.integers(1, 2**128 - 1),
    span_id=st.integers(1, 2**64 - 1),
    bags=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_\-]{0,15}", fullmatch=True),
        # Baggage itself strips surrounding whitespace: values without any round-trip.
        # Lone surrogates cannot be encoded at all (see the test above).
        st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")), max_size=30),
        max_size=5,
    ),
)
def test_round_trip_property(trace_id, span_id, bags):
    """Any span context and baggage survive inject() then extract() on a protobuf message."""
    ctx = _remote(trace_id, span_id)
    for key, value in bags.items():
        ctx = baggage.set_baggage(key, value, ctx)
    message = Note()
    assert inject(message, context=ctx)
    got = extract(message, context=otel_context.Context())
    assert (_span_context(got).trace_id, _span_context(got).span_id) == (trace_id, span_id)
    assert baggage.get_all(got) == bags
