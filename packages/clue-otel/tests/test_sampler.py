"""The adaptive sampler: rate holding, burst bound, validation, thread safety."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.sampling import Decision, ParentBased

from clue.otel import AdaptiveSampler


def drive(
    sampler: AdaptiveSampler, clock: Any, ids: Any, rate: float, seconds: float
) -> list[tuple[float, bool]]:
    """Make evenly spaced decisions at ``rate`` per second; return (time, sampled) pairs."""
    out = []
    gap = 1.0 / rate
    for _ in range(round(rate * seconds)):
        clock.advance(gap)
        result = sampler.should_sample(None, ids(), "request")
        out.append((clock.now, result.decision is Decision.RECORD_AND_SAMPLE))
    return out


def sampled_between(decisions: list[tuple[float, bool]], start: float, end: float) -> int:
    return sum(1 for t, s in decisions if start < t <= end and s)


def test_description_names_rate_and_size() -> None:
    """The description is Adaptive{maxSamplingRate:N,sampleSize:M}."""
    assert (
        AdaptiveSampler(100, 10).get_description() == "Adaptive{maxSamplingRate:100,sampleSize:10}"
    )
    assert AdaptiveSampler(2.5, 3).get_description() == "Adaptive{maxSamplingRate:2.5,sampleSize:3}"


def test_parent_based_description_embeds_it() -> None:
    """Wrapped in ParentBased, the adaptive description appears as the root sampler."""
    assert (
        "root:Adaptive{maxSamplingRate:2,sampleSize:10}"
        in ParentBased(AdaptiveSampler(2, 10)).get_description()
    )


@pytest.mark.parametrize("rate", [0, -1, -0.5, math.nan, math.inf, "2", None, True])
def test_bad_rate_raises_value_error_naming_it(rate: Any) -> None:
    """An invalid max_sampling_rate raises ValueError naming max_sampling_rate."""
    with pytest.raises(ValueError, match="max_sampling_rate"):
        AdaptiveSampler(rate, 10)


@pytest.mark.parametrize("size", [0, -1, 1.5, "10", None, True])
def test_bad_sample_size_raises_value_error_naming_it(size: Any) -> None:
    """An invalid sample_size raises ValueError naming sample_size."""
    with pytest.raises(ValueError, match="sample_size"):
        AdaptiveSampler(10, size)


def test_non_callable_clock_raises_value_error() -> None:
    """A clock that is not callable is rejected at construction."""
    with pytest.raises(ValueError, match="clock"):
        AdaptiveSampler(10, 10, clock=3.0)  # type: ignore[arg-type]


def test_low_traffic_is_all_sampled(clock: Any, ids: Any) -> None:
    """Below the target rate every trace is sampled."""
    sampler = AdaptiveSampler(100, 10, clock=clock)
    decisions = drive(sampler, clock, ids, rate=10, seconds=10)
    assert all(s for _, s in decisions)


def test_steady_10000_per_second_holds_100_within_10_percent(clock: Any, ids: Any) -> None:
    """A steady 10 000 decisions/s with a target of 100/s samples 100/s ±10 % over the last 10 s."""
    sampler = AdaptiveSampler(100, 10, clock=clock)
    start = clock.now
    decisions = drive(sampler, clock, ids, rate=10_000, seconds=12)
    last_ten = sampled_between(decisions, start + 2, start + 12) / 10
    assert 90 <= last_ten <= 110
    assert sampler.estimated_rate == pytest.approx(10_000, rel=0.01)
    assert sampler.probability == pytest.approx(0.01, rel=0.01)


@pytest.mark.parametrize("sample_size", [10, 100])
def test_step_overshoots_by_at_most_one_window(clock: Any, ids: Any, sample_size: int) -> None:
    """A step from 10/s to 10 000/s samples at most one window more than the target."""
    sampler = AdaptiveSampler(100, sample_size, clock=clock)
    # 30.3 s: the step falls in the middle of a window, the worst case for the estimate.
    drive(sampler, clock, ids, rate=10, seconds=30.3)
    step = clock.now
    decisions = drive(sampler, clock, ids, rate=10_000, seconds=2)
    # The transient: the first three windows' worth of decisions at the new rate. The
    # documented bound over an interval T is one window plus 2 * target * T.
    transient = decisions[: 3 * sample_size]
    extra = sum(s for _, s in transient)
    duration = transient[-1][0] - step
    assert 1 <= extra <= sample_size + 2 * 100 * duration
    # Over the first second the excess over the target is at most one window (plus noise).
    first_second = sampled_between(decisions, step, step + 1)
    assert first_second <= 100 + sample_size + 30
    # And the rate is then held, not starved.
    assert 70 <= sampled_between(decisions, step + 1, step + 2) <= 130


def test_idle_then_burst_is_bounded_the_same_way(clock: Any, ids: Any) -> None:
    """After a long idle period a burst overshoots by at most one window."""
    sampler = AdaptiveSampler(100, 10, clock=clock)
    drive(sampler, clock, ids, rate=50, seconds=5.1)
    clock.advance(600)
    burst_start = clock.now
    decisions = drive(sampler, clock, ids, rate=10_000, seconds=1)
    assert sum(s for _, s in decisions[:30]) <= 10
    assert sampled_between(decisions, burst_start, burst_start + 1) <= 100 + 10 + 30


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(
        st.one_of(st.floats(0, 1e-3), st.floats(0, 0.5), st.just(0.0), st.floats(1, 100)),
        min_size=1,
        max_size=400,
    ),
    rate=st.sampled_from([1, 5, 100]),
    size=st.sampled_from([1, 3, 10, 50]),
    seed=st.integers(0, 2**32),
)
@example(gaps=[0.1] * 25 + [1e-4] * 300, rate=100, size=10, seed=7)  # slow, then a step
def test_no_interval_exceeds_the_burst_bound(
    gaps: list[float], rate: int, size: int, seed: int
) -> None:
    """Whatever the arrivals, any interval T samples at most max(size, 10) + 2*rate*T traces."""
    import random

    rng = random.Random(seed)
    now = [0.0]
    sampler = AdaptiveSampler(rate, size, clock=lambda: now[0])
    times = []
    for gap in gaps:
        now[0] += gap
        if sampler.should_sample(None, rng.getrandbits(128), "r").decision.is_sampled():
            times.append(now[0])
    burst = max(size, 10)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            count = j - i + 1
            assert count <= burst + 2 * rate * (times[j] - start) + 1e-9


def test_sixteen_threads_never_raise_and_respect_the_bound(ids: Any) -> None:
    """16 threads deciding concurrently never raise and stay under the burst bound."""
    sampler = AdaptiveSampler(50, 10)
    errors: list[BaseException] = []
    sampled = [0] * 16
    barrier = threading.Barrier(16)
    trace_ids = [ids() for _ in range(16 * 2000)]

    def work(n: int) -> None:
        try:
            barrier.wait()
            for tid in trace_ids[n * 2000 : (n + 1) * 2000]:
                if sampler.should_sample(None, tid, "r").decision.is_sampled():
                    sampled[n] += 1
        except BaseException as exc:
            errors.append(exc)

    start = time.monotonic()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - start
    assert errors == []
    assert 1 <= sum(sampled) <= 10 + 2 * 50 * elapsed


def test_broken_clock_drops_instead_of_raising(ids: Any) -> None:
    """A clock that raises makes the sampler drop, never raise into the application."""

    def clock() -> float:
        raise RuntimeError("clock broke")

    sampler = AdaptiveSampler(10, 10, clock=clock)
    assert sampler.should_sample(None, ids(), "r").decision is Decision.DROP


def test_frozen_clock_treats_a_window_as_unbounded_rate(ids: Any) -> None:
    """A whole window at one instant is an unbounded rate: only the first window's draws pass."""
    sampler = AdaptiveSampler(10, 10, clock=lambda: 5.0)
    sampled = sum(
        sampler.should_sample(None, ids(), "r").decision.is_sampled() for _ in range(1000)
    )
    assert sampled == 9
    assert sampler.estimated_rate == math.inf


