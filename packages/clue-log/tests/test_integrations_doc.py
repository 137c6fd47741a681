"""The ```python examples of docs/integrations.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clue.log.testing import reset

DOC = Path(__file__).resolve().parent.parent / "docs" / "integrations.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.DOTALL | re.MULTILINE)


def test_doc_has_examples() -> None:
    """The integrations doc carries a runnable example per framework and gRPC flavour."""
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_doc_example_runs(code: str) -> None:
    """Each example runs without error and its assertions hold."""
    reset()
    try:
        exec(compile(code, str(DOC), "exec"), {"__name__": "doc_example"})
    finally:
        reset()
