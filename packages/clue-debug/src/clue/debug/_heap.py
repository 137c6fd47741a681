"""Heap and allocation profiles from ``tracemalloc``, as pprof or text.

tracemalloc costs memory and slows allocations while it traces, so it is off until the
first ``heap``/``allocs`` request starts it; that answer says so, and covers only what
was allocated since. ``?stop=1`` stops tracing after the snapshot.
"""

from __future__ import annotations

import bisect
import gc
import os
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from types import CodeType, FunctionType

from ._pprof import Frame, ProfileBuilder

__all__ = ["HeapReport", "heap_report"]

DEFAULT_FRAMES = 32


@dataclass
class HeapReport:
    """Allocation sites: ``(stack leaf first, count, size)`` and notes for the reader."""

    kind: str
    sites: list[tuple[tuple[Frame, ...], int, int]]
    notes: list[str]
    started: bool

    def to_pprof(self) -> bytes:
        """Gzipped pprof with ``<kind>_objects``/count and ``<kind>_space``/bytes."""
        prefix = "inuse" if self.kind == "heap" else "alloc"
        builder = ProfileBuilder(
            [(f"{prefix}_objects", "count"), (f"{prefix}_space", "bytes")],
            period_type=("space", "bytes"),
            period=1,
            time_nanos=time.time_ns(),
            comments=self.notes,
        )
        for stack, count, size in self.sites:
            builder.add(stack, [count, size])
        return builder.encode()

    def to_text(self, *, limit: int = 100) -> str:
        """The largest sites, one block per site, notes first."""
        lines = [f"# {note}" for note in self.notes]
        total = sum(size for _, _, size in self.sites)
        lines.append(f"# {self.kind}: {len(self.sites)} sites, {total} bytes")
        for stack, count, size in sorted(self.sites, key=lambda s: -s[2])[:limit]:
            lines.append(f"{size} bytes in {count} blocks")
            lines.extend(f"\t{f.name} {f.filename}:{f.line}" for f in stack)
        return "\n".join(lines) + "\n"


def heap_report(kind: str, *, seconds: float = 0.0, frames: int = DEFAULT_FRAMES) -> HeapReport:
    """Snapshot tracemalloc (starting it when off) for ``heap`` or ``allocs``.

    ``heap`` is what is live now. ``allocs`` with ``seconds`` is what was allocated during
    that window and is still live at its end (a snapshot diff); without it, all live
    traced allocations.
    """
    notes: list[str] = []
    started = False
    if not tracemalloc.is_tracing():
        tracemalloc.start(frames)
        started = True
        notes.append(
            f"tracemalloc was not tracing: started it now with {frames} frames; "
            "only allocations from now on are profiled (ask again later)"
        )
    notes.append(f"tracemalloc traces {tracemalloc.get_traceback_limit()} frames per allocation")
    sites: list[tuple[tuple[Frame, ...], int, int]] = []
    if kind == "allocs" and seconds > 0:
        before = tracemalloc.take_snapshot()
        time.sleep(seconds)  # the window being measured, not a wait for an event
        after = tracemalloc.take_snapshot()
        notes.append(f"allocations during {seconds:g}s still live at its end")
        sites.extend(
            (_stack(diff.traceback), diff.count_diff, diff.size_diff)
            for diff in after.compare_to(before, "traceback")
            if diff.size_diff > 0 and diff.count_diff > 0
        )
    else:
        snapshot = tracemalloc.take_snapshot()
        sites.extend(
            (_stack(stat.traceback), stat.count, stat.size)
            for stat in snapshot.statistics("traceback")
        )
    # Leave out tracemalloc's own bookkeeping and this module's (caches, reports): filtered
    # after grouping, since Snapshot.filter_traces walks every trace in Python.
    sites = [site for site in sites if not _is_own(site[0])]
    _name_functions(sites)
    return HeapReport(kind=kind, sites=sites, notes=notes, started=started)


_OWN_FILES = frozenset({__file__, tracemalloc.__file__})


def _is_own(stack: tuple[Frame, ...]) -> bool:
    return any(f.filename in _OWN_FILES for f in stack)


def _stack(traceback: Sequence[tracemalloc.Frame]) -> tuple[Frame, ...]:
    # tracemalloc lists frames oldest first; pprof wants the leaf first.
    return tuple(Frame("", f.filename, 0, f.lineno) for f in reversed(traceback))


def _name_functions(sites: list[tuple[tuple[Frame, ...], int, int]]) -> None:
    """Give each frame the qualified name of the innermost function around its line.

    tracemalloc records only file and line. The functions alive in the process (found
    through the garbage collector, no source compiled) say which code owns which lines;
    lines owned by no live function are module or class level.
    """
    files = {f.filename for stack, _, _ in sites for f in stack}
    index = _code_index(files)
    names: dict[tuple[str, int], str] = {}
    for position, (stack, count, size) in enumerate(sites):
        named = []
        for f in stack:
            key = (f.filename, f.line)
            name = names.get(key)
            if name is None:
                name = names[key] = _owner(index, f.filename, f.line)
            named.append(Frame(name, f.filename, 0, f.line))
        sites[position] = (tuple(named), count, size)


def _code_index(files: set[str]) -> dict[str, tuple[list[int], list[CodeType]]]:
    """Per file, its live code objects sorted by first line."""
    found: dict[str, dict[int, CodeType]] = {}
    for obj in gc.get_objects():
        if not isinstance(obj, FunctionType) or obj.__code__.co_filename not in files:
            continue
        for code in _with_nested(obj.__code__):
            found.setdefault(code.co_filename, {})[id(code)] = code
    index = {}
    for filename, codes in found.items():
        ordered = sorted(codes.values(), key=lambda c: c.co_firstlineno)
        index[filename] = ([c.co_firstlineno for c in ordered], ordered)
    return index


def _owner(index: dict[str, tuple[list[int], list[CodeType]]], filename: str, line: int) -> str:
    entry = index.get(filename)
    if entry is not None:
        firsts, codes = entry
        # The innermost owner starts last among the code objects whose lines hold `line`.
        position = bisect.bisect_right(firsts, line) - 1
        for code in reversed(codes[max(0, position - 64) : position + 1]):
            if line in _code_lines(code):
                return code.co_qualname
    return f"{os.path.splitext(os.path.basename(filename))[0]}:{line}"


_CODE_LINES: dict[CodeType, frozenset[int]] = {}


def _code_lines(code: CodeType) -> frozenset[int]:
    # Cached: walking co_lines() allocates, which tracemalloc makes slow.
    lines = _CODE_LINES.get(code)
    if lines is None:
        lines = _CODE_LINES[code] = frozenset(
            line for _, _, line in code.co_lines() if line is not None
        )
    return lines


def _with_nested(code: CodeType) -> list[CodeType]:
    out = [code]
    for const in code.co_consts:
        if isinstance(const, CodeType):
            out.extend(_with_nested(const))
    return out
