"""``Config`` and its installation, process-wide.

:func:`configure_opentelemetry` puts a :class:`Config` in force (providers, propagators,
the SDK's diagnostics routed to structlog, the shutdown at exit) and
:func:`reset_opentelemetry` takes it out; ``_STATE`` is what is in force. The providers
themselves are built by :func:`~clue.otel.new_config` (``_build``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import propagate
from opentelemetry._logs import LoggerProvider, NoOpLoggerProvider
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import NoOpTracerProvider, TracerProvider

from clue.otel import _fork, _lifecycle, _switch
from clue.otel._bounded import run_all_bounded
from clue.otel._diagnostics import DiagnosticsHandler, ErrorHandler
from clue.otel._outcome import Failures
from clue.otel._promotion import ErrorPromotionProcessor
from clue.otel._propagators import default_propagator
from clue.otel._sampler import AdaptiveSampler
from clue.otel._validate import is_positive_number, require

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider

__all__ = ["Config", "configure_opentelemetry", "reset_opentelemetry"]

_SDK_LOGGER = "opentelemetry"


@dataclass(eq=False)
class Config:
    """The providers and settings built by :func:`new_config`.

    Attributes:
        tracer_provider: The SDK tracer provider, or a no-op one without span exporter.
        meter_provider: The SDK meter provider, or a no-op one without metric exporter.
        propagators: The text-map propagator installed globally.
        error_handler: Called with each error the SDK reports.
        sampler: The adaptive root sampler (None without span exporter).
        error_promotion: The error-promotion processor when enabled, for its
            :meth:`~ErrorPromotionProcessor.stats`.
        logger_provider: The SDK logger provider (a batch log record processor), or
            a no-op one without log exporter.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``logger_provider``.
    """

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    propagators: TextMapPropagator
    error_handler: ErrorHandler
    sampler: AdaptiveSampler | None = None
    error_promotion: ErrorPromotionProcessor | None = None
    logger_provider: LoggerProvider = field(default_factory=NoOpLoggerProvider)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _shutdown_result: bool | None = field(default=None, init=False, repr=False)
    _failures: Failures = field(default_factory=Failures, repr=False)

    def __post_init__(self) -> None:
        _fork.register(self)

    def after_fork(self) -> None:
        """In a forked child: a new lock."""
        self._lock = threading.Lock()

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export what is pending now; True when every signal was exported within ``timeout`` s.

        False when an export failed meanwhile (the collector down or refusing), which
        the SDK's processors only log.
        """
        failed = self._failures.count
        millis = int(timeout * 1000)
        tracer, meter = self.tracer_provider, self.meter_provider
        flushed: list[bool] = []
        steps: dict[str, Callable[[], object]] = {}
        if isinstance(tracer, SdkTracerProvider):
            steps["tracer flush"] = lambda: flushed.append(tracer.force_flush(millis))
        if isinstance(meter, SdkMeterProvider):
            steps["meter flush"] = lambda: flushed.append(meter.force_flush(millis))
        if (logger := _sdk_logger_provider(self.logger_provider)) is not None:
            steps["logger flush"] = lambda: flushed.append(logger.force_flush(millis))
        done = run_all_bounded(steps, timeout) and all(flushed)
        return done and self._failures.count == failed

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush and stop every provider, waiting at most ``timeout`` seconds.

        Never raises: a failure or a timeout is logged through structlog and reported
        by the return value (True when everything stopped in time). Later calls
        return the first outcome at once.
        """
        with self._lock:
            if self._shutdown_result is None:
                failed = self._failures.count
                millis = int(timeout * 1000)
                tracer, meter = self.tracer_provider, self.meter_provider
                steps: dict[str, Callable[[], object]] = {}
                if isinstance(tracer, SdkTracerProvider):

                    def stop_tracer() -> None:
                        tracer.force_flush(millis)
                        tracer.shutdown()

                    steps["tracer provider"] = stop_tracer
                if isinstance(meter, SdkMeterProvider):
                    steps["meter provider"] = lambda: meter.shutdown(millis)
                if (logger := _sdk_logger_provider(self.logger_provider)) is not None:

                    def stop_logger() -> None:
                        logger.force_flush(millis)
                        logger.shutdown()

                    steps["logger provider"] = stop_logger
                done = run_all_bounded(steps, timeout)
                self._shutdown_result = done and self._failures.count == failed
            return self._shutdown_result


def configure_opentelemetry(
    cfg: Config,
    *,
    shutdown_at_exit: bool = True,
    shutdown_timeout: float = 5.0,
    diagnostics_level: int = logging.WARNING,
) -> None:
    """Install ``cfg`` globally: providers, propagators, error handler, diagnostics.

    The SDK's own ``logging`` records (logger ``opentelemetry``, from
    ``diagnostics_level`` up) are written through structlog instead of propagating
    to the root logger; errors go to ``cfg.error_handler``. Calling it again with
    another config replaces the previous one (which is shut down, bounded by
    ``shutdown_timeout``): processors never stack.

    Args:
        cfg: What :func:`new_config` returned.
        shutdown_at_exit: Shut the current config down however the process ends:
            interpreter exit, or SIGTERM however the server handles it (the signal
            keeps its effect; see the README's "Running under servers").
        shutdown_timeout: Seconds that shutdown may take (at exit, or for a replaced
            config).
        diagnostics_level: Lowest level of SDK records routed to structlog.

    Raises:
        ValueError: If ``cfg`` is not a :class:`Config` or a number is invalid.
        RuntimeError: If the API's global tracer or meter provider (or, for a
            configuration exporting logs, its logger provider) was set by someone
            else (``opentelemetry-instrument`` without ``OTEL_PYTHON_CONFIGURATOR=none``,
            another library): OpenTelemetry refuses to replace it, so clue's
            configuration could not take effect. Nothing is changed.

    Example:
        >>> from clue.otel import new_config
        >>> cfg = new_config("orders", "1.2.3")
        >>> configure_opentelemetry(cfg, shutdown_at_exit=False)

    .. versionadded:: 0.1.0
    """
    require(isinstance(cfg, Config), "cfg", "a clue.otel.Config (from new_config)", cfg)
    require(
        is_positive_number(shutdown_timeout),
        "shutdown_timeout",
        "a positive number of seconds",
        shutdown_timeout,
    )
    require(
        isinstance(diagnostics_level, int) and not isinstance(diagnostics_level, bool),
        "diagnostics_level",
        "a logging level (int)",
        diagnostics_level,
    )
    with _STATE.lock:
        foreign = _switch.install(logs=_sdk_logger_provider(cfg.logger_provider) is not None)
        if foreign:
            raise RuntimeError(_refusal(foreign))
        previous = _STATE.current
        _switch.TRACER_PROVIDER.switch(cfg.tracer_provider)
        _switch.METER_PROVIDER.switch(cfg.meter_provider)
        _switch.LOGGER_PROVIDER.switch(cfg.logger_provider)
        propagate.set_global_textmap(cfg.propagators)
        _STATE.route_diagnostics(cfg.error_handler, diagnostics_level)
        _STATE.current = cfg
        _STATE.exit_timeout = shutdown_timeout if shutdown_at_exit else None
        if shutdown_at_exit:
            # At exit, and at SIGTERM however the server handles it (see _lifecycle).
            _lifecycle.install(_shutdown_at_exit, shutdown_timeout, cfg.tracer_provider)
    if previous is not None and previous is not cfg:
        previous.shutdown(shutdown_timeout)


def _refusal(foreign: list[str]) -> str:
    # What configure_opentelemetry raises when the API's globals are someone else's.
    verb = "was" if len(foreign) == 1 else "were"
    return (
        f"configure_opentelemetry: the global {' and the '.join(foreign)} {verb} already"
        " set by someone else (opentelemetry-instrument's SDK configuration, or a library"
        " calling set_tracer_provider/set_meter_provider/set_logger_provider), and"
        " OpenTelemetry refuses to replace it: clue's sampler, error promotion and"
        " exporters would receive nothing."
        " Run the service without opentelemetry-instrument, or keep its instrumentations"
        " and let clue configure the providers: OTEL_PYTHON_CONFIGURATOR=none"
        " opentelemetry-instrument python app.py (no configurator has that name, so the"
        " SDK set-up is skipped)"
    )


def reset_opentelemetry(timeout: float = 1.0) -> None:
    """Undo :func:`configure_opentelemetry`: shut the current config down, restore defaults.

    Meant for tests (``clue.otel.testing`` uses it); the global providers go back to
    no-op, the propagators to W3C trace context + baggage, and the ``opentelemetry``
    logger to what it was.
    """
    with _STATE.lock:
        current, _STATE.current = _STATE.current, None
        _switch.TRACER_PROVIDER.switch(NoOpTracerProvider())
        _switch.METER_PROVIDER.switch(NoOpMeterProvider())
        _switch.LOGGER_PROVIDER.switch(NoOpLoggerProvider())
        propagate.set_global_textmap(default_propagator())
        _STATE.unroute_diagnostics()
    if current is not None:
        current.shutdown(timeout)


class _State:
    # Process-wide configuration state, guarded by ``lock`` (re-created in a forked
    # child: another thread of the parent may have been configuring).
    def __init__(self) -> None:
        self.lock = threading.RLock()
        _fork.register(self)
        self.current: Config | None = None
        self.exit_timeout: float | None = None
        self.handler: DiagnosticsHandler | None = None
        self.saved: tuple[bool, int] | None = None  # the SDK logger's propagate and level

    def after_fork(self) -> None:
        """In a forked child: a new lock."""
        self.lock = threading.RLock()

    def route_diagnostics(self, error_handler: ErrorHandler, level: int) -> None:
        sdk_logger = logging.getLogger(_SDK_LOGGER)
        if self.handler is not None:
            sdk_logger.removeHandler(self.handler)
        if self.saved is None:
            self.saved = (sdk_logger.propagate, sdk_logger.level)
        self.handler = DiagnosticsHandler(error_handler, level)
        sdk_logger.addHandler(self.handler)
        sdk_logger.propagate = False
        sdk_logger.setLevel(level)

    @contextlib.contextmanager
    def routing_while_building(self, error_handler: ErrorHandler) -> Iterator[None]:
        """Route the SDK's records to structlog while ``new_config`` builds, unless routed."""
        with self.lock:
            routed = self.handler is not None
        if routed:
            yield
            return
        handler = DiagnosticsHandler(error_handler, logging.WARNING)
        sdk_logger = logging.getLogger(_SDK_LOGGER)
        propagate_before = sdk_logger.propagate
        sdk_logger.addHandler(handler)
        sdk_logger.propagate = False
        try:
            yield
        finally:
            sdk_logger.removeHandler(handler)
            sdk_logger.propagate = propagate_before

    def unroute_diagnostics(self) -> None:
        sdk_logger = logging.getLogger(_SDK_LOGGER)
        if self.handler is not None:
            sdk_logger.removeHandler(self.handler)
            self.handler = None
        if self.saved is not None:
            sdk_logger.propagate, level = self.saved
            sdk_logger.setLevel(level)
            self.saved = None


_STATE = _State()


def _shutdown_at_exit() -> None:
    with _STATE.lock:
        current, timeout = _STATE.current, _STATE.exit_timeout
    if current is not None and timeout is not None:
        current.shutdown(timeout)


def _sdk_logger_provider(provider: LoggerProvider) -> SdkLoggerProvider | None:
    # ``provider`` when it is the SDK's (a configuration exporting logs); looked up, not
    # imported: without a log exporter the logs SDK is not loaded.
    sdk = sys.modules.get("opentelemetry.sdk._logs")
    if sdk is not None and isinstance(provider, sdk.LoggerProvider):
        found: SdkLoggerProvider = provider
        return found
    return None
