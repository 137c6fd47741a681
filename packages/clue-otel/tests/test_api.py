"""The public surface: complete sorted __all__, lazy imports, the pytest plugin."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

import clue.otel
import clue.otel.testing

SPEC_NAMES = {
    "AdaptiveSampler",
    "Config",
    "configure_opentelemetry",
    "new_config",
    "new_grpc_log_exporter",
    "new_grpc_metric_exporter",
    "new_grpc_span_exporter",
    "new_http_log_exporter",
    "new_http_metric_exporter",
    "new_http_span_exporter",
}


@pytest.mark.parametrize("module", [clue.otel, clue.otel.testing])
def test_all_is_sorted_complete_and_resolvable(module: object) -> None:
    """__all__ is sorted, every name resolves, and every public attribute is listed."""
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names)
    for name in names:
        assert getattr(module, name) is not None
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", "").startswith("clue.otel")
    }
    assert public <= set(names)


#: The public API, exactly: a name added to or removed from a module's ``__all__`` is a
#: change of the public API and is made here too.
PUBLIC_API = {
    "clue.otel": {
        "AdaptiveSampler", "Config", "ErrorHandler", "ErrorPromotionProcessor",
        "OpenTelemetryError", "PromotionStats", "Shutdown", "configure_opentelemetry", "log_error",
        "new_config", "new_grpc_log_exporter", "new_grpc_metric_exporter",
        "new_grpc_span_exporter", "new_http_log_exporter", "new_http_metric_exporter",
        "new_http_span_exporter", "new_otlp_log_exporter", "new_otlp_metric_exporter",
        "new_otlp_span_exporter", "reset_opentelemetry",
    },
    "clue.otel.testing": {
        "AttributeValue", "ExportRequest", "OTLPReceiver", "ReceivedEvent", "ReceivedLink",
        "ReceivedLogRecord", "ReceivedMetric", "ReceivedPoint", "ReceivedSpan", "Signal",
        "Transport", "reset_opentelemetry",
    },
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_all_is_exactly_the_public_api(module: str) -> None:
    """Each public module's __all__ is exactly its public API, once each, every name resolving."""
    mod = importlib.import_module(module)
    assert len(mod.__all__) == len(set(mod.__all__))
    assert set(mod.__all__) == PUBLIC_API[module]
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_spec_names_are_public() -> None:
    """Every name SPEC §4 lists is exported by clue.otel."""
    assert set(clue.otel.__all__) >= SPEC_NAMES


def test_importing_clue_otel_does_not_import_grpc_or_exporters() -> None:
    """import clue.otel stays light: grpc and the OTLP exporters load on first use."""
    code = textwrap.dedent(
        """
        import sys
        import clue.otel
        heavy = [m for m in sys.modules if m == "grpc" or m.startswith("opentelemetry.exporter")]
        print(heavy)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_pytest_plugin_loads_without_grpc(pytester: pytest.Pytester) -> None:
    """The auto-loaded pytest plugin does not import grpc until a fixture is used."""
    pytester.makepyfile(
        """
        import sys

        def test_light():
            assert "grpc" not in sys.modules

        def test_fixture(otlp_receiver, otel_reset):
            assert otlp_receiver.grpc_port > 0
        """
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        # opentelemetry-api 1.42-1.45.0 on Python 3.11 warns from its own entry-point lookup.
        "-W",
        "ignore:SelectableGroups dict interface is deprecated:DeprecationWarning",
    )
    result.assert_outcomes(passed=2)
