"""The README's Python examples run as written (each in a fresh process) and print what it says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
# Blocks aimed at a real collector host are documentation of deployment, not run here.
_RUNNABLE = [code for code in BLOCK.findall(README.read_text()) if "collector:" not in code]


def test_most_examples_are_runnable() -> None:
    """Only the blocks that name a remote collector are left out."""
    assert len(_RUNNABLE) >= 6


@pytest.mark.parametrize("code", _RUNNABLE, ids=lambda code: code.splitlines()[-1][:40])
def test_readme_example_runs(code: str) -> None:
    """The block runs in a fresh interpreter without error, with only loopback traffic."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean,
        check=False,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    if "sampler.get_description()" in code:
        assert "Adaptive{maxSamplingRate:100,sampleSize:10}\n0.0 1.0\n" in result.stdout
    if "error_promotion.stats()" in code:
        stats = result.stdout.strip().splitlines()[-1]
        assert stats.startswith("PromotionStats(held_traces=0, held_spans=0, promoted_traces=1,")
