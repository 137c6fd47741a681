"""Error promotion: export the unsampled traces that end in error.

How it composes with sampling (see the README for the full picture):

- The sampler is wrapped (:class:`RecordDropped`) so that a trace it drops is still
  *recorded* (``RECORD_ONLY``, with the start attributes and the parent's trace state a
  sampled span would have): its spans collect attributes, events and status, but the
  sampled flag stays off, so nothing downstream samples it because of us
  (``traceparent`` carries ``-00``) and clue-log keeps buffering.
- Roots, spans under a remote parent and children of a recording, unsampled local
  parent are recorded; children of a non-recording local parent are dropped as usual.
- :class:`ErrorPromotionProcessor` holds the ended spans of each unsampled trace in
  memory. When the trace's last open local entry span (a root, or a span with a
  remote parent) ends, the trace is exported if any of its spans has an ERROR status
  or an ``exception`` event, and discarded otherwise.
- Memory is bounded by a cap on held traces and on held spans; past it the oldest
  trace is dropped and counted.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.trace.status import StatusCode
from opentelemetry.util.types import Attributes

from clue.otel import _fork
from clue.otel._validate import require

__all__ = ["ErrorPromotionProcessor", "PromotionStats"]

_logger = structlog.get_logger("clue.otel")

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)

# How many recently promoted (and evicted) trace ids are remembered, so that spans
# ending after their trace's entry span (fire-and-forget work) are exported too (and
# the spans of an evicted trace that end after its eviction are counted with it).
_PROMOTED_MEMORY = 1024


class RecordDropped(Sampler):
    """Sampler wrapper: what ``inner`` drops is recorded, unsampled, where it can be promoted.

    A span ``inner`` drops is recorded (``RECORD_ONLY``) when it is a root, has a
    remote parent, or has a recording local parent; it keeps the attributes given at
    its start and its parent's trace state, exactly as a sampled span would. Children
    of a non-recording local parent are dropped as ``inner`` said.
    """

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is not Decision.DROP:
            return result
        parent = get_current_span(parent_context)
        context = parent.get_span_context()
        if context.is_valid and not context.is_remote and not parent.is_recording():
            return result
        return SamplingResult(
            Decision.RECORD_ONLY,
            attributes,
            context.trace_state if context.is_valid else None,
        )

    def get_description(self) -> str:
        return f"RecordDropped{{{self._inner.get_description()}}}"


@dataclass(frozen=True)
class PromotionStats:
    """Counters of an :class:`ErrorPromotionProcessor`.

    Attributes:
        held_traces: Unsampled traces currently held in memory.
        held_spans: Ended spans currently held in memory.
        promoted_traces: Traces exported because they ended in error.
        discarded_traces: Traces that ended without error and were discarded.
        evicted_traces: Traces dropped unfinished to respect the memory caps.
        evicted_spans: Spans dropped with them, including those that end after
            their trace was evicted.

    .. versionadded:: 0.1.0
    """

    held_traces: int
    held_spans: int
    promoted_traces: int
    discarded_traces: int
    evicted_traces: int
    evicted_spans: int


class _Held:
    # One unsampled trace being recorded: made at its first entry span's start.
    __slots__ = ("error", "open_entries", "spans")

    def __init__(self) -> None:
        self.open_entries = 1
        self.spans: list[ReadableSpan] = []
        self.error = False


class ErrorPromotionProcessor(SpanProcessor):
    """A span processor that exports sampled spans and promotes unsampled traces in error.

    Sampled spans go straight to ``delegate`` (usually a ``BatchSpanProcessor``).
    Spans of unsampled, recorded traces are held until the trace's local entry spans
    have ended; the trace is then handed to ``delegate`` (with the sampled flag set on
    the exported copies) if it ended in error, or forgotten.

    Args:
        delegate: The processor that exports.
        max_traces: Cap on unsampled traces held at once.
        max_spans: Cap on ended spans held at once.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, delegate: SpanProcessor, *, max_traces: int = 1024, max_spans: int = 16384
    ) -> None:
        require(max_traces > 0, "max_traces", "a positive integer", max_traces)
        require(max_spans > 0, "max_spans", "a positive integer", max_spans)
        self._delegate = delegate
        self._max_traces = max_traces
        self._max_spans = max_spans
        self._start()
        _fork.register(self)

    def after_fork(self) -> None:
        """In a forked child: a new lock, and nothing held (the parent's traces are its own)."""
        self._start()

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._held: OrderedDict[int, _Held] = OrderedDict()
        self._held_spans = 0
        self._promoted: OrderedDict[int, None] = OrderedDict()
        self._evicted: OrderedDict[int, None] = OrderedDict()
        self._promoted_traces = 0
        self._discarded_traces = 0
        self._evicted_traces = 0
        self._evicted_spans = 0

    def stats(self) -> PromotionStats:
        """A snapshot of the processor's counters."""
        with self._lock:
            return PromotionStats(
                held_traces=len(self._held),
                held_spans=self._held_spans,
                promoted_traces=self._promoted_traces,
                discarded_traces=self._discarded_traces,
                evicted_traces=self._evicted_traces,
                evicted_spans=self._evicted_spans,
            )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        # Hot path (every recorded span): only a local entry span of an unsampled trace
        # takes the lock.
        self._delegate.on_start(span, parent_context)
        ctx = span.context
        parent = span.parent
        if ctx.trace_flags.sampled or (parent is not None and not parent.is_remote):
            return
        trace_id = ctx.trace_id
        with self._lock:
            held = self._held.get(trace_id)
            if held is None:
                if trace_id in self._promoted:
                    # A later entry of a promoted trace (a retried call, a second call under
                    # one remote parent): its spans follow the decision, exported as they end.
                    return
                self._held[trace_id] = _Held()
                if len(self._held) > self._max_traces:
                    self._evict()
            else:
                held.open_entries += 1

    def on_end(self, span: ReadableSpan) -> None:
        # Hot path (every recorded span). The common unsampled trace is one entry span
        # (a request's server span) that ends alone: it is decided at once, never held.
        ctx = span.context
        if ctx is None:
            return
        if ctx.trace_flags.sampled:
            self._delegate.on_end(span)
            return
        trace_id = ctx.trace_id
        parent = span.parent
        entry = parent is None or parent.is_remote
        error = _in_error(span)
        to_export: list[ReadableSpan] = []
        with self._lock:
            held = self._held.get(trace_id)
            if held is None:
                # The trace was decided (or evicted) before this span ended.
                if trace_id in self._promoted:
                    to_export.append(span)
                elif trace_id in self._evicted:
                    self._evicted_spans += 1
            elif entry and held.open_entries == 1 and not held.spans:
                # The trace's only span: decided without holding it.
                del self._held[trace_id]
                if error or held.error:
                    to_export.append(span)
                    self._promote(trace_id)
                else:
                    self._discarded_traces += 1
            else:
                held.spans.append(span)
                self._held_spans += 1
                held.error = held.error or error
                if entry:
                    held.open_entries -= 1
                if held.open_entries <= 0:
                    del self._held[trace_id]
                    self._held_spans -= len(held.spans)
                    if held.error:
                        self._promote(trace_id)
                        to_export = held.spans
                    else:
                        self._discarded_traces += 1
                elif self._held_spans > self._max_spans:
                    self._evict()
        for held_span in to_export:
            self._delegate.on_end(_as_sampled(held_span))

    def _promote(self, trace_id: int) -> None:
        # Called with the lock held: the trace is exported, and remembered for late spans.
        self._promoted_traces += 1
        self._promoted[trace_id] = None
        if len(self._promoted) > _PROMOTED_MEMORY:
            self._promoted.popitem(last=False)

    def shutdown(self) -> None:
        # A trace whose entry spans are still open is decided on the spans it has ended: those
        # of a trace in error are exported, as a sampled trace's ended spans are at shutdown.
        to_export: list[ReadableSpan] = []
        with self._lock:
            for trace_id, held in self._held.items():
                if held.error:
                    self._promote(trace_id)
                    to_export.extend(held.spans)
            self._held.clear()
            self._held_spans = 0
        for held_span in to_export:
            self._delegate.on_end(_as_sampled(held_span))
        self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._delegate.force_flush(timeout_millis)

    def _evict(self) -> None:
        # Called with the lock held: drop the oldest traces past the caps.
        evicted = 0
        while self._held and (
            len(self._held) > self._max_traces or self._held_spans > self._max_spans
        ):
            trace_id, oldest = self._held.popitem(last=False)
            self._held_spans -= len(oldest.spans)
            self._evicted[trace_id] = None
            if len(self._evicted) > _PROMOTED_MEMORY:
                self._evicted.popitem(last=False)
            self._evicted_traces += 1
            self._evicted_spans += len(oldest.spans)
            evicted += 1
        if evicted and self._evicted_traces == evicted:
            # First eviction of the process: say it once, the counters tell the rest.
            _logger.warning(
                "otel.error_promotion.evicted",
                max_traces=self._max_traces,
                max_spans=self._max_spans,
            )


