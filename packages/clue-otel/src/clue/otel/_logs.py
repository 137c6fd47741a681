"""The logs signal: an SDK logger provider with a batch processor, built on demand.

Imported by :func:`~clue.otel.new_config` only when a log exporter is given, so that
``import clue.otel`` does not import the logs SDK.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource

from clue.otel import _fork, _lifecycle
from clue.otel._env import batch_options
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
    )
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_log_record_processor(_RearmSignalHooks())
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
