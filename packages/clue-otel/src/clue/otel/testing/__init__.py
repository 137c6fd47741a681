"""Test helpers for OpenTelemetry: a real OTLP receiver and a configuration reset.

Example:
    >>> from clue.otel.testing import OTLPReceiver
    >>> with OTLPReceiver() as rx:
    ...     rx.grpc_endpoint.startswith("http://127.0.0.1:")
    True

The pytest plugin shipped with clue-otel provides the fixtures ``otlp_receiver`` (a
started :class:`OTLPReceiver`, stopped after the test) and ``otel_reset`` (undoes
``configure_opentelemetry`` after the test).
"""

from __future__ import annotations

from clue.otel._config import reset_opentelemetry
from clue.otel.testing._model import (
    AttributeValue,
    ReceivedEvent,
    ReceivedLink,
    ReceivedLogRecord,
    ReceivedMetric,
    ReceivedPoint,
    ReceivedSpan,
    Transport,
)
from clue.otel.testing._receiver import ExportRequest, OTLPReceiver, Signal

__all__ = [
    "AttributeValue",
    "ExportRequest",
    "OTLPReceiver",
    "ReceivedEvent",
    "ReceivedLink",
    "ReceivedLogRecord",
    "ReceivedMetric",
    "ReceivedPoint",
    "ReceivedSpan",
    "Signal",
    "Transport",
    "reset_opentelemetry",
]
