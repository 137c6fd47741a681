"""The adaptive sampler decides as the Go clue library's sampler, plus the documented guard.

A small reference model of the original algorithm (goa's ``adaptiveSampler``, which the
Go clue library wraps) and of the burst guard is driven side by side with
:class:`AdaptiveSampler` under a fake clock; Hypothesis chooses the arrival pattern,
the target and the window size. The decision sequences must be identical.

The model keeps what defines the original: the first window starts when the sampler
is built; every decision is sampled until ``sample_size`` decisions have been seen;
the ``sample_size``-th decision re-estimates the rate from the elapsed time and is
itself decided with the fresh estimate. Two documented differences are modelled as
ours: the probability is continuous (the original rounds it to 1/10 000, never below
1/10 000) and the draw is taken from the trace id instead of a random-number call.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.sampling import Decision

from clue.otel import AdaptiveSampler

_SPACE = 1 << 64


class Original:
    """goa's adaptive sampler, decision by decision (counter, window start, last rate)."""

    def __init__(self, max_rate: float, sample_size: int, now: float) -> None:
        self.max_rate = max_rate
        self.sample_size = sample_size
        self.start = now
        self.counter = 0
        self.p = 1.0  # samples everything until the first window is complete

    def selects(self, now: float, trace_id: int) -> bool:
        self.counter += 1
        if self.counter == self.sample_size:  # this decision uses the fresh estimate
            self.counter = 0
            elapsed = now - self.start
            self.p = min(1.0, self.max_rate / (self.sample_size / elapsed)) if elapsed > 0 else 0.0
            self.start = now
        bound = _SPACE if self.p >= 1 else int(self.p * _SPACE)
        return (trace_id & (_SPACE - 1)) < bound


class Guard:
    """The documented burst guard: max(sample_size, 10) tokens, refilled at 2x the target."""

    def __init__(self, max_rate: float, sample_size: int, now: float) -> None:
        self.capacity = float(max(sample_size, 10))
        self.tokens = self.capacity
        self.refill = 2 * max_rate
        self.last = now

    def take(self, now: float) -> bool:
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.refill)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


_GAPS = st.one_of(
    st.just(0.0),
    st.floats(1e-6, 1e-3),
    st.floats(1e-3, 2.0),
    st.floats(2.0, 120.0),
)


@settings(max_examples=300, deadline=None)
@given(
    max_rate=st.sampled_from([0.5, 1, 2, 10, 100]),
    sample_size=st.integers(1, 20),
    idle=st.floats(0, 30),
    arrivals=st.lists(st.tuples(_GAPS, st.integers(0, 2**128 - 1)), min_size=1, max_size=300),
)
def test_decisions_match_the_original_with_the_guard(
    max_rate: float, sample_size: int, idle: float, arrivals: list[tuple[float, int]]
) -> None:
    """Every decision equals the original's draw and the guard's token, in every window."""
    now = [1000.0]
    sampler = AdaptiveSampler(max_rate, sample_size, clock=lambda: now[0])
    original = Original(max_rate, sample_size, now[0])
    guard = Guard(max_rate, sample_size, now[0])
    now[0] += idle  # the first request may come long after start-up
    for index, (gap, trace_id) in enumerate(arrivals):
        now[0] += gap
        selected = original.selects(now[0], trace_id)
        expected = selected and guard.take(now[0])
        if index < sample_size and selected:
            assert expected, "the guard withheld a sample in the first window"
        result = sampler.should_sample(None, trace_id, "request")
        assert (result.decision is Decision.RECORD_AND_SAMPLE) == expected, index


def test_sample_size_th_decision_uses_the_fresh_estimate() -> None:
    """AdaptiveSampler(1, 2): of two back-to-back decisions, only the first is sampled."""
    now = [50.0]
    sampler = AdaptiveSampler(1, 2, clock=lambda: now[0])
    trace_id = (1 << 127) | (1 << 62)  # low 64 bits: a draw of p = 1/4, not selected below
    first = sampler.should_sample(None, trace_id, "a")
    now[0] = 50.5
    second = sampler.should_sample(None, trace_id, "b")
    assert first.decision is Decision.RECORD_AND_SAMPLE
    assert second.decision is Decision.DROP
    assert sampler.estimated_rate == 4.0  # 2 decisions in 0.5 s: p = 1/4 from then on


@given(sample_size=st.integers(1, 50), max_rate=st.sampled_from([1, 5, 100]))
def test_first_window_samples_sample_size_minus_one(sample_size: int, max_rate: int) -> None:
    """A burst at start-up samples exactly sample_size - 1 traces before the first estimate."""
    sampler = AdaptiveSampler(max_rate, sample_size, clock=lambda: 7.0)
    decisions = [
        sampler.should_sample(None, (i << 70) | 12345, "x").decision
        for i in range(sample_size + 20)
    ]
    sampled = sum(d is Decision.RECORD_AND_SAMPLE for d in decisions)
    assert sampled == sample_size - 1
