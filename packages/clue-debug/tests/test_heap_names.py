"""Heap profile call sites are named after the functions that own them."""

from __future__ import annotations

import itertools
import tracemalloc
import types
from collections.abc import Iterator

import pytest

from clue.debug._heap import heap_report

_KEEP: list[bytes] = []


def clue_comprehension_alloc(n: int) -> None:
    """Allocates in a list comprehension and on a line of its own."""
    _KEEP.append(bytes(40_960))
    _KEEP.extend([bytes(10_240) for _ in range(n)])
    _KEEP.extend({i: bytes(10_240) for i in range(n)}.values())


def _lines(code: types.CodeType) -> set[int]:
    nested = [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return {line for _, _, line in code.co_lines() if line} | {
        line for c in nested for line in _lines(c)
    }


_ALLOC_LINES = _lines(clue_comprehension_alloc.__code__) - {
    clue_comprehension_alloc.__code__.co_firstlineno
}


def _in_alloc(filename: str, line: int) -> bool:
    return filename == __file__ and line in _ALLOC_LINES


@pytest.fixture
def tracing() -> Iterator[None]:
    tracemalloc.start(16)
    yield
    tracemalloc.stop()
    _KEEP.clear()


@pytest.mark.usefixtures("tracing")
def test_comprehension_call_sites_are_named_after_their_function() -> None:
    """Lines inside comprehensions carry the function's name, one frame, on every Python."""
    clue_comprehension_alloc(40)
    report = heap_report("heap")
    ours = [s for s in report.sites if s[0] and _in_alloc(s[0][0].filename, s[0][0].line)]
    assert sum(size for _, _, size in ours) >= 40 * 10_240 * 2
    for stack, _, _ in ours:
        assert not any("<listcomp>" in f.name or "<dictcomp>" in f.name for f in stack)
        assert stack[0].name == "clue_comprehension_alloc", stack[0]
        pairs = list(itertools.pairwise(stack))
        assert not any((a.filename, a.line) == (b.filename, b.line) for a, b in pairs)
    assert len({stack[0].line for stack, _, _ in ours}) == 3  # the three call sites


@pytest.mark.usefixtures("tracing")
def test_heap_report_groups_like_tracemalloc_statistics() -> None:
    """Sites, counts and sizes are tracemalloc's own statistics by traceback."""
    clue_comprehension_alloc(10)
    snapshot = tracemalloc.take_snapshot()
    expected = {
        tuple((f.filename, f.lineno) for f in reversed(stat.traceback)): (stat.count, stat.size)
        for stat in snapshot.statistics("traceback")
    }
    report = heap_report("heap")
    # Several tracebacks can start on one line (the dict comprehension's allocations, and
    # ``_KEEP`` growing on the same line in the function's own frame): compare them all.
    got = sorted(
        (stack[0].line, count, size)
        for stack, count, size in report.sites
        if stack and _in_alloc(stack[0].filename, stack[0].line)
    )
    want = sorted((tb[0][1], *value) for tb, value in expected.items() if _in_alloc(*tb[0]))
    assert len({line for line, _, _ in want}) == 3
    assert got == want
