"""The SDK's own diagnostics and errors are routed into structlog and the error handler."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from clue.otel import (
    OpenTelemetryError,
    configure_opentelemetry,
    log_error,
    new_config,
    reset_opentelemetry,
)

SDK = logging.getLogger("opentelemetry.sdk.trace")


def test_sdk_warnings_go_to_structlog_not_root(
    logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """A warning logged by the SDK becomes a structlog event and does not reach the root logger."""
    configure_opentelemetry(new_config("svc", "1"), shutdown_at_exit=False)
    SDK.warning("Invalid type %s for attribute", "dict")
    assert logs == [
        {
            "event": "Invalid type dict for attribute",
            "otel_logger": "opentelemetry.sdk.trace",
            "log_level": "warning",
        }
    ]
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


def test_below_level_is_filtered_and_level_is_configurable(logs: list[dict[str, Any]]) -> None:
    """INFO records are dropped at the default level and routed when diagnostics_level=INFO."""
    configure_opentelemetry(new_config("svc", "1"), shutdown_at_exit=False)
    SDK.info("chatty")
    assert logs == []
    configure_opentelemetry(
        new_config("svc", "1"), shutdown_at_exit=False, diagnostics_level=logging.INFO
    )
    SDK.info("chatty")
    assert [e["log_level"] for e in logs] == ["info"]


def test_errors_go_to_the_error_handler() -> None:
    """ERROR records call the error handler with the exception, or an OpenTelemetryError."""
    seen: list[BaseException] = []
    configure_opentelemetry(
        new_config("svc", "1", error_handler=seen.append), shutdown_at_exit=False
    )
    SDK.error("export failed: %s", "unavailable")
    try:
        raise ConnectionError("refused")
    except ConnectionError:
        SDK.exception("while exporting")
    assert isinstance(seen[0], OpenTelemetryError)
    assert str(seen[0]) == "export failed: unavailable"
    assert seen[0].logger == "opentelemetry.sdk.trace"
    assert isinstance(seen[1], ConnectionError)


def test_default_error_handler_logs_through_structlog(logs: list[dict[str, Any]]) -> None:
    """Without an error handler, SDK errors are structlog error events."""
    configure_opentelemetry(new_config("svc", "1"), shutdown_at_exit=False)
    SDK.error("collector unreachable")
    assert logs == [
        {
            "event": "otel.error",
            "err": "collector unreachable",
            "otel_logger": "opentelemetry.sdk.trace",
            "log_level": "error",
        }
    ]


def test_failing_error_handler_never_raises() -> None:
    """An error handler that raises (or logs back into the SDK logger) is contained."""

    def handler(error: BaseException) -> None:
        SDK.error("recursing")
        raise RuntimeError("handler broke")

    configure_opentelemetry(new_config("svc", "1", error_handler=handler), shutdown_at_exit=False)
    SDK.error("boom")  # must not raise nor loop


def test_reset_restores_the_sdk_logger(logs: list[dict[str, Any]]) -> None:
    """reset_opentelemetry puts the opentelemetry logger back as it was."""
    sdk_logger = logging.getLogger("opentelemetry")
    before = (sdk_logger.propagate, sdk_logger.level, list(sdk_logger.handlers))
    configure_opentelemetry(new_config("svc", "1"), shutdown_at_exit=False)
    assert sdk_logger.propagate is False
    reset_opentelemetry()
    assert (sdk_logger.propagate, sdk_logger.level, list(sdk_logger.handlers)) == before
    SDK.warning("after reset")
    assert logs == []


def test_log_error_accepts_any_exception(logs: list[dict[str, Any]]) -> None:
    """log_error writes one error event naming the error."""
    log_error(ValueError())
    assert logs == [
        {
            "event": "otel.error",
            "err": "ValueError",
            "otel_logger": "opentelemetry",
            "log_level": "error",
        }
    ]
