"""OTLP exporter helpers: ``(exporter, shutdown)`` pairs over gRPC and HTTP/protobuf.

The exporters are the OpenTelemetry SDK's own, so every ``OTEL_EXPORTER_OTLP_*``
environment variable they read (endpoint, headers, timeout, compression,
certificates, insecure) applies; keyword options given here win over them. The
exporter modules are imported when a helper is called, so importing ``clue.otel``
does not import grpc.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

from clue.otel._bounded import Shutdown, bounded
from clue.otel._env import chosen_protocol, exporter_options, unusable_variables

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExporter

__all__ = [
    "new_grpc_log_exporter",
    "new_grpc_metric_exporter",
    "new_grpc_span_exporter",
    "new_http_log_exporter",
    "new_http_metric_exporter",
    "new_http_span_exporter",
    "new_otlp_log_exporter",
    "new_otlp_metric_exporter",
    "new_otlp_span_exporter",
]


def new_grpc_span_exporter(**options: Any) -> tuple[SpanExporter, Shutdown]:
    """An OTLP/gRPC span exporter and its bounded shutdown.

    Args:
        **options: Passed to ``opentelemetry.exporter.otlp.proto.grpc.trace_exporter.
            OTLPSpanExporter`` (``endpoint``, ``insecure``, ``headers``, ``timeout``,
            ``compression``...). Unset options come from ``OTEL_EXPORTER_OTLP_*``.

    Returns:
        ``(exporter, shutdown)``; ``shutdown(timeout=5.0)`` never raises, logs
        failures and returns whether it completed in time.

    Raises:
        ValueError: For an option the exporter does not know, or a bad value.

    Example:
        >>> exporter, shutdown = new_grpc_span_exporter(
        ...     endpoint="http://127.0.0.1:4317", timeout=5
        ... )
        >>> shutdown()
        True

    .. versionadded:: 0.1.0
    """
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    exporter: SpanExporter = _build(OTLPSpanExporter, "traces", "grpc", options)
    return exporter, bounded(exporter.shutdown, "grpc span exporter")


def new_grpc_metric_exporter(**options: Any) -> tuple[MetricExporter, Shutdown]:
    """An OTLP/gRPC metric exporter and its bounded shutdown.

    Same contract as :func:`new_grpc_span_exporter`, with
    ``opentelemetry.exporter.otlp.proto.grpc.metric_exporter.OTLPMetricExporter``.

    .. versionadded:: 0.1.0
    """
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    exporter: MetricExporter = _build(OTLPMetricExporter, "metrics", "grpc", options)
    return exporter, bounded(exporter.shutdown, "grpc metric exporter")


def new_grpc_log_exporter(**options: Any) -> tuple[LogRecordExporter, Shutdown]:
    """An OTLP/gRPC log record exporter and its bounded shutdown.

    Same contract as :func:`new_grpc_span_exporter`, with
    ``opentelemetry.exporter.otlp.proto.grpc._log_exporter.OTLPLogExporter``; unset
    options come from ``OTEL_EXPORTER_OTLP_LOGS_*``, then ``OTEL_EXPORTER_OTLP_*``.

    Example:
        >>> exporter, shutdown = new_grpc_log_exporter(endpoint="http://127.0.0.1:4317")
        >>> shutdown()
        True

    .. versionadded:: 0.2.0
    """
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    exporter: LogRecordExporter = _build(OTLPLogExporter, "logs", "grpc", options)
    return exporter, bounded(exporter.shutdown, "grpc log exporter")


def new_http_span_exporter(**options: Any) -> tuple[SpanExporter, Shutdown]:
    """An OTLP/HTTP (protobuf) span exporter and its bounded shutdown.

    Same contract as :func:`new_grpc_span_exporter`, with
    ``opentelemetry.exporter.otlp.proto.http.trace_exporter.OTLPSpanExporter``. Its
    ``endpoint`` option is the full URL including ``/v1/traces``; the base URL in
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` gets the path appended by the SDK.

    .. versionadded:: 0.1.0
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter: SpanExporter = _build(OTLPSpanExporter, "traces", "http/protobuf", options)
    return exporter, bounded(exporter.shutdown, "http span exporter")


def new_http_metric_exporter(**options: Any) -> tuple[MetricExporter, Shutdown]:
    """An OTLP/HTTP (protobuf) metric exporter and its bounded shutdown.

    Same contract as :func:`new_http_span_exporter`, with
    ``opentelemetry.exporter.otlp.proto.http.metric_exporter.OTLPMetricExporter``
    (full URL including ``/v1/metrics``).

    .. versionadded:: 0.1.0
    """
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    exporter: MetricExporter = _build(OTLPMetricExporter, "metrics", "http/protobuf", options)
    return exporter, bounded(exporter.shutdown, "http metric exporter")


def new_http_log_exporter(**options: Any) -> tuple[LogRecordExporter, Shutdown]:
    """An OTLP/HTTP (protobuf) log record exporter and its bounded shutdown.

    Same contract as :func:`new_http_span_exporter`, with
    ``opentelemetry.exporter.otlp.proto.http._log_exporter.OTLPLogExporter`` (full URL
    including ``/v1/logs``; unset options come from ``OTEL_EXPORTER_OTLP_LOGS_*``, then
    ``OTEL_EXPORTER_OTLP_*``).

    .. versionadded:: 0.2.0
    """
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    exporter: LogRecordExporter = _build(OTLPLogExporter, "logs", "http/protobuf", options)
    return exporter, bounded(exporter.shutdown, "http log exporter")


def new_otlp_span_exporter(**options: Any) -> tuple[SpanExporter, Shutdown]:
    """An OTLP span exporter over the transport the environment chooses, as the distro does.

    ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``:
    ``grpc`` gives :func:`new_grpc_span_exporter`, ``http/protobuf`` (the
    specification's default when unset) :func:`new_http_span_exporter`; ``http/json``
    (no Python exporter) and unknown values are warned and give ``http/protobuf``.
    ``options`` are the chosen helper's.

    Example:
        >>> exporter, shutdown = new_otlp_span_exporter()
        >>> type(exporter).__module__
        'opentelemetry.exporter.otlp.proto.http.trace_exporter'
        >>> shutdown()
        True

    .. versionadded:: 0.2.0
    """
    if chosen_protocol("traces") == "grpc":
        return new_grpc_span_exporter(**options)
    return new_http_span_exporter(**options)


def new_otlp_metric_exporter(**options: Any) -> tuple[MetricExporter, Shutdown]:
    """An OTLP metric exporter over the transport the environment chooses.

    Same contract as :func:`new_otlp_span_exporter`, with
    ``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL``.

    .. versionadded:: 0.2.0
    """
    if chosen_protocol("metrics") == "grpc":
        return new_grpc_metric_exporter(**options)
    return new_http_metric_exporter(**options)


def new_otlp_log_exporter(**options: Any) -> tuple[LogRecordExporter, Shutdown]:
    """An OTLP log record exporter over the transport the environment chooses.

    Same contract as :func:`new_otlp_span_exporter`, with
    ``OTEL_EXPORTER_OTLP_LOGS_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``.

    .. versionadded:: 0.2.0
    """
    if chosen_protocol("logs") == "grpc":
        return new_grpc_log_exporter(**options)
    return new_http_log_exporter(**options)


def _build(cls: Any, signal: str, transport: str, options: dict[str, Any]) -> Any:
    # Unknown options are a configuration error: name them, with what is accepted.
    params = inspect.signature(cls.__init__).parameters
    known = sorted(n for n, p in params.items() if n != "self" and not n.startswith("_"))
    for name in options:
        if name not in known:
            msg = f"unknown option {name!r} for {cls.__module__}.{cls.__name__}; known: {known}"
            raise ValueError(msg)
    try:
        kwargs = exporter_options(signal, transport, options)
        # The exporter and its base classes' modules (the gRPC mixin reads the timeout in
        # some SDK versions) read the environment while it is built.
        modules = {sys.modules[c.__module__] for c in cls.__mro__ if c.__module__ in sys.modules}
        with _hidden(modules, unusable_variables(signal)):
            exporter = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        msg = f"invalid options for {cls.__name__}: {exc}"
        raise ValueError(msg) from exc
    if transport == "grpc":
        _ForkWaitsForExport(exporter)
    return exporter


class _ForkWaitsForExport:
    # gRPC does not survive a fork made while another thread is inside a call ("Other
    # threads are currently calling into gRPC, skipping fork() handlers"): the child's
    # channel never answers, and a worker forked while the batch processor's thread
    # was exporting would lose every record and span it queues. A fork waits for the
    # export in flight, at most the exporter's timeout (then forks anyway).
    def __init__(self, exporter: Any) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._wait = float(getattr(exporter, "_timeout", None) or 10.0)
        inner = exporter.export

        def export(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return inner(*args, **kwargs)

        exporter.export = export
        exporter.__dict__.setdefault("_clue_fork_waits", self)
        ref = weakref.ref(self)
        os.register_at_fork(
            before=lambda: _call(ref, "before"),
            after_in_parent=lambda: _call(ref, "after_in_parent"),
            after_in_child=lambda: _call(ref, "after_in_child"),
        )

    def before(self) -> None:
        self._held = self._lock.acquire(timeout=self._wait)

    def after_in_parent(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()

    def after_in_child(self) -> None:
        self._lock = threading.Lock()
        self._held = False


def _call(ref: weakref.ReferenceType[_ForkWaitsForExport], name: str) -> None:
    # A fork hook of an exporter that may be gone; it never raises into the fork.
    obj = ref()
    if obj is not None:
        with contextlib.suppress(Exception):
            getattr(obj, name)()


_HIDING = threading.Lock()


@contextlib.contextmanager
def _hidden(modules: set[Any], variables: frozenset[str]) -> Iterator[None]:
    # While the exporter is built, its modules read an environment without
    # ``variables`` (blank or malformed ones it would raise on; their replacement is
    # passed as an option). Only those modules' view changes, not os.environ.
    readers = [m for m in modules if getattr(m, "environ", None) is os.environ]
    if not variables or not readers:
        yield
        return
    with _HIDING:
        view = {k: v for k, v in os.environ.items() if k not in variables}
        for module in readers:
            module.environ = view
        try:
            yield
        finally:
            for module in readers:
                module.environ = os.environ
