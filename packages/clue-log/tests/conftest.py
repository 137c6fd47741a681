"""Shared fixtures: every test starts from a fresh clue and structlog configuration."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from clue import log
from clue.log.testing import clue_logs, reset

__all__ = ["clue_logs"]


@pytest.fixture(autouse=True)
def _fresh_clue() -> Iterator[None]:
    reset()
    yield
    reset()


class JsonOut(io.StringIO):
    """An output stream whose lines parse as JSON documents."""

    def docs(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]

    def msgs(self) -> list[object]:
        return [d.get("msg") for d in self.docs()]


@pytest.fixture
def out() -> JsonOut:
    """clue configured to write JSON lines into memory."""
    stream = JsonOut()
    log.configure(output=stream, format=log.format_json)
    return stream


@pytest.fixture
def sampled_tracer() -> trace.Tracer:
    return TracerProvider(sampler=ALWAYS_ON).get_tracer("test")


@pytest.fixture
def unsampled_tracer() -> trace.Tracer:
    return TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
