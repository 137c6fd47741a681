"""``log.otlp_output()``: written entries as OpenTelemetry log records, through the Logs API.

Only entries that are written reach it (a flushed buffer, an immediate write), as for the
stream outputs. Each becomes one record: the call's time as ``timestamp``, the flush's as
``observed_timestamp``, the severity mapped from clue's level, the message as ``body``, the
other key/values as attributes converted as ``format_json`` converts them (``json_doc``:
the same budget, the same key escaping), and the span that was current at the call as the
record's trace context.

The logger is resolved at write time from the global logger provider (or the one given),
so a provider installed after ``configure`` is used; with none installed nothing is
converted. Emitting never raises into the application: a record the pipeline refuses costs
that record only, and is counted like a stream's failed write.

The Logs API changed shape across versions: ``Logger.emit`` takes keywords and a
``context`` (newer), or a ``LogRecord`` built with a ``context`` or with ``trace_id``,
``span_id`` and ``trace_flags`` (older); the shape is read from the installed API.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry._logs import LoggerProvider, SeverityNumber
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext

from clue.log import _keys, _metrics
from clue.log._entry import Entry, safe_str
from clue.log._format import json_doc, json_line, json_text
from clue.log._output import failures
from clue.log._tracing import SPAN_KEY

#: clue's levels as OpenTelemetry severities: (``severity_number``, ``severity_text``).
SEVERITIES: dict[str, tuple[SeverityNumber, str]] = {
    "debug": (SeverityNumber.DEBUG, "debug"),
    "info": (SeverityNumber.INFO, "info"),
    "warn": (SeverityNumber.WARN, "warn"),
    "error": (SeverityNumber.ERROR, "error"),
}

_INT64 = (-(2**63), 2**63)
_FALLBACK_BODY = "clue/log: entry could not be rendered"

# Set while this thread emits: the OpenTelemetry pipeline that logs through clue (its own
# warnings, through a ``StdlibHandler``) must not re-enter the output it is running in.
_emitting = threading.local()


def otlp_output(
    *, logger_provider: LoggerProvider | None = None, name: str = "clue.log"
) -> OtlpOutput:
    """An output emitting each written entry as an OpenTelemetry log record.

    Use it as ``configure(output=log.otlp_output())`` or beside stream outputs in
    ``configure(outputs=[(sys.stdout, log.format_json), log.otlp_output()])``. Records go
    through the global logger provider (``opentelemetry._logs``), looked up when entries
    are written, unless ``logger_provider`` is given.

    Args:
        logger_provider: an OpenTelemetry ``LoggerProvider`` to use instead of the global
            one.
        name: the instrumentation scope name of the records.

    Raises:
        TypeError: an option this function does not know (Python names it).
        ValueError: an option has a bad value; the message names it.

    Example:
        >>> from clue import log
        >>> log.configure(output=log.otlp_output())

    .. versionadded:: 0.2.0
    """
    if type(name) is not str or not name or not _utf8(name):
        raise ValueError(f"name must be a non-empty str UTF-8 can hold, got {name!r}")
    if logger_provider is not None and not callable(getattr(logger_provider, "get_logger", None)):
        raise ValueError(
            f"logger_provider must be an OpenTelemetry LoggerProvider, got {logger_provider!r}"
        )
    return OtlpOutput(name, logger_provider)


def _utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


Emit = Callable[[Any, Entry, int], int]  # returns the bytes counted for the record


class OtlpOutput:
    """The output ``otlp_output()`` returns (see there)."""

    __slots__ = ("_cache", "_name", "_provider", "failures")

    def __init__(self, name: str, provider: LoggerProvider | None) -> None:
        self._name = name
        self._provider = provider
        # (provider, its logger or None when it does nothing, how to emit to it)
        self._cache: tuple[Any, Any, Emit | None] = (None, None, None)
        self.failures = 0

    def __repr__(self) -> str:
        return f"log.otlp_output(name={self._name!r})"

    def render(self, entry: Entry) -> Entry:
        """Entries are converted when emitted, only if a logger provider is installed."""
        return entry

    def write(self, chunks: list[Any]) -> None:
        """Emit a batch of entries, in order, each on its own (never raises)."""
        if chunks and any(_suppressed(entry) for entry in chunks):
            chunks = [entry for entry in chunks if not _suppressed(entry)]
        if not chunks:
            return
        if getattr(_emitting, "active", False):
            self.failures += len(chunks)
            failures.report(self, RuntimeError("the log pipeline logged while emitting"))
            return
        _emitting.active = True
        try:
            logger, emit = self._resolve()
            if emit is None:
                return
            observed = time.time_ns()
            nbytes = 0
            for entry in chunks:
                try:
                    nbytes += emit(logger, entry, observed)
                except Exception as exc:  # the pipeline refused this record: it alone
                    self.failures += 1
                    failures.report(self, exc)
            _metrics.output_written("otlp", nbytes)
        except Exception as exc:  # the provider itself failed
            self.failures += len(chunks)
            failures.report(self, exc)
        finally:
            _emitting.active = False

    def _resolve(self) -> tuple[Any, Emit | None]:
        provider: Any = self._provider
        if provider is None:
            provider = _logs.get_logger_provider()
        cached = self._cache
        if cached[0] is provider:
            return cached[1], cached[2]
        logger: Any = None
        emit: Emit | None = None
        if not _does_nothing(provider):
            logger = provider.get_logger(self._name, _version())
            if not isinstance(logger, _logs.NoOpLogger):
                emit = _emitter_for(logger)
        self._cache = (provider, logger, emit)
        return logger, emit


def _suppressed(entry: Entry) -> bool:
    # Logged while OpenTelemetry instrumentation was suppressed, as the SDK suppresses it
    # while its processors export (in their worker thread, or in the caller's on
    # ``force_flush``): what an exporter logs then is not emitted again, or a failing
    # exporter would feed itself a record per export, and ``force_flush`` never return.
    ctx = entry._otel
    try:
        return bool(ctx and ctx.get(_SUPPRESS_INSTRUMENTATION_KEY))
    except Exception:  # a foreign context must not cost the entry
        return False


def _does_nothing(provider: Any) -> bool:
    # The API's own providers before one is installed: the no-op one, and the proxy that
    # forwards only once a real one is set (looked up again at the next write).
    kind = type(provider)
    return kind.__module__.startswith("opentelemetry._logs") and kind.__name__ in {
        "NoOpLoggerProvider",
        "ProxyLoggerProvider",
    }


_VERSION: list[str] = []


def _version() -> str:
    if not _VERSION:
        try:
            from importlib.metadata import version

            _VERSION.append(version("clue-log"))
        except Exception:  # not installed as a distribution
            _VERSION.append("")
    return _VERSION[0]


# --- the record's fields -------------------------------------------------------------------


def fields(entry: Entry) -> tuple[int | None, SeverityNumber, str, Any, dict[str, Any], int]:
    """``(timestamp, severity_number, severity_text, body, attributes, size)`` of a record.

    ``size`` is what ``clue.log.output.bytes{otlp}`` counts for it: the bytes of the same
    entry as a JSON line, the document whose values the body and attributes carry.

    The values of ``json_doc(entry)`` with OTLP's own type mapping (``otlp_value``); the empty key,
    which OTLP refuses, is ``_`` (as in logfmt). A key so changed (or a lone surrogate escaped) that
    would take another key's name gets leading underscores until it has its own, so no key/value is
    lost.
    """
    ts = entry.time_ns if type(entry.time_ns) is int else None
    number, text = SEVERITIES.get(entry.severity, (SeverityNumber.UNSPECIFIED, ""))
    if not text:
        text = otlp_string(safe_str(entry.severity))
    try:
        doc = json_doc(entry)
    except Exception as exc:  # what format_json writes as its fallback line
        error = otlp_string(safe_str(exc))
        size = len(_FALLBACK_BODY) + len(error.encode("utf-8", "replace"))
        return ts, number, text, _FALLBACK_BODY, {"error": error}, size
    skip = _keys.FORMAT_KEYS
    msg_key = str(_keys.MESSAGE_KEY)
    body: Any = None
    attributes: dict[str, Any] = {}
    taken: set[str] | None = None  # the entry's keys, once one must be renamed
    for k, v in doc.items():
        if k in skip:
            continue
        if k == msg_key:
            body = otlp_value(v)
            continue
        value = otlp_value(v)
        if value is not None:
            name = otlp_string(k) or "_"
            if name != k:
                if taken is None:
                    taken = set(doc)
                while name in taken:
                    name = "_" + name
                taken.add(name)
            attributes[name] = value
    return ts, number, text, body, attributes, len(json_line(doc))


def otlp_value(v: Any) -> Any:
    r"""A value of ``json_doc`` as OTLP carries it.

    Strings as valid UTF-8 (a lone surrogate as its ``\udcxx`` escape), integers outside int64 as
    their digits, a list or mapping as the JSON text ``format_json`` writes for it, ``None`` left
    out (OTLP attributes have no null).
    """
    t = type(v)
    if t is str:
        return otlp_string(v)
    if t is bool or t is float or v is None:
        return v
    if t is int:
        return v if _INT64[0] <= v < _INT64[1] else str(v)
    return otlp_string(json_text(v))


def otlp_string(s: str) -> str:
    r"""``s`` as valid UTF-8: what UTF-8 cannot hold (lone surrogates) as ``\udcxx``."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


