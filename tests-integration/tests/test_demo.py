"""The demo, end to end, on a small load: its report holds the promised figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


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
    assert (out / "report.txt").read_text() in done.stdout
