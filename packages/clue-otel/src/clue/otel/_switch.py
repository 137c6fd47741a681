"""Global providers that can be re-pointed, so configuring twice replaces, never stacks.

The OpenTelemetry API accepts a global tracer, meter or logger provider only once per
process. clue installs these switchable providers once and points them at the
providers of the latest :func:`configure_opentelemetry` call; the previous
configuration is shut down. Tracers, meters and instruments handed out earlier (the
usual module-level ``tracer = trace.get_tracer(__name__)``, ``counter =
meter.create_counter(...)``, ``_logs.get_logger(...)``) follow the switch.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import Logger, LoggerProvider, NoOpLoggerProvider
from opentelemetry._logs._internal import ProxyLogger, ProxyLoggerProvider
from opentelemetry.context import Context
from opentelemetry.metrics import (
    CallbackT,
    Counter,
    Histogram,
    Meter,
    MeterProvider,
    NoOpMeter,
    NoOpMeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
    _Gauge,
)
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.trace import NoOpTracerProvider, Span, Tracer, TracerProvider
from opentelemetry.util.types import Attributes

from clue.otel import _fork

__all__ = ["SwitchableLoggerProvider", "SwitchableMeterProvider", "SwitchableTracerProvider"]


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
    """A meter provider whose meters and instruments follow the provider it points at."""

    def __init__(self) -> None:
        self.delegate: MeterProvider = NoOpMeterProvider()
        self.generation = 0
        self._lock = threading.Lock()
        self._meters: weakref.WeakSet[_SwitchableMeter] = weakref.WeakSet()
        _fork.register(self)

    def after_fork(self) -> None:
        """In a forked child: a new lock (the meters stay, with the same delegate)."""
        self._lock = threading.Lock()

    def switch(self, delegate: MeterProvider) -> None:
        """Point every meter and instrument handed out at ``delegate``.

        Synchronous instruments re-resolve on their next measurement; observable ones
        are registered with the new provider now, so their callbacks keep being read.
        """
        with self._lock:
            self.delegate = delegate
            self.generation += 1
            meters = list(self._meters)
        for meter in meters:
            meter.refresh()

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Meter:
        meter = _SwitchableMeter(self, (name, version, schema_url, attributes))
        with self._lock:
            self._meters.add(meter)
        return meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self.delegate, name)


class _SwitchableMeter(Meter):
    def __init__(
        self,
        provider: SwitchableMeterProvider,
        args: tuple[str, str | None, str | None, Attributes],
    ) -> None:
        super().__init__(args[0], version=args[1], schema_url=args[2])
        self.provider = provider
        self._args = args
        self._lock = threading.RLock()
        self._generation = -1
        self._meter: Meter = NoOpMeter(args[0])
        self._observables: list[tuple[str, tuple[Any, ...]]] = []
        _fork.register(self)

    def after_fork(self) -> None:
        """In a forked child: a new lock."""
        self._lock = threading.RLock()

    def real(self) -> Meter:
        """The current provider's meter (hot path: one comparison once resolved)."""
        if self._generation != self.provider.generation:
            self.refresh()
        return self._meter

    def refresh(self) -> None:
        """Resolve against the current provider and re-register observable instruments."""
        with self._lock:
            generation = self.provider.generation
            if generation == self._generation:
                return
            self._meter = self.provider.delegate.get_meter(*self._args)
            self._generation = generation
            for factory, args in self._observables:
                getattr(self._meter, factory)(*args)

    def create_counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        return _Counter(self, "create_counter", (name, unit, description))

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> UpDownCounter:
        return _UpDownCounter(self, "create_up_down_counter", (name, unit, description))

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Histogram:
        return _Histogram(
            self,
            "create_histogram",
            (name, unit, description),
            {"explicit_bucket_boundaries_advisory": explicit_bucket_boundaries_advisory},
        )

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> _Gauge:
        return _SwitchableGauge(self, "create_gauge", (name, unit, description))

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableCounter:
        args = (name, callbacks, unit, description)
        result: ObservableCounter = self._observable("create_observable_counter", args)
        return result

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableGauge:
        args = (name, callbacks, unit, description)
        result: ObservableGauge = self._observable("create_observable_gauge", args)
        return result

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[CallbackT] | None = None,
        unit: str = "",
        description: str = "",
    ) -> ObservableUpDownCounter:
        args = (name, callbacks, unit, description)
        result: ObservableUpDownCounter = self._observable(
            "create_observable_up_down_counter", args
        )
        return result

    def _observable(self, factory: str, args: tuple[Any, ...]) -> Any:
        # Remembered so that a switch registers the same callbacks with the new provider.
        with self._lock:
            meter = self.real()
            self._observables.append((factory, args))
            return getattr(meter, factory)(*args)


