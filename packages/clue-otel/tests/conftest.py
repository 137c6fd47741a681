"""Shared fixtures: a fake monotonic clock, captured structlog events, a clean OTel state."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from clue.otel import reset_opentelemetry

pytest_plugins = ["pytester"]


class FakeClock:
    """A settable monotonic clock, in seconds."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RandomIds:
    """Deterministic random 128-bit trace ids."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def __call__(self) -> int:
        return self._rng.getrandbits(128)


class HangingExporter(SpanExporter):
    """A span exporter whose shutdown blocks until released (a stuck collector)."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()

    def export(self, spans: Any) -> SpanExportResult:
        self.release.wait(10)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.wait(10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ids() -> RandomIds:
    return RandomIds(1234)


@pytest.fixture
def hanging_exporter() -> Iterator[HangingExporter]:
    exporter = HangingExporter()
    yield exporter
    exporter.release.set()


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """structlog events emitted during the test."""
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture(autouse=True)
def _clean_otel() -> Iterator[None]:
    yield
    reset_opentelemetry(timeout=2.0)
