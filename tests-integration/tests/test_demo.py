"""The demo, end to end, on a small load: its report holds the promised figures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any


def test_demo_reports_savings_full_contexts_and_no_leaks(tmp_path: Path) -> None:
    """A short demo run passes: every failure complete, no success leaked, logs saved."""
    out = tmp_path / "report"
    done = subprocess.run(
        [
            sys.executable, "-m", "clue_example.demo",
            "--requests", "300", "--failure-share", "0.05", "--max-seconds", "60",
            "--out", str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "verdict: PASS" in done.stdout
    assert "load [" in done.stderr  # the progress bar
    report = json.loads((out / "report.json").read_text())
    assert report["load"]["sent"] == 300
    assert report["requests"]["failed"] >= 5
    assert report["failed_full_context"]["pct"] == 100.0
    assert report["successful_untraced"]["wrote_anything"] == 0
    assert report["logs"]["saved_bytes_pct"] > 50.0
    assert report["traces"]["spans_received"] > 0
    assert all(h["ready"] for h in report["health"].values())
    one = report["debug_one_request"]
    assert one["services"] == 3, one
    assert one["elsewhere"] == 0, one
    assert all(n > 0 for n in one["per_service"].values()), one
    line = f"debug one request: {one['lines']} debug lines across 3 services, 0 elsewhere"
    assert line in done.stdout
    assert (out / "log-bytes.png").read_bytes()[:4] == b"\x89PNG"
    _check_otlp_and_metrics(report, done.stdout)
    assert (out / "report.txt").read_text() in done.stdout


def _check_otlp_and_metrics(report: dict[str, Any], stdout: str) -> None:
    """Every record received is a failed or traced request's; the metrics agree."""
    logs = report["otlp_logs"]
    per_service = logs["buffered"]["per_service"]
    assert set(per_service) == {"front", "forecaster", "locator"}
    for name, service in per_service.items():
        assert service["request_records"] == service["request_lines"] > 0, (name, service)
        assert service["records"] <= service["lines"], (name, service)
        assert service["failed"] > 0, (name, service)
        assert service["unexplained"] == 0, (name, service)
    assert logs["buffered"]["unexplained"] == 0
    # Buffering off: a record for every line, many more than with buffering.
    assert logs["buffered"]["match"]
    assert logs["log_everything"]["match"], logs["log_everything"]
    assert logs["log_everything"]["request_records"] == logs["log_everything"]["request_lines"]
    assert logs["log_everything"]["records"] > 2 * logs["buffered"]["records"]
    assert "OTLP log records received" in stdout
    assert re.search(r"^  \.\.\. of neither \(must be 0\) +0$", stdout, re.MULTILINE)

    metrics = report["metrics"]
    assert metrics["agree"], metrics
    for run in ("buffered", "log_everything"):
        for name, service in metrics[run]["per_service"].items():
            # Exactly the bytes the demo found in the service's stdout, but for its last
            # lines outside any request written after the telemetry's last export.
            late = service["measured"]["bytes"] - service["output_bytes"]["stream"]
            assert late in service["late"], name
            assert service["exports"] > 0, name
    buffered = metrics["buffered"]["per_service"]
    assert all(s["contexts"]["discarded"] > 0 for s in buffered.values()), buffered
    assert all(s["entries"]["discarded"] > s["entries"]["written"] for s in buffered.values())
    # The gauge is sampled at each export (one a second): every service exported it, and
    # the front, whose contexts span each whole request, held something at one of them.
    assert all(s["peak_buffered_bytes"] is not None for s in buffered.values()), buffered
    assert (buffered["front"]["peak_buffered_bytes"] or 0) > 0, buffered
    assert metrics["gap_pct"] <= 2.0
    assert re.search(r"^metrics agree with the measured counts +yes ", stdout, re.MULTILINE)
    assert "peak buffered memory" in stdout
