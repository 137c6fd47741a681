"""Under ``opentelemetry-instrument``: refused loudly, or clue's pipeline with the switch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from clue.otel.testing import OTLPReceiver

_APP = textwrap.dedent(
    """
    import os
    import sys

    from opentelemetry import trace
    from clue import otel

    exporter, _ = otel.new_grpc_span_exporter(endpoint=os.environ["CLUE_TEST_RECEIVER"])
    cfg = otel.new_config("clue-svc", "1.0", span_exporter=exporter, max_sampling_rate=1000)
    try:
        otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    except RuntimeError as exc:
        print("refused:", exc)
        sys.exit(3)
    tracer = trace.get_tracer("app")
    with tracer.start_as_current_span("handled"):
        pass
    print("flushed:", cfg.force_flush(5))
    print("shutdown:", cfg.shutdown(5))
    """
)


def _instrument(rx: OTLPReceiver, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    app.write_text(_APP)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    command = Path(sys.executable).parent / "opentelemetry-instrument"
    return subprocess.run(
        [str(command), sys.executable, str(app)],
        env={
            **clean,
            **rx.env("grpc"),  # the distro's own exporters, if it sets any, go here too
            "CLUE_TEST_RECEIVER": rx.grpc_endpoint,
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            **env,
        },
        check=False,
        timeout=120,
        capture_output=True,
        text=True,
    )


def test_distro_configuration_is_refused_loudly(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    """With the distro's SDK set-up, configure_opentelemetry raises, naming the way out."""
    result = _instrument(otlp_receiver, tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "refused: configure_opentelemetry: the global tracer" in result.stdout
    assert "OTEL_PYTHON_CONFIGURATOR=none" in result.stdout
    assert "flushed: True" not in result.stdout


def test_configurator_none_gives_clue_the_providers(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    """OTEL_PYTHON_CONFIGURATOR=none: spans go through clue's pipeline to the receiver."""
    result = _instrument(otlp_receiver, tmp_path, OTEL_PYTHON_CONFIGURATOR="none")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flushed: True" in result.stdout
    otlp_receiver.wait_for_spans(1, timeout=10, name="handled")
    span = otlp_receiver.span("handled")
    assert span.resource["service.name"] == "clue-svc"
    assert span.resource["service.version"] == "1.0"
