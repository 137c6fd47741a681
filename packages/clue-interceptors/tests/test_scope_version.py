"""The per-message spans name the installed release as their instrumentation scope."""

from __future__ import annotations

import importlib.metadata

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clue.interceptors._tracing import StreamTracing


def test_span_scope_version_is_the_installed_distribution_version(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The scope's version follows pyproject.toml's, not a second copy that a release misses."""
    with StreamTracing(tracer_provider=provider).tracer().start_as_current_span("m"):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "clue.interceptors"
    assert span.instrumentation_scope.version == importlib.metadata.version("clue-interceptors")
