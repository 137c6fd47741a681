"""The adaptive sampler: at most N traces per second, whatever the request rate.

The algorithm is the Go clue library's (goa's adaptive sampler), plus a burst guard;
the README writes it down too:

1. Decisions are grouped in windows of ``sample_size`` decisions; the first window
   starts when the sampler is built. The ``sample_size``-th decision of a window
   re-estimates the request rate as ``sample_size / elapsed`` (monotonic clock), sets
   the sampling probability to ``p = min(1, max_sampling_rate / rate)`` and is itself
   decided with it; the next window starts then. Until the first estimate ``p = 1``:
   the first ``sample_size - 1`` decisions are all sampled.
2. Each decision is a Bernoulli draw of probability ``p``, taken from the trace id's
   low 64 bits (random by construction, like the SDK's ``TraceIdRatioBased``), so it
   costs no random-number call.
3. A burst guard bounds what a stale estimate can cost: a token bucket holding at most
   ``B = max(sample_size, 10)`` tokens, refilled at ``2 * max_sampling_rate`` tokens per second. A
   trace the draw selects is sampled only if a token is left. In steady state the
   bucket is almost always full (it refills twice as fast as the draws consume), so it
   does not bias the rate; after a step or an idle period it caps the overshoot at one
   window: over any interval of ``T`` seconds at most ``B + 2 * max_sampling_rate * T``
   traces are sampled. The first window hands out ``sample_size - 1`` samples, fewer
   than ``B``: the guard never withholds one there.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from clue.otel import _fork
from clue.otel._validate import is_positive_number, require

__all__ = ["AdaptiveSampler"]

# The low 64 bits of a trace id are compared with ``p * 2**64``, as the SDK's
# TraceIdRatioBased sampler does.
_ID_SPACE = 1 << 64
_ID_MASK = _ID_SPACE - 1

# The token bucket refills this many times faster than the target rate.
_REFILL_FACTOR = 2.0

# The burst guard holds at least this many tokens: a smaller bucket would starve the
# steady state of tiny windows (a 1-token bucket loses a third of the draws).
_MIN_BURST = 10

_DROP = SamplingResult(Decision.DROP)


class AdaptiveSampler(Sampler):
    """A sampler that targets at most ``max_sampling_rate`` traces per second.

    The request rate is re-estimated every ``sample_size`` decisions and the
    sampling probability adjusted so that, in steady state, the number of sampled
    traces per second stays at ``max_sampling_rate`` (or at the request rate when it
    is lower). A burst guard caps the overshoot after a sudden spike at one window
    (``max(sample_size, 10)`` traces). The sampler is thread-safe and never raises.

    It decides for root spans; wrap it in ``ParentBased`` (as :func:`new_config`
    does) so that child spans follow their parent's decision.

    Args:
        max_sampling_rate: Target maximum of sampled traces per second (> 0).
        sample_size: Number of decisions between two estimates of the request
            rate (a positive integer).
        clock: Monotonic clock in seconds; injectable for tests.

    Raises:
        ValueError: If ``max_sampling_rate`` is not a positive finite number or
            ``sample_size`` is not a positive integer.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.sampling import ParentBased
        >>> sampler = AdaptiveSampler(max_sampling_rate=100, sample_size=10)
        >>> sampler.get_description()
        'Adaptive{maxSamplingRate:100,sampleSize:10}'
        >>> provider = TracerProvider(sampler=ParentBased(sampler))

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        max_sampling_rate: float,
        sample_size: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        require(
            is_positive_number(max_sampling_rate),
            "max_sampling_rate",
            "a positive number",
            max_sampling_rate,
        )
        require(
            isinstance(sample_size, int) and not isinstance(sample_size, bool) and sample_size > 0,
            "sample_size",
            "a positive integer",
            sample_size,
        )
        require(callable(clock), "clock", "a callable returning seconds", clock)
        self._max_rate = max_sampling_rate
        self._sample_size = sample_size
        self._clock = clock
        self._description = (
            f"Adaptive{{maxSamplingRate:{max_sampling_rate},sampleSize:{sample_size}}}"
        )
        self._capacity = float(max(sample_size, _MIN_BURST))
        self._refill = _REFILL_FACTOR * max_sampling_rate
        self._start()
        _fork.register(self)

    def after_fork(self) -> None:
        """In a forked child: a new lock, and a fresh start (the parent's estimate is its own)."""
        self._start()

    def _start(self) -> None:
        try:  # the first window starts now, as the original's does
            start: float | None = self._clock()
        except Exception:  # a broken clock makes every decision drop (should_sample)
            start = None
        self._lock = threading.Lock()
        # Window state. Decisions are numbered by an itertools counter (``next()`` on it
        # is atomic under the GIL), so the common decision takes no lock: the lock is
        # taken only to roll a window over and to spend a token, both rare. A lock on
        # every decision made threads sharing the sampler convoy behind it (5x slower
        # with 4 threads on 2 cores).
        self._seq = itertools.count()
        self._last_roll = -1  # number of the decision that closed the previous window
        self._next_roll = self._sample_size - 1  # number of the decision closing this one
        self._window_start = start
        self._rate = 0.0
        self._bound = _ID_SPACE  # p * 2**64; p = 1 until the first estimate
        # Burst guard (token bucket), full at the start.
        self._tokens = self._capacity
        self._last_refill = start

    @property
    def max_sampling_rate(self) -> float:
        """The target maximum of sampled traces per second."""
        return self._max_rate

    @property
    def sample_size(self) -> int:
        """The number of decisions between two estimates of the request rate."""
        return self._sample_size

    @property
    def estimated_rate(self) -> float:
        """The request rate (decisions per second) measured over the last window; 0 before."""
        return self._rate

    @property
    def probability(self) -> float:
        """The sampling probability currently applied."""
        return self._bound / _ID_SPACE

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
        """Decide whether a new trace is sampled (see the class docstring)."""
        # Hot path: one clock read, one atomic count, one comparison; a lock only when
        # the window rolls over or the draw selects the trace.
        try:
            now = self._clock()
            n = next(self._seq)
            # Roll over without waiting: if another thread holds the lock, it is rolling
            # (or spending a token) and a later decision retries, as n stays past the mark.
            if n >= self._next_roll and self._lock.acquire(blocking=False):
                try:
                    self._roll(now, n)
                finally:
                    self._lock.release()
            if (trace_id & _ID_MASK) >= self._bound:
                return _DROP
            with self._lock:
                sampled = self._take_token(now)
        except Exception:  # a broken injected clock must not break the application
            return _DROP
        if not sampled:
            return _DROP
        return SamplingResult(
            Decision.RECORD_AND_SAMPLE, attributes, parent_trace_state(parent_context)
        )

    def get_description(self) -> str:
        """``Adaptive{maxSamplingRate:N,sampleSize:M}``."""
        return self._description

    def _roll(self, now: float, n: int) -> None:
        # Called with the lock held, for decision number ``n`` (the window's last).
        if n < self._next_roll:  # already rolled by another thread
            return
        start = self._window_start
        if start is None:  # the clock failed at construction: start the window now
            self._window_start = self._last_refill = now
            return
        elapsed = now - start
        if elapsed < 0:
            # A time read before the window started (the thread was preempted between
            # its clock reading and here): it says nothing about this window. A later
            # decision rolls it, as n stays past the mark.
            return
        if elapsed > 0:
            self._rate = (n - self._last_roll) / elapsed
            p = self._max_rate / self._rate
            self._bound = _ID_SPACE if p >= 1 else int(p * _ID_SPACE)
        else:  # a whole window at one instant: the rate is unbounded
            self._rate = math.inf
            self._bound = 0
        self._window_start = now
        self._last_roll = n
        self._next_roll = n + self._sample_size

    def _take_token(self, now: float) -> bool:
        # Called with the lock held, for a trace the draw selected.
        last = self._last_refill
        if last is not None and now > last:
            self._tokens = min(self._capacity, self._tokens + (now - last) * self._refill)
        # An older time (a thread preempted after reading the clock) must not move the
        # refill mark back: the same interval would be refilled twice.
        self._last_refill = now if last is None else max(last, now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def parent_trace_state(parent_context: Context | None) -> TraceState | None:
    """The parent span's trace state, which a recorded span carries on (as the SDK's samplers)."""
    parent = get_current_span(parent_context).get_span_context()
    return parent.trace_state if parent.is_valid else None
