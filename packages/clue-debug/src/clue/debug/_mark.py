"""The ``clue.debug`` baggage mark: one request debugged in every service it reaches.

A service whose trigger turned debug on for a request (``propagate_trigger=True``) puts
``clue.debug=<deadline>`` in the request's OpenTelemetry baggage, the deadline being Unix
time in whole milliseconds. The installed propagators carry it on outgoing calls (HTTP
headers, gRPC metadata, clue-interceptors' per-message metadata). A service configured
with ``trust_baggage=True`` turns debug on for a request whose mark is well-formed, not
expired and no further away than its own maximum; every other service drops the mark
from the request's baggage, so a mark it did not verify is never forwarded (unless
``forward_baggage_mark=True``). A mark is untrusted input: anything else is ignored.

opentelemetry-api is optional (extra ``clue-debug[otel]``): without it there is no
baggage, so there is nothing to read, strip or set.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "DEFAULT_MARK_SECONDS",
    "MARK_KEY",
    "MAX_MARK_LENGTH",
    "MAX_MARK_SECONDS",
    "attached",
    "format_mark",
    "mark_is_valid",
    "otel_baggage",
]

MARK_KEY = "clue.debug"
"""The baggage key of the mark."""

DEFAULT_MARK_SECONDS = 60.0
"""How long a mark set by a trigger stays valid, and the longest a receiver accepts."""

MAX_MARK_SECONDS = 3600.0
"""The largest ``mark_seconds`` / ``max_mark_seconds`` a service may configure."""

MAX_MARK_LENGTH = 16
"""A mark longer than this many characters is ignored without being parsed."""


def format_mark(deadline: float) -> str:
    """The mark's value for a deadline given as Unix time in seconds."""
    return str(int(deadline * 1000))


def mark_is_valid(value: object, now: float, max_seconds: float) -> bool:
    """Whether ``value`` is a mark to honour at Unix time ``now`` (seconds).

    Valid: a string of 1 to ``MAX_MARK_LENGTH`` ASCII digits whose deadline (Unix time
    in milliseconds) is after ``now`` and at most ``max_seconds`` after it. Never raises.
    """
    if type(value) is not str or not 0 < len(value) <= MAX_MARK_LENGTH:
        return False
    if not (value.isascii() and value.isdigit()):
        return False
    remaining = int(value) / 1000 - now
    return 0 < remaining <= max_seconds


def check_seconds(option: str, value: object) -> float:
    """Validate a duration option: a number in (0, ``MAX_MARK_SECONDS``]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_MARK_SECONDS
    ):
        msg = f"{option} must be a number of seconds in (0, {MAX_MARK_SECONDS:g}], got {value!r}"
        raise ValueError(msg)
    return float(value)


def otel_baggage() -> Any:
    """``opentelemetry.baggage``, or ``None`` when opentelemetry-api is not installed."""
    try:
        from opentelemetry import baggage
    except ImportError:
        return None
    return baggage


def baggage_probe() -> Callable[[], bool]:
    """A cheap test of whether the current context holds any baggage at all.

    Most requests carry none, so the middleware asks this before reading the mark: one
    context lookup under the key the baggage API keeps its entries at (falling back to
    "maybe" when that private key is not found, which the public read then settles).
    """
    from opentelemetry import baggage  # optional dependency, present when this is called
    from opentelemetry import context as otel_context

    key = getattr(baggage, "_BAGGAGE_KEY", None)
    if key is None:
        return _maybe
    get_current = otel_context.get_current

    def probe() -> bool:
        # Hot path (every request with opentelemetry-api installed).
        try:
            return bool(get_current().get(key))
        except Exception:  # a context that is not a mapping: let the public API decide
            return True

    return probe


def _maybe() -> bool:
    return True


@contextlib.contextmanager
def attached(ctx: Any) -> Iterator[None]:
    """Make the OpenTelemetry context ``ctx`` current for the block (``None``: no change)."""
    if ctx is None:
        yield
        return
    from opentelemetry import context as otel_context

    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a foreign context: nothing to restore
            otel_context.detach(token)


def now() -> float:
    """Wall-clock time: marks cross hosts, so their deadlines are Unix time."""
    return time.time()
