"""Route the OpenTelemetry SDK's own diagnostics into structlog.

The Python SDK reports its problems (an export that failed, a collector that is
unreachable, an invalid attribute) as records of the standard ``logging`` module under
the ``opentelemetry`` logger. :class:`DiagnosticsHandler` takes those records and
writes them through ``structlog.get_logger()``; records at ERROR and above are first
given to the configured error handler, the Python counterpart of Go's
``otel.ErrorHandler``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import structlog

__all__ = ["DiagnosticsHandler", "ErrorHandler", "OpenTelemetryError", "log_error"]

ErrorHandler = Callable[[BaseException], None]
"""Called with each error the OpenTelemetry SDK reports; must not raise."""

_logger = structlog.get_logger("clue.otel")


class OpenTelemetryError(Exception):
    """An error the OpenTelemetry SDK reported as a log record without an exception.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str, logger: str) -> None:
        super().__init__(message)
        self.logger = logger


def log_error(error: BaseException) -> None:
    """The default error handler: write ``error`` through structlog at error severity.

    Example:
        >>> log_error(OpenTelemetryError("collector unreachable", "opentelemetry"))

    .. versionadded:: 0.1.0
    """
    logger = getattr(error, "logger", "opentelemetry")
    _logger.error("otel.error", err=str(error) or type(error).__name__, otel_logger=logger)


class DiagnosticsHandler(logging.Handler):
    """A ``logging`` handler writing the SDK's records through structlog.

    Never raises: a failing error handler or structlog configuration is swallowed
    (and the record dropped), and records emitted while a record is being handled
    on the same thread are dropped to rule out loops.
    """

    def __init__(self, error_handler: ErrorHandler, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.error_handler = error_handler
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            self._emit(record)
        except Exception:  # noqa: S110 (diagnostics must never break the app; nowhere left to report)
            pass
        finally:
            self._local.busy = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (stdlib name)
        """Swallow: the stdlib default prints a traceback to stderr."""

    def _emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            exc = record.exc_info[1] if record.exc_info else None
            if exc is None:
                exc = OpenTelemetryError(record.getMessage(), record.name)
            self.error_handler(exc)
            return
        if record.levelno >= logging.WARNING:
            write = _logger.warning
        elif record.levelno >= logging.INFO:
            write = _logger.info
        else:
            write = _logger.debug
        write(record.getMessage(), otel_logger=record.name)
