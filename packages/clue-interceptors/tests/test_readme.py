"""The README's Python examples run as written and print what it says."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import pytest
from chatpb import chat_pb2, chat_pb2_grpc

README = Path(__file__).parent.parent / "README.md"
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.DOTALL)


def _blocks(kind):
    return [code for lang, code in BLOCK.findall(README.read_text()) if lang == kind]


@pytest.fixture
def chat_modules(monkeypatch):
    """Let the README's `import chat_pb2` find the test's generated classes."""
    monkeypatch.setitem(sys.modules, "chat_pb2", chat_pb2)
    monkeypatch.setitem(sys.modules, "chat_pb2_grpc", chat_pb2_grpc)


def test_readme_examples_run(chat_modules):
    """Every Python block but the clue-log one runs, and the output matches the README."""
    namespace: dict[str, object] = {"__name__": "readme"}
    out = io.StringIO()
    ran = 0
    with contextlib.redirect_stdout(out):
        for code in _blocks("python"):
            if "from clue import log" in code:
                continue  # documentation only: clue-log is not a dependency
            exec(compile(code, str(README), "exec"), namespace)  # the README's own code
            ran += 1
    assert ran >= 5
    expected = _blocks("text")[0]
    assert out.getvalue().startswith(expected)
    assert out.getvalue()[len(expected) :] == "HELLO\nAIO\nStatusCode.OK\n"
