"""OpenTelemetry glue: the default buffering switch and the ``span`` key/value function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from clue.log import _keys
from clue.log._render import text_of


def _make_context_get() -> Callable[[], Any]:
    # Hot path: the default buffering switch runs on every buffered call. With the SDK's
    # default contextvars runtime context, read its ContextVar directly; fall back to the
    # public API otherwise. Either way the result is a mapping holding the current span.
    try:
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
        var = getattr(runtime, "_current_context", None)
        if isinstance(runtime, ContextVarsRuntimeContext) and var is not None:
            return var.get  # type: ignore[no-any-return]
    except ImportError:  # pragma: no cover - older API layouts
        pass
    return otel_context.get_current  # pragma: no cover


try:
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - older API layouts
    _SPAN_KEY = "current-span"

#: The key under which the OpenTelemetry API keeps the current span in its Context.
SPAN_KEY: str = _SPAN_KEY

otel_context_get = _make_context_get()


def sampled(span: Any) -> bool:
    """Whether a span object's context has the sampled flag (never raises)."""
    try:
        return bool(span.get_span_context().trace_flags & 1)
    except Exception:  # a foreign span object must not break logging
        return False


def _current_span() -> Any:
    return otel_context_get().get(SPAN_KEY)


def is_tracing() -> bool:
    """Whether the current span is sampled: the default switch that disables buffering.

    Checked on every log call, so a span that becomes current mid-request counts.

    Example:
        >>> from clue import log
        >>> log.is_tracing()
        False

    .. versionadded:: 0.1.0
    """
    span = _current_span()
    return span is not None and sampled(span)


def span() -> list[tuple[str, str]]:
    """Key/value function adding ``trace_id`` and ``span_id`` of the current span.

    Use it in ``configure(funcs=[log.span])``; it runs at call time, so buffered entries
    carry the span that was current when they were logged.

    Example:
        >>> from clue import log
        >>> log.span()  # no span is current here
        []

    .. versionadded:: 0.1.0
    """
    current = _current_span()
    if current is None:
        return []
    try:
        sc = current.get_span_context()
        if not sc.is_valid:
            return []
        return [
            (_keys.TRACE_ID_KEY, format(sc.trace_id, "032x")),
            (_keys.SPAN_ID_KEY, format(sc.span_id, "016x")),
        ]
    except Exception:  # a foreign span object must not break logging
        return []


def record_error(err: object, message: str | None) -> None:
    """Add an ``exception`` event to the current recording span (never raises).

    This is the thin protocol to the tracing side: an error logged in a request marks its
    trace, which clue-otel's error promotion uses to export otherwise-dropped traces.
    """
    current = _current_span()
    if current is None:
        return
    try:
        if not current.is_recording():
            return
        if isinstance(err, BaseException):
            current.record_exception(err)
        else:
            text = text_of(err) if err is not None else (message or "error")
            current.add_event(
                "exception", {"exception.type": "clue.log.error", "exception.message": text}
            )
    except Exception:  # noqa: S110 - telemetry never raises into the app
        pass
