"""One ping of one dependency: its span, its outcome, its log line."""

from __future__ import annotations

import threading
import time

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

_logger = structlog.get_logger()
_TRACER_NAME = "clue.health"
SPAN_PREFIX = "health.ping."


class Attempt:
    """The outcome of one ping, decided exactly once.

    The runner calls ``finish`` when the ping returns or raises; the checker calls
    ``give_up`` when the ping's timeout or the check's deadline passes first. Whichever
    comes first decides the status, ends the span and logs a failure; the other is a
    no-op. ``finish`` after the timeout still counts as a failure.
    """

    __slots__ = ("_decided", "_lock", "name", "ok", "resolved", "span", "started", "timeout")

    def __init__(self, name: str, timeout: float, parent: Context) -> None:
        self.name = name
        self.timeout = timeout
        self.started: float | None = None
        self.resolved = False
        self._decided = False
        self.ok = False
        self._lock = threading.Lock()
        self.span = _start_span(name, parent)

    def start(self) -> bool:
        """Mark the ping as running; False when it was already given up on (skip it)."""
        self.started = time.monotonic()
        return not self._decided

    def finish(self, exc: BaseException | None) -> None:
        """Record the ping's own outcome (``None`` when it returned normally)."""
        elapsed = time.monotonic() - (self.started or 0.0)
        if exc is None and elapsed > self.timeout:
            self._resolve(False, f"timed out after {self.timeout:g}s", None)
        elif exc is None:
            self._resolve(True, "", None)
        else:
            self._resolve(False, _describe(exc), exc)

    def give_up(self, reason: str) -> None:
        """Decide NOT OK without waiting for the ping any longer."""
        self._resolve(False, reason, None)

    def _resolve(self, ok: bool, reason: str, exc: BaseException | None) -> None:
        # The lock is held until the span has ended and the failure is logged, so that
        # whoever sees ``resolved`` (the checker, about to answer) sees them done too.
        with self._lock:
            if self._decided:
                return
            self._decided = True
            self.ok = ok
            _end_span(self.span, reason, exc)
            if not ok:
                _log_failure(self.name, reason)
            self.resolved = True


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# Telemetry never breaks a health check: every call into the OTel API is guarded.
def _start_span(name: str, parent: Context) -> Span:
    try:
        tracer = trace.get_tracer(_TRACER_NAME)
        return tracer.start_span(
            SPAN_PREFIX + name,
            context=parent,
            kind=SpanKind.CLIENT,
            attributes={"health.dependency": name},
        )
    except Exception:  # a broken SDK must not fail the ping
        return trace.INVALID_SPAN


def _end_span(span: Span, reason: str, exc: BaseException | None) -> None:
    try:
        if reason:
            if exc is not None:
                span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, reason))
        span.end()
    except Exception:  # a broken SDK must not fail the ping
        return


def _log_failure(name: str, reason: str) -> None:
    try:
        _logger.error("health ping failed", dependency=name, err=reason)
    except Exception:  # a broken logging setup must not fail the ping
        return