def span_context(entry: Entry) -> SpanContext:
    """The span context of the span current at the entry's call (invalid if none)."""
    ctx = entry._otel
    if not ctx:
        return INVALID_SPAN_CONTEXT
    try:
        span = ctx.get(SPAN_KEY)
        if span is None:
            return INVALID_SPAN_CONTEXT
        sc = span.get_span_context()
        return sc if isinstance(sc, SpanContext) else INVALID_SPAN_CONTEXT
    except Exception:  # a foreign span object must not cost the entry
        return INVALID_SPAN_CONTEXT


def _otel_context(sc: SpanContext) -> Context:
    # A context holding only the call's span, as a non-recording span: never empty, so the
    # API does not fill it in with the span current at flush time.
    return trace.set_span_in_context(NonRecordingSpan(sc), Context())


# --- emitting, by API version ----------------------------------------------------------------


def _takes(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to read
        return False


def _emit_keywords(logger: Any, entry: Entry, observed: int) -> int:
    ts, number, text, body, attributes, size = fields(entry)
    logger.emit(
        timestamp=ts,
        observed_timestamp=observed,
        context=_otel_context(span_context(entry)),
        severity_number=number,
        severity_text=text,
        body=body,
        attributes=attributes,
    )
    return size


def _record_emitter(record_class: Any, resource: Any) -> Emit:
    with_context = _takes(record_class.__init__, "context")
    with_resource = resource is not None and _takes(record_class.__init__, "resource")

    def emit(logger: Any, entry: Entry, observed: int) -> int:
        ts, number, text, body, attributes, size = fields(entry)
        sc = span_context(entry)
        kw: dict[str, Any] = {
            "timestamp": ts,
            "observed_timestamp": observed,
            "severity_number": number,
            "severity_text": text,
            "body": body,
            "attributes": attributes,
        }
        if with_context:
            kw["context"] = _otel_context(sc)
        else:
            kw["trace_id"] = sc.trace_id
            kw["span_id"] = sc.span_id
            kw["trace_flags"] = sc.trace_flags
        if with_resource:
            kw["resource"] = resource
        logger.emit(record_class(**kw))
        return size

    return emit


def _emitter_for(logger: Any) -> Emit:
    if _takes(_logs.Logger.emit, "context"):  # the API takes the record's fields as keywords
        return _emit_keywords
    # An older API: a LogRecord. The SDK's own (with the logger's resource) when the logger
    # is the SDK's, since its exporters read the resource from the record.
    record_class: Any = _logs.LogRecord
    resource = None
    if type(logger).__module__.startswith("opentelemetry.sdk."):
        try:
            import opentelemetry.sdk._logs as sdk_logs

            record_class = getattr(sdk_logs, "LogRecord", record_class)
            resource = getattr(logger, "resource", None)
        except ImportError:  # pragma: no cover - an SDK without its logs module
            pass
    return _record_emitter(record_class, resource)