def _is_entry(parent: SpanContext | None) -> bool:
    # A local entry span: a root, or the first span of this process under a remote parent.
    return parent is None or parent.is_remote


def _in_error(span: ReadableSpan) -> bool:
    # Hot path (every unsampled span's end).
    if span.status.status_code is StatusCode.ERROR:
        return True
    # The SDK's span keeps its events in ``_events`` (a bounded list whose iteration takes
    # its lock and copies it; ``events`` copies that again): most spans have none.
    events = getattr(span, "_events", None)
    if events is None:
        events = span.events
    if not events:
        return False
    return any(event.name == "exception" for event in events)


def _as_sampled(span: ReadableSpan) -> ReadableSpan:
    # The exported copy carries the sampled flag (exporters and batch processors skip
    # unsampled spans); the live span and its propagated context keep it off. A shallow
    # copy keeps everything else exactly as recorded, down to the bounded collections
    # that count what the span limits dropped (the public properties hand out plain
    # views without those counts).
    ctx = span.context
    if ctx is None:  # never held: on_end returns early for context-less spans
        return span
    sampled = copy.copy(span)
    sampled._context = SpanContext(
        ctx.trace_id, ctx.span_id, ctx.is_remote, _SAMPLED, ctx.trace_state
    )
    return sampled