class _Switchable:
    # A synchronous instrument re-created in the current provider after a switch.
    def __init__(
        self,
        meter: _SwitchableMeter,
        factory: str,
        args: tuple[str, str, str],
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._owner = meter
        self._factory = factory
        self._create_args = args
        self._kwargs = kwargs or {}
        self._generation = -1
        self._instrument: Any = None

    def _real(self) -> Any:
        # Hot path: one comparison per measurement once resolved.
        generation = self._owner.provider.generation
        if self._generation != generation:
            meter = self._owner.real()
            self._instrument = getattr(meter, self._factory)(*self._create_args, **self._kwargs)
            self._generation = generation
        return self._instrument


class _Counter(_Switchable, Counter):
    def __init__(self, meter: _SwitchableMeter, factory: str, args: tuple[str, str, str]) -> None:
        _Switchable.__init__(self, meter, factory, args)
        Counter.__init__(self, *args)

    def add(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self._real().add(amount, attributes, context)


class _UpDownCounter(_Switchable, UpDownCounter):
    def __init__(self, meter: _SwitchableMeter, factory: str, args: tuple[str, str, str]) -> None:
        _Switchable.__init__(self, meter, factory, args)
        UpDownCounter.__init__(self, *args)

    def add(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self._real().add(amount, attributes, context)


class _Histogram(_Switchable, Histogram):
    def __init__(
        self,
        meter: _SwitchableMeter,
        factory: str,
        args: tuple[str, str, str],
        kwargs: dict[str, Any],
    ) -> None:
        _Switchable.__init__(self, meter, factory, args, kwargs)
        Histogram.__init__(self, *args, **kwargs)

    def record(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self._real().record(amount, attributes, context)


class _SwitchableGauge(_Switchable, _Gauge):
    def __init__(self, meter: _SwitchableMeter, factory: str, args: tuple[str, str, str]) -> None:
        _Switchable.__init__(self, meter, factory, args)
        _Gauge.__init__(self, *args)

    def set(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        self._real().set(amount, attributes, context)


class SwitchableLoggerProvider(LoggerProvider):
    """A logger provider whose loggers follow the provider it currently points at."""

    def __init__(self) -> None:
        self.delegate: LoggerProvider = NoOpLoggerProvider()
        self.generation = 0

    def switch(self, delegate: LoggerProvider) -> None:
        """Point this provider, and every logger it handed out, at ``delegate``."""
        self.delegate = delegate
        self.generation += 1

    def get_logger(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> Logger:
        return _SwitchableLogger(self, name, version, schema_url, attributes)


class _SwitchableLogger(ProxyLogger):
    # The API's proxy logger (its ``emit`` and ``enabled`` forward to ``_logger``, in
    # every API version), resolved against the switchable provider instead of the global.

    def __init__(
        self,
        provider: SwitchableLoggerProvider,
        name: str,
        version: str | None,
        schema_url: str | None,
        attributes: Attributes,
    ) -> None:
        super().__init__(name, version, schema_url, attributes)
        self._provider = provider
        self._generation = -1
        self._current: Logger = self._noop_logger

    @property
    def _logger(self) -> Logger:
        # Hot path: one integer comparison per record once resolved.
        provider = self._provider
        if self._generation != provider.generation:
            self._current = provider.delegate.get_logger(
                self._name, self._version, self._schema_url, self._attributes
            )
            self._generation = provider.generation
        return self._current

    def emit(self, *args: Any, **kwargs: Any) -> None:
        # The SDK's logger raises on arguments of the wrong type (attributes that are
        # not a mapping, a string context, an exception that is not one, a key whose
        # ``str()`` raises): logging never raises into the application. The error goes
        # to the SDK's diagnostics (``cfg.error_handler``), once per thread at a time so
        # that a handler logging through this logger again cannot loop.
        try:
            super().emit(*args, **kwargs)
        except Exception:
            if getattr(_EMIT_FAILING, "active", False):
                return
            _EMIT_FAILING.active = True
            try:
                _EMIT_LOGGER.exception("a log record could not be emitted")
            except Exception:  # noqa: S110  # a failing report must not raise either
                pass
            finally:
                _EMIT_FAILING.active = False


_EMIT_FAILING = threading.local()
_EMIT_LOGGER = logging.getLogger("opentelemetry.sdk._logs")


TRACER_PROVIDER = SwitchableTracerProvider()
METER_PROVIDER = SwitchableMeterProvider()
LOGGER_PROVIDER = SwitchableLoggerProvider()


def install(logs: bool = False) -> list[str]:
    """Make the switchable providers the API's globals wherever they are not clue's.

    The logger provider is installed only with ``logs`` (a configuration that exports
    logs): without it, the global logger provider may be the application's own, which
    clue leaves alone (and flushes at exit).

    Whether a global is clue's is read from the API, not remembered: after a test
    resets the API's globals (``opentelemetry.test.globals_test.reset_trace_globals``)
    they are installed again. A global set by someone else (``opentelemetry-instrument``,
    another library) is left alone, as the API refuses to replace it.

    Returns:
        The globals that are someone else's, described (``"tracer provider (type)"``).
    """
    # Each global: (clue's, whether unset, how to set it, how to read it, what it is).
    globals_: list[tuple[Any, bool, Any, Any, str]] = []
    tracer = trace.get_tracer_provider()
    globals_.append(
        (
            TRACER_PROVIDER,
            isinstance(tracer, trace.ProxyTracerProvider),  # unset: the API's placeholder
            trace.set_tracer_provider,
            trace.get_tracer_provider,
            _describe("tracer provider", tracer),
        )
    )
    meter = metrics.get_meter_provider()
    globals_.append(
        (
            METER_PROVIDER,
            isinstance(meter, _ProxyMeterProvider),
            metrics.set_meter_provider,
            metrics.get_meter_provider,
            _describe("meter provider", meter),
        )
    )
    if logs:
        logger = _logs.get_logger_provider()
        globals_.append(
            (
                LOGGER_PROVIDER,
                isinstance(logger, ProxyLoggerProvider),
                _logs.set_logger_provider,
                _logs.get_logger_provider,
                _describe("logger provider", logger),
            )
        )
    # Refused as a whole: with one global someone else's, none is installed (the API
    # sets each only once, so one installed here could never be the application's).
    foreign = [what for mine, unset, _, get, what in globals_ if get() is not mine and not unset]
    if foreign:
        return foreign
    for mine, _unset, set_global, get, what in globals_:
        if get() is not mine:
            set_global(mine)
            if get() is not mine:  # set by another thread meanwhile
                foreign.append(what)
    return foreign


def _describe(kind: str, provider: object) -> str:
    cls = type(provider)
    return f"{kind} ({cls.__module__}.{cls.__qualname__})"
