"""pytest plugin (entry point ``pytest11``): the ``otlp_receiver`` and ``otel_reset`` fixtures.

pytest loads this module in every session where clue-otel is installed, so it lives
outside ``clue.otel.testing`` and imports nothing heavy at load time: grpc and the
receiver are imported when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from clue.otel.testing._receiver import OTLPReceiver


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A started OTLP receiver (gRPC and HTTP on 127.0.0.1), stopped after the test."""
    from clue.otel.testing._receiver import OTLPReceiver

    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def otel_reset() -> Iterator[None]:
    """Undo ``configure_opentelemetry`` after the test (providers back to no-op)."""
    yield
    from clue.otel._config import reset_opentelemetry

    reset_opentelemetry()
