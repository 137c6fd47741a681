"""Global providers that can be re-pointed, so configuring twice replaces, never stacks.

The OpenTelemetry API accepts a global tracer or meter provider only once per
process. clue installs these switchable providers once and points them at the
providers of the latest :func:`configure_opentelemetry` call; the previous
configuration is shut down. Tracers handed out earlier (the usual module-level
``tracer = trace.get_tracer(__name__)``) follow the switch. Meters handed out earlier
keep the instruments of the provider they came from; new ``get_meter`` calls use the
new provider.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter, MeterProvider, NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider, Span, Tracer, TracerProvider
from opentelemetry.util.types import Attributes

__all__ = ["SwitchableMeterProvider", "SwitchableTracerProvider"]


class SwitchableTracerProvider(TracerProvider):
    """A tracer provider delegating to whichever provider it currently points at."""

    def __init__(self) -> None:
        self.delegate: TracerProvider = NoOpTracerProvider()
        self.generation = 0

    def switch(self, delegate: TracerProvider) -> None:
        """Point this provider, and every tracer it handed out, at ``delegate``."""
        self.delegate = delegate
        self.generation += 1

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Tracer:
        return _SwitchableTracer(
            self, (instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        )

    def __getattr__(self, name: str) -> Any:
        # force_flush, add_span_processor, resource, sampler... of the current provider.
        return getattr(self.delegate, name)


class _SwitchableTracer(Tracer):
    __slots__ = ("_args", "_generation", "_provider", "_tracer")

    def __init__(
        self,
        provider: SwitchableTracerProvider,
        args: tuple[str, str | None, str | None, Attributes],
    ) -> None:
        self._provider = provider
        self._args = args
        self._generation = -1
        self._tracer: Tracer = trace.NoOpTracer()

    def _real(self) -> Tracer:
        # Hot path: one integer comparison per span once resolved.
        provider = self._provider
        if self._generation != provider.generation:
            self._tracer = provider.delegate.get_tracer(*self._args)
            self._generation = provider.generation
        return self._tracer

    def start_span(
        self, *args: Any, **kwargs: Any
    ) -> Span:  # same parameters as Tracer.start_span, forwarded
        return self._real().start_span(*args, **kwargs)

    def start_as_current_span(
        self, *args: Any, **kwargs: Any
    ) -> Any:  # the real tracer's context manager (also a decorator)
        return self._real().start_as_current_span(*args, **kwargs)


class SwitchableMeterProvider(MeterProvider):
    """A meter provider whose ``get_meter`` uses the provider it currently points at."""

    def __init__(self) -> None:
        self.delegate: MeterProvider = NoOpMeterProvider()

    def switch(self, delegate: MeterProvider) -> None:
        """Point later ``get_meter`` calls at ``delegate``."""
        self.delegate = delegate

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Meter:
        return self.delegate.get_meter(name, version, schema_url, attributes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.delegate, name)


TRACER_PROVIDER = SwitchableTracerProvider()
METER_PROVIDER = SwitchableMeterProvider()
_installed = False


def install() -> None:
    """Make the switchable providers the API's globals (tried once per process)."""
    global _installed  # noqa: PLW0603 (process-wide, set once)
    if not _installed:
        _installed = True
        trace.set_tracer_provider(TRACER_PROVIDER)
        metrics.set_meter_provider(METER_PROVIDER)
