"""The context of the last received message, for code that does not iterate pairs.

Receiving streams (the interceptors' wrappers) call :func:`record` for each message.
Two consumers read it: the receive helpers (``iter_with_context``), which check that
the recorded message is the one they just got, and the seed's pair
:func:`setup_trace_stream_recv_context` / :func:`get_trace_stream_recv_context`.
The latter is a holder object shared by reference, so a message received in a copy
of the context (a read run in a task of its own) is still seen.
"""

from __future__ import annotations

import contextvars

from opentelemetry import context as otel_context

__all__ = [
    "get_trace_stream_recv_context",
    "last_received",
    "note",
    "record",
    "setup_trace_stream_recv_context",
]


class _Slot:
    # Filled by record() with the context of each received message.
    __slots__ = ("context",)

    def __init__(self) -> None:
        self.context: otel_context.Context | None = None


_SLOT: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar(
    "clue.interceptors.recv_slot", default=None
)
_LAST: contextvars.ContextVar[tuple[object, otel_context.Context] | None] = contextvars.ContextVar(
    "clue.interceptors.last_received", default=None
)


def setup_trace_stream_recv_context() -> None:
    """Prepare the current context to receive the trace context of stream messages.

    Call it before receiving from an intercepted stream (once per stream, or before
    each receive); afterwards :func:`get_trace_stream_recv_context` returns the
    context carried by the last message received here.

    Example:
        >>> setup_trace_stream_recv_context()
        >>> get_trace_stream_recv_context() is otel_context.get_current()
        True

    .. versionadded:: 0.1.0
    """
    _SLOT.set(_Slot())


def get_trace_stream_recv_context() -> otel_context.Context:
    """The context carried by the last message received since the setup.

    Returns:
        The context extracted from the last message an intercepted stream received
        after :func:`setup_trace_stream_recv_context` in this context (the stream's own
        context when that message's metadata was missing or malformed), or the current
        context when nothing was received since the setup.

    .. versionadded:: 0.1.0
    """
    slot = _SLOT.get()
    if slot is None or slot.context is None:
        return otel_context.get_current()
    return slot.context


def record(message: object, ctx: otel_context.Context) -> None:
    """Remember the context of a message just received."""
    _LAST.set((message, ctx))
    slot = _SLOT.get()
    if slot is not None:
        slot.context = ctx


def note(ctx: otel_context.Context) -> None:
    """Remember the context of a message a receive helper read itself."""
    slot = _SLOT.get()
    if slot is not None:
        slot.context = ctx


def last_received(message: object) -> otel_context.Context | None:
    """The recorded context of ``message`` if it is the last one recorded here."""
    last = _LAST.get()
    if last is None or last[0] is not message:
        return None
    _LAST.set(None)
    return last[1]
