"""Error promotion's bookkeeping against a plain model, under any interleaving of spans.

A Hypothesis state machine starts and ends recorded spans of several unsampled traces at
once (roots, entries under a remote parent that share a trace, children of recording and
of ended parents), some in error, with small memory caps, and checks after every step that
the processor exported exactly the spans, and counted exactly the traces, that the
README's rules give: a trace is decided when its last open local entry span ends,
exported if any of its spans is in error; spans ending later follow their trace's
decision; past a cap the oldest trace is evicted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from clue.otel import ErrorPromotionProcessor, PromotionStats
from clue.otel._promotion import RecordDropped

MAX_TRACES = 3
MAX_SPANS = 5
# Remote parents' trace ids: few, so that entries of one trace overlap.
REMOTE_TRACES = (0xA1, 0xA2, 0xA3)


@dataclass
class _Trace:
    open_entries: int = 0
    ended: list[int] = field(default_factory=list)
    error: bool = False


class Model:
    """The promotion rules, written plainly."""

    def __init__(self) -> None:
        self.held: dict[int, _Trace] = {}  # insertion order: oldest first
        self.promoted: set[int] = set()
        self.evicted: set[int] = set()
        self.exported: list[int] = []
        self.promoted_traces = 0
        self.discarded_traces = 0
        self.evicted_traces = 0
        self.evicted_spans = 0

    def held_spans(self) -> int:
        return sum(len(t.ended) for t in self.held.values())

    def evict(self) -> None:
        while self.held and (len(self.held) > MAX_TRACES or self.held_spans() > MAX_SPANS):
            trace_id = next(iter(self.held))
            oldest = self.held.pop(trace_id)
            self.evicted.add(trace_id)
            self.evicted_traces += 1
            self.evicted_spans += len(oldest.ended)

    def start_entry(self, trace_id: int) -> None:
        if trace_id not in self.held and trace_id in self.promoted:
            return  # its spans follow the decision
        if trace_id not in self.held:
            self.held[trace_id] = _Trace()
            self.held[trace_id].open_entries += 1
            self.evict()
        else:
            self.held[trace_id].open_entries += 1

    def end(self, trace_id: int, span_id: int, entry: bool, error: bool) -> None:
        held = self.held.get(trace_id)
        if held is None:
            if trace_id in self.promoted:
                self.exported.append(span_id)
            elif trace_id in self.evicted:
                self.evicted_spans += 1
            return
        held.ended.append(span_id)
        held.error = held.error or error
        if entry:
            held.open_entries -= 1
        if held.open_entries <= 0:
            del self.held[trace_id]
            if held.error:
                self.promoted_traces += 1
                self.promoted.add(trace_id)
                self.exported.extend(held.ended)
            else:
                self.discarded_traces += 1
        else:
            self.evict()

    def stats(self) -> PromotionStats:
        return PromotionStats(
            held_traces=len(self.held),
            held_spans=self.held_spans(),
            promoted_traces=self.promoted_traces,
            discarded_traces=self.discarded_traces,
            evicted_traces=self.evicted_traces,
            evicted_spans=self.evicted_spans,
        )


@dataclass
class _Live:
    span: Span
    entry: bool


class PromotionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.exporter = InMemorySpanExporter()
        self.processor = ErrorPromotionProcessor(
            SimpleSpanProcessor(self.exporter), max_traces=MAX_TRACES, max_spans=MAX_SPANS
        )
        self.provider = TracerProvider(
            sampler=RecordDropped(ParentBased(ALWAYS_OFF)), shutdown_on_exit=False
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("machine")
        self.model = Model()
        self.open: list[_Live] = []
        self.ended: list[Span] = []
        self.rng = random.Random(0)

    def teardown(self) -> None:
        self.provider.shutdown()

    def _started(self, span: Span, entry: bool) -> None:
        assert span.is_recording()
        assert not span.get_span_context().trace_flags.sampled
        self.open.append(_Live(span, entry))
        if entry:
            self.model.start_entry(span.get_span_context().trace_id)

    @rule()
    def start_root(self) -> None:
        span = self.tracer.start_span("root", context=Context())
        self._started(span, entry=True)  # type: ignore[arg-type]

    @rule(trace_id=st.sampled_from(REMOTE_TRACES))
    def start_under_remote_parent(self, trace_id: int) -> None:
        remote = SpanContext(
            trace_id, self.rng.getrandbits(64) | 1, is_remote=True, trace_flags=TraceFlags(0)
        )
        parent = set_span_in_context(NonRecordingSpan(remote))
        span = self.tracer.start_span("entry", context=parent)
        self._started(span, entry=True)  # type: ignore[arg-type]

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def start_child(self, data: st.DataObject) -> None:
        parent = data.draw(st.sampled_from(self.open)).span
        span = self.tracer.start_span("child", context=set_span_in_context(parent))
        self._started(span, entry=False)  # type: ignore[arg-type]

    @precondition(lambda self: self.ended)
    @rule(data=st.data())
    def start_child_of_ended_parent(self, data: st.DataObject) -> None:
        """A child of a local parent that no longer records is dropped: nothing is held."""
        parent = data.draw(st.sampled_from(self.ended))
        span = self.tracer.start_span("orphan", context=set_span_in_context(parent))
        assert not span.is_recording()
        span.end()

    @precondition(lambda self: self.open)
    @rule(
        data=st.data(),
        error=st.sampled_from(["none", "status", "exception_event", "other_event"]),
    )
    def end(self, data: st.DataObject, error: str) -> None:
        live = data.draw(st.sampled_from(self.open))
        self.open.remove(live)
        span = live.span
        if error == "status":
            span.set_status(StatusCode.ERROR, "boom")
        elif error == "exception_event":
            span.add_event("exception", {"exception.type": "Boom"})
        elif error == "other_event":
            span.add_event("retry")
        span.end()
        self.ended.append(span)
        ctx = span.get_span_context()
        self.model.end(
            ctx.trace_id, ctx.span_id, live.entry, error in ("status", "exception_event")
        )

    @invariant()
    def same_exports_and_counts(self) -> None:
        exported = self.exporter.get_finished_spans()
        assert [s.context.span_id for s in exported] == self.model.exported  # type: ignore[union-attr]
        assert all(s.context.trace_flags.sampled for s in exported)  # type: ignore[union-attr]
        assert self.processor.stats() == self.model.stats()


PromotionMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
test_promotion_bookkeeping_follows_the_rules = PromotionMachine.TestCase
