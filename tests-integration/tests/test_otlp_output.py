"""End to end: ``log.otlp_output()`` through the real OTLP/HTTP log exporter to a real
receiver, when the collector fails and the exporter logs its retries through clue."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from clue import log
from clue.log.testing import reset
from clue.otel.testing import OTLPReceiver


@pytest.fixture
def collector() -> Iterator[OTLPReceiver]:
    with OTLPReceiver(grpc=False) as receiver:
        yield receiver


def test_the_exporters_own_warnings_are_not_exported(collector: OTLPReceiver) -> None:
    """The collector answers 503 twice: the exporter logs each retry through the stdlib
    bridge. Those lines reach the stream output; the collector receives the application's
    record only (before, each retry's warning became a record of the next export, and
    ``force_flush`` exported them in turn)."""
    provider = LoggerProvider()
    provider.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=collector.http_logs_endpoint))
    )
    otel_logger = logging.getLogger("opentelemetry")
    handler = log.StdlibHandler()
    otel_logger.addHandler(handler)
    out = io.StringIO()
    try:
        log.configure(outputs=[(out, log.format_json), log.otlp_output(logger_provider=provider)])
        collector.fail(times=2, retry_after=0.01)
        log.print("from the application")
        assert provider.force_flush()
        assert provider.force_flush()
    finally:
        otel_logger.removeHandler(handler)
        provider.shutdown()
        reset()
    assert [r.body for r in collector.logs()] == ["from the application"]
    assert len(collector.requests()) == 3  # two refused, then the record accepted
    assert "retrying" in out.getvalue()  # once: the exporter filters repeated warnings
