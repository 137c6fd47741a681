"""Per-message cost of clue.interceptors against OpenTelemetry's propagator alone.

Stamping and reading a message is the propagator's work plus clue's (finding the
field, validating untrusted input, clearing stale keys). The bars: clue at most
doubles the bare propagator's cost on each side. Medians of several rounds, measured
side by side in one run; prints each ratio with PASS/FAIL and exits non-zero on a FAIL.
"""

from __future__ import annotations

import statistics
import sys
import timeit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from clue.interceptors import extract, inject

NUMBER = 5_000
ROUNDS = 21
BAR = 2.0


def _medians_us(ours, bare) -> tuple[float, float]:
    # Rounds alternate between the two so that a busy moment of this shared machine
    # weighs on both sides alike.
    timer_ours, timer_bare = timeit.Timer(ours), timeit.Timer(bare)
    runs_ours, runs_bare = [], []
    for _ in range(ROUNDS):
        runs_ours.append(timer_ours.timeit(NUMBER))
        runs_bare.append(timer_bare.timeit(NUMBER))
    scale = 1e6 / NUMBER
    return statistics.median(runs_ours) * scale, statistics.median(runs_bare) * scale


def main() -> int:
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1)))
    otel_context.attach(trace.set_span_in_context(span))
    propagator = propagate.get_global_textmap()
    message = {"text": "hello", "trace_metadata": {}}
    carrier: dict[str, str] = {}
    propagator.inject(carrier)
    message["trace_metadata"] = dict(carrier)

    inject_us = _medians_us(lambda: inject(message), lambda: propagator.inject({}))
    extract_us = _medians_us(lambda: extract(message), lambda: propagator.extract(carrier))
    rows = [("inject(message)", *inject_us), ("extract(message)", *extract_us)]
    failed = False
    for name, ours, bare in rows:
        ratio = ours / bare
        ok = ratio <= BAR
        failed |= not ok
        print(
            f"{name:<18} {ours:6.2f} us  vs propagator alone {bare:6.2f} us  "
            f"ratio {ratio:4.2f} (bar <= {BAR})  {'PASS' if ok else 'FAIL'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
