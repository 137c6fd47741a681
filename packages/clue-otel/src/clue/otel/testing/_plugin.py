"""pytest plugin (entry point ``pytest11``): the ``otlp_receiver`` and ``otel_reset`` fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from clue.otel._config import reset_opentelemetry
from clue.otel.testing._receiver import OTLPReceiver


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A started OTLP receiver (gRPC and HTTP on 127.0.0.1), stopped after the test."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def otel_reset() -> Iterator[None]:
    """Undo ``configure_opentelemetry`` after the test (providers back to no-op)."""
    yield
    reset_opentelemetry()
