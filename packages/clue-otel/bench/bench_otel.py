"""clue-otel benchmarks: error-promotion cost per span, and the sampler decision cost.

Run by ``nox -s bench`` (or directly with clue-otel installed). Every figure is the
median of several rounds, measured side by side with its alternatives in this run,
and printed as a ratio. Bars:

- B1: error promotion on a trace that ends well (recorded, then discarded) costs at
  most 1.5x per span what plain ALWAYS_ON costs (which records *and* exports it).
- B2: an adaptive sampler decision costs at most 2x the SDK's TraceIdRatioBased one.
- B3: the decision stays within 2x of its single-thread cost when 4 threads share it.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from clue.otel import AdaptiveSampler, ErrorPromotionProcessor
from clue.otel._promotion import RecordDropped

ROUNDS = 7
TRACES = 3000  # each trace: a root span and two children
DECISIONS = 100_000


class NullExporter(SpanExporter):
    """Accepts and discards: measures the pipeline, not a network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def provider(sampler: Sampler, *, promotion: bool = False) -> TracerProvider:
    tp = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    processor = BatchSpanProcessor(NullExporter())
    tp.add_span_processor(ErrorPromotionProcessor(processor) if promotion else processor)
    return tp


def per_span_ns(tp: TracerProvider) -> float:
    tracer = tp.get_tracer("bench")
    rounds = []
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(TRACES):
            with tracer.start_as_current_span("request"):
                with tracer.start_as_current_span("db"):
                    pass
                with tracer.start_as_current_span("cache"):
                    pass
        rounds.append((time.perf_counter_ns() - start) / (3 * TRACES))
        tp.force_flush()
    tp.shutdown()
    return statistics.median(rounds)


def per_decision_ns(sampler: Sampler, threads: int = 1) -> float:
    ids = [(i * 0x9E3779B97F4A7C15) & ((1 << 128) - 1) for i in range(DECISIONS)]

    def work() -> None:
        should = sampler.should_sample
        for tid in ids:
            should(None, tid, "r")

    rounds = []
    for _ in range(ROUNDS):
        workers = [threading.Thread(target=work) for _ in range(threads)]
        start = time.perf_counter_ns()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        rounds.append((time.perf_counter_ns() - start) / (DECISIONS * threads))
    return statistics.median(rounds)


def bar(name: str, measured: float, limit: float, detail: str) -> bool:
    ok = measured <= limit
    print(f"{name}: {detail} -> ratio {measured:.2f} (bar <= {limit}) {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    always_off = per_span_ns(provider(ParentBased(ALWAYS_OFF)))
    always_on = per_span_ns(provider(ParentBased(ALWAYS_ON)))
    promoted = per_span_ns(provider(RecordDropped(ParentBased(ALWAYS_OFF)), promotion=True))
    print(f"per span: ALWAYS_OFF {always_off:.0f} ns, ALWAYS_ON {always_on:.0f} ns, ")
    print(f"          error promotion (unsampled, discarded) {promoted:.0f} ns")
    print(f"          promotion / ALWAYS_OFF = {promoted / always_off:.2f}x")

    ratio_sampler = TraceIdRatioBased(0.01)
    adaptive = AdaptiveSampler(100, 10)
    always = per_decision_ns(ALWAYS_ON)
    ratio = per_decision_ns(ratio_sampler)
    single = per_decision_ns(adaptive)
    shared = per_decision_ns(AdaptiveSampler(100, 10), threads=4)
    print(f"per decision: ALWAYS_ON {always:.0f} ns, TraceIdRatioBased {ratio:.0f} ns, ")
    print(f"              Adaptive {single:.0f} ns, Adaptive shared by 4 threads {shared:.0f} ns")

    results = [
        bar(
            "B1 promotion vs ALWAYS_ON per span",
            promoted / always_on,
            1.5,
            f"{promoted:.0f} / {always_on:.0f} ns",
        ),
        bar(
            "B2 adaptive vs TraceIdRatioBased",
            single / ratio,
            2.0,
            f"{single:.0f} / {ratio:.0f} ns",
        ),
        bar("B3 adaptive, 4 threads vs 1", shared / single, 2.0, f"{shared:.0f} / {single:.0f} ns"),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
