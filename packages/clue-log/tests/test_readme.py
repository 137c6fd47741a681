"""The README's ```python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clue.log.testing import reset

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)


def test_readme_has_examples() -> None:
    """The README carries runnable examples."""
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code: str) -> None:
    """Each example runs without error and its assertions hold."""
    reset()
    try:
        exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    finally:
        reset()
