"""The logs signal: an SDK logger provider with a batch processor, built on demand.

Imported by :func:`~clue.otel.new_config` only when a log exporter is given, so that
``import clue.otel`` does not import the logs SDK.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource

from clue.otel import _fork, _lifecycle
from clue.otel._env import batch_options, export_timeout_millis
from clue.otel._outcome import Failures

__all__ = ["LogRecordExporter", "is_log_exporter", "new_logger_provider"]

# The SDK BatchLogRecordProcessor's variables and defaults (milliseconds or records).
_BLRP = (
    ("OTEL_BLRP_MAX_QUEUE_SIZE", 2048),
    ("OTEL_BLRP_SCHEDULE_DELAY", 1000),
    ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512),
)


def is_log_exporter(value: object) -> bool:
    """Whether ``value`` is an SDK log record exporter (``LogExporter`` included)."""
    return isinstance(value, LogRecordExporter)


def new_logger_provider(
    exporter: LogRecordExporter, resource: Resource, failures: Failures
) -> LoggerProvider:
    """An SDK logger provider exporting through a batch processor tuned by ``OTEL_BLRP_*``.

    Its own ``atexit`` shutdown is off: clue's bounded shutdown covers it. Failed
    exports are counted into ``failures``.
    """
    queue, delay, batch = batch_options(_BLRP)
    processor = BatchLogRecordProcessor(
        _CountingLogExporter(exporter, failures),
        schedule_delay_millis=delay,
        max_export_batch_size=batch,
        max_queue_size=queue,
        export_timeout_millis=export_timeout_millis("OTEL_BLRP_EXPORT_TIMEOUT"),
    )
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_log_record_processor(_RearmSignalHooks())
    provider.add_log_record_processor(_EncodableRecords())
    provider.add_log_record_processor(processor)
    _fork.register(_ForkedLocks(provider))
    return provider


class _RearmSignalHooks(LogRecordProcessor):
    # A configuration made from another thread, or a worker forked from the process that
    # configured it (whose server set its own signal handlers after the fork), hooks the
    # signals at the first record the main thread emits, as at the first span: a
    # configuration that exports only logs has no span to do it.

    def on_emit(self, log_record: Any) -> None:
        _lifecycle.rearm_if_due()

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _EncodableRecords(LogRecordProcessor):
    # The OTLP encoder raises on a body it cannot encode (an object, a set, an integer
    # beyond 64 bits, a string with a lone surrogate, a cycle), on a non-string severity
    # text or event name and on a timestamp that is not a 64-bit count of nanoseconds,
    # and the batch processor then drops the whole batch: one such record would lose up
    # to 512 others. Each record is made encodable as it is emitted, as the SDK does for
    # attributes: a value it cannot encode becomes its ``str()``.

    def on_emit(self, log_record: Any) -> None:
        record = log_record.log_record
        try:
            if not _encodable(record.body, 0, [_MAX_CONTAINERS]):
                record.body = _to_encodable(record.body, 0, [_MAX_CONTAINERS])
            for name in ("severity_text", "event_name"):
                value = getattr(record, name, None)
                if value is not None and not (isinstance(value, str) and _text_ok(value)):
                    setattr(record, name, _text(value))
            if not _nanos_ok(record.timestamp):
                record.timestamp = None
            if not _nanos_ok(record.observed_timestamp) or record.observed_timestamp is None:
                record.observed_timestamp = time.time_ns()
        except Exception:  # a hostile value never reaches the application
            record.body = _UNENCODABLE

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_UNENCODABLE = "<unencodable value>"
# Nested arrays and maps deeper than this become text: a collector parses OTLP with a
# nesting limit (protobuf's default is 100 messages, two per level of an AnyValue).
_MAX_DEPTH = 32
# Arrays and maps walked per body at most (a list holding itself twice would otherwise
# take 2**_MAX_DEPTH steps); those beyond become text.
_MAX_CONTAINERS = 10_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _nanos_ok(value: object) -> bool:
    return value is None or (
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64
    )


def _text_ok(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: object) -> str:
    # ``str(value)``, encodable as UTF-8; never raises.
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # a raising __str__
        return f"<unprintable {type(value).__name__}>"
    if _text_ok(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _encodable(value: object, depth: int, budget: list[int]) -> bool:
    # Whether the OTLP encoder takes ``value`` as an AnyValue (and a collector parses it).
    if value is None or isinstance(value, (bool, float, bytes)):
        return True
    if isinstance(value, str):
        return _text_ok(value)
    if isinstance(value, int):
        return _INT64_MIN <= value <= _INT64_MAX
    budget[0] -= 1
    if depth >= _MAX_DEPTH or budget[0] < 0:
        return False
    if isinstance(value, Sequence):
        return all(_encodable(item, depth + 1, budget) for item in value)
    if isinstance(value, Mapping):
        return all(
            isinstance(key, str) and _text_ok(key) and _encodable(item, depth + 1, budget)
            for key, item in value.items()
        )
    return False


def _to_encodable(value: object, depth: int, budget: list[int]) -> object:
    if value is None or isinstance(value, (bool, float, bytes)):
        return value
    if isinstance(value, int) and not (_INT64_MIN <= value <= _INT64_MAX):
        return str(value)
    if isinstance(value, (str, int)):
        return value if isinstance(value, int) or _text_ok(value) else _text(value)
    budget[0] -= 1
    if depth < _MAX_DEPTH and budget[0] >= 0:
        if isinstance(value, Sequence):
            return [_to_encodable(item, depth + 1, budget) for item in value]
        if isinstance(value, Mapping):
            return {
                _text(key): _to_encodable(item, depth + 1, budget) for key, item in value.items()
            }
    return _text(value)


class _CountingLogExporter(LogRecordExporter):
    # ``inner``, counting each export that does not succeed (the batch processor only
    # logs it), so that ``Config.force_flush`` and ``shutdown`` can report it.
    def __init__(self, inner: LogRecordExporter, failures: Failures) -> None:
        self._inner = inner
        self._failures = failures

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        try:
            result = self._inner.export(batch)
        except BaseException:
            self._failures.add()
            raise
        if result is not LogRecordExportResult.SUCCESS:
            self._failures.add()
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]  # the SDK's is unannotated

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _ForkedLocks:
    # The SDK re-creates its batch processor's thread, lock and queue in a forked child;
    # the provider's own locks (its logger cache's, its processor list's) only in recent
    # versions. A child forked while another thread held one would hang at its first
    # ``get_logger``: they are re-created here. Held by the fork registry; it holds the
    # provider for as long as the configuration lives.
    def __init__(self, provider: LoggerProvider) -> None:
        self._provider = provider
        provider.__dict__.setdefault("_clue_fork_locks", self)

    def after_fork(self) -> None:
        provider: Any = self._provider
        for name in ("_logger_cache_lock", "_active_loggers_lock"):
            if hasattr(provider, name):
                setattr(provider, name, threading.Lock())
        multi = getattr(provider, "_multi_log_record_processor", None)
        if multi is not None and hasattr(multi, "_lock"):
            multi._lock = threading.Lock()
