"""Per-message debug logs: the ``clue.debug`` baggage mark carried by a stream message.

clue-debug puts ``clue.debug=<deadline>`` (Unix time in milliseconds) in the baggage of
a request an operator asked to debug; the interceptors carry baggage inside each stream
message. A server interceptor built with ``trust_baggage=True`` verifies the mark of
each received message and, when it is valid, the receive helpers handle that message
with debug logs on (through the ``clue.log_control`` entry point that clue-log
registers; this package never imports a logging package). A mark that is not trusted
or not valid is removed from the message's context, so it is not forwarded, unless
``forward_baggage_mark=True``. ``mark_is_valid`` is kept identical to clue-debug's.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import baggage
from opentelemetry import context as otel_context

__all__ = [
    "MARK_KEY",
    "check_seconds",
    "enter_debug",
    "keep_base_mark",
    "mark_is_valid",
    "screen",
]

MARK_KEY = "clue.debug"
MAX_MARK_LENGTH = 16
MAX_MARK_SECONDS = 3600.0
_DEBUG = otel_context.create_key("clue.interceptors.debug_message")
_ENTRY_POINT_GROUP = "clue.log_control"


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


def screen(
    ctx: otel_context.Context, *, trust: bool, max_seconds: float, forward: bool
) -> otel_context.Context:
    """A received message's context, its mark verified: kept and flagged, or removed."""
    try:
        mark = baggage.get_baggage(MARK_KEY, context=ctx)
        if mark is None:
            return ctx
        if trust and mark_is_valid(mark, time.time(), max_seconds):
            return otel_context.set_value(_DEBUG, True, ctx)
        if forward:
            return ctx
        return baggage.remove_baggage(MARK_KEY, context=ctx)
    except Exception:  # untrusted input: the message keeps the context it had
        return ctx


def keep_base_mark(ctx: otel_context.Context, base: otel_context.Context) -> otel_context.Context:
    """``ctx`` with ``base``'s mark (or none) instead of a mark nobody verified.

    For a message read outside a trusting interceptor: whatever mark it carried is
    untrusted and must not be forwarded, while the mark the receiver's own request was
    already running with (verified by clue-debug, or set by its trigger) stays.
    """
    try:
        before = baggage.get_baggage(MARK_KEY, context=base)
        if baggage.get_baggage(MARK_KEY, context=ctx) == before:
            return ctx
        if before is None:
            return baggage.remove_baggage(MARK_KEY, context=ctx)
        return baggage.set_baggage(MARK_KEY, before, context=ctx)
    except Exception:  # untrusted input: never forward what could not be checked
        return base


def enter_debug(ctx: otel_context.Context) -> Callable[[], None] | None:
    """Debug logs on for the message ``ctx`` belongs to; returns how to end it."""
    if otel_context.get_value(_DEBUG, ctx) is not True:
        return None
    try:
        stack = contextlib.ExitStack()
        stack.enter_context(_control().debug_scope())
    except Exception:  # the logging side must never break the stream
        return None

    def end() -> None:
        with contextlib.suppress(Exception):
            stack.close()

    return end


class _NoControl:
    def debug_scope(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


_lock = threading.Lock()
_found: Any = None


def _control() -> Any:
    # The log control clue-log registers, loaded lazily, once; none: debug is a no-op.
    global _found  # noqa: PLW0603 -- loaded lazily, once per process
    if _found is None:
        with _lock:
            if _found is None:
                _found = _load()
    return _found


def _load() -> Any:
    try:
        eps = sorted(
            importlib.metadata.entry_points(group=_ENTRY_POINT_GROUP), key=lambda ep: ep.name
        )
    except Exception:  # broken metadata must not break the stream
        return _NoControl()
    for ep in eps:
        try:
            obj = ep.load()
        except Exception:  # noqa: S112 -- a broken plugin is skipped
            continue
        if callable(getattr(obj, "debug_scope", None)):
            return obj
    return _NoControl()
