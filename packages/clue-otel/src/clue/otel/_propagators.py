"""The text-map propagator a configuration installs.

The propagators given to :func:`~clue.otel.new_config`, else ``OTEL_PROPAGATORS``, else
W3C trace context + baggage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clue.otel._env import propagator_entry_points, warn_once


def chosen_propagator(
    propagators: TextMapPropagator | Sequence[TextMapPropagator] | None,
) -> TextMapPropagator:
    """The ``propagators`` argument of ``new_config`` as one propagator.

    Raises:
        ValueError: When it is neither a propagator nor a sequence of them.
    """
    if propagators is None:
        return _env_propagator() or default_propagator()
    if isinstance(propagators, TextMapPropagator):
        return propagators
    items = list(propagators) if isinstance(propagators, Sequence) else None
    if items is None or not all(isinstance(p, TextMapPropagator) for p in items):
        msg = f"propagators must be a TextMapPropagator or a list of them, got {propagators!r}"
        raise ValueError(msg)
    return CompositePropagator(items)


def _env_propagator() -> TextMapPropagator | None:
    # OTEL_PROPAGATORS, resolved through the same entry points as the API does; an
    # unknown name makes the whole setting invalid: warned, and the default used.
    raw = os.environ.get("OTEL_PROPAGATORS")
    if raw is None or not raw.strip():
        return None
    points = propagator_entry_points(raw)
    if points is None:
        warn_once("otel.env.invalid", "OTEL_PROPAGATORS", raw, using="tracecontext,baggage")
        return None
    return CompositePropagator([point.load()() for point in points])


def default_propagator() -> TextMapPropagator:
    """W3C trace context + baggage, as the OpenTelemetry API's default."""
    return CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