def test_sampled_result_keeps_attributes(ids: Any) -> None:
    """A sampled decision carries the span's attributes through."""
    sampler = AdaptiveSampler(10, 10)
    result = sampler.should_sample(None, ids(), "r", attributes={"k": "v"})
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert dict(result.attributes) == {"k": "v"}
    assert (sampler.max_sampling_rate, sampler.sample_size) == (10, 10)


class _Stale:
    """A fake clock whose reading by one thread is held back until released.

    ``pause_next()`` makes the next reading by the calling thread take the time, then
    wait (inside the clock call) until ``release()``: that thread decides with a time
    that other threads have moved past, as a thread preempted right after reading the
    real clock does.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.paused = threading.Event()
        self.go = threading.Event()
        self._pause_in: int | None = None

    def pause_next(self) -> None:
        self._pause_in = threading.get_ident()

    def release(self) -> None:
        self.go.set()

    def __call__(self) -> float:
        value = self.now
        if self._pause_in == threading.get_ident():
            self._pause_in = None
            self.paused.set()
            assert self.go.wait(30)
        return value


def test_a_thread_deciding_with_a_stale_time_keeps_the_rate_estimate() -> None:
    """A thread that read the clock before others rolled a window does not zero the probability.

    Below the target every trace is sampled, even when the decision that closes a
    window was numbered after a thread was preempted between its clock reading and
    its decision (its time is older than the window's start).
    """
    clock = _Stale()
    sampler = AdaptiveSampler(100, 10, clock=clock)

    def stale() -> None:
        clock.pause_next()
        sampler.should_sample(None, 1, "request")

    thread = threading.Thread(target=stale)
    thread.start()
    assert clock.paused.wait(30)  # it read t=0; now 19 decisions at 50/s
    decisions = []
    for _ in range(19):
        clock.now += 0.02
        decisions.append(sampler.should_sample(None, 1, "request").decision)
    clock.release()  # decision 20 closes the second window with t=0
    thread.join(30)
    for _ in range(20):
        clock.now += 0.02
        decisions.append(sampler.should_sample(None, 1, "request").decision)
    assert decisions.count(Decision.RECORD_AND_SAMPLE) == len(decisions)
    assert sampler.probability == 1.0


class _PausingId(int):
    """A trace id whose draw waits until released: the thread has read the clock, not yet spent."""

    reached: threading.Event
    go: threading.Event

    def __and__(self, other: int) -> int:
        self.reached.set()
        assert self.go.wait(30)
        return int(self) & other


def test_a_token_spent_with_a_stale_time_refills_nothing_twice() -> None:
    """A thread spending a token with an older time does not hand out the same refill again.

    Over any interval of T seconds at most ``B + 2 * max_sampling_rate * T`` traces are
    sampled, also when a thread was preempted between its clock reading and its token.
    """
    clock = _Stale()
    sampler = AdaptiveSampler(1, 1000, clock=clock)  # B = 1000 tokens, refilled at 2/s
    late = _PausingId(0)
    late.reached, late.go = threading.Event(), threading.Event()
    sampled = 0

    def stale() -> None:
        nonlocal sampled
        if sampler.should_sample(None, late, "request").decision is Decision.RECORD_AND_SAMPLE:
            sampled += 1

    thread = threading.Thread(target=stale)
    thread.start()  # reads t=0, then waits in its draw
    assert late.reached.wait(30)
    results = [sampler.should_sample(None, 0, "request") for _ in range(998)]  # at t=0
    clock.now = 1.0
    results += [sampler.should_sample(None, 0, "request") for _ in range(4)]  # all tokens
    late.go.set()  # spends with t=0
    thread.join(30)
    results += [sampler.should_sample(None, 0, "request") for _ in range(10)]  # still t=1
    sampled += sum(r.decision is Decision.RECORD_AND_SAMPLE for r in results)
    assert sampled <= 1000 + 2 * 1 * 1.0
