"""The README's Python examples compile, and the self-contained ones run."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import structlog

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = [
    textwrap.dedent(block)
    for block in re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
]
# Blocks that serve forever or only show a signature are compiled, not run.
_NOT_RUN = ("serve_forever", "class LogControl", "@pytest.fixture")


def test_readme_has_examples() -> None:
    """The README carries Python examples for its features."""
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example(index: int) -> None:
    """Each README example compiles, and runs when it is self-contained."""
    source = BLOCKS[index]
    compile(source, f"README.md block {index}", "exec")
    if any(marker in source for marker in _NOT_RUN):
        return
    # The admin-port example binds 6060 on a developer's machine; tests use a free port.
    code = compile(source.replace("port=6060", "port=0"), f"README.md block {index}", "exec")
    with structlog.testing.capture_logs():
        exec(code, {"__name__": "readme_example"})
