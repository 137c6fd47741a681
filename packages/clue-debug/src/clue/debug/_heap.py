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
from dataclasses import dataclass
from types import CodeType, FunctionType

from clue.debug._pprof import Frame, ProfileBuilder

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
    counted: dict[RawTraceback, tuple[int, int]] = {}
    if kind == "allocs" and seconds > 0:
        before = _group(tracemalloc.take_snapshot())
        time.sleep(seconds)  # the window being measured, not a wait for an event
        after = _group(tracemalloc.take_snapshot())
        notes.append(f"allocations during {seconds:g}s still live at its end")
        for traceback, (count, size) in after.items():
            old_count, old_size = before.get(traceback, (0, 0))
            if size > old_size and count > old_count:
                counted[traceback] = (count - old_count, size - old_size)
    else:
        counted = _group(tracemalloc.take_snapshot())
    # Leave out tracemalloc's own bookkeeping and this module's (caches, reports): filtered
    # after grouping, since Snapshot.filter_traces walks every trace in Python.
    kept = [(tb, n) for tb, n in counted.items() if not any(w[0] in _OWN_FILES for w in tb)]
    namer = _Namer({where[0] for tb, _ in kept for where in tb})
    sites = [(namer.stack(tb), count, size) for tb, (count, size) in kept]
    return HeapReport(kind=kind, sites=sites, notes=notes, started=started)


_OWN_FILES = frozenset({__file__, tracemalloc.__file__})


RawTraceback = tuple[tuple[str, int], ...]  # tracemalloc's own form: leaf first


def _group(snapshot: tracemalloc.Snapshot) -> dict[RawTraceback, tuple[int, int]]:
    """``(count, size)`` per traceback.

    ``Snapshot.statistics`` builds a ``Traceback`` and a ``Statistic`` per trace in
    Python, each allocation of which tracemalloc itself traces: seconds for a large
    heap. Grouping the raw ``(domain, size, traceback, nframe)`` tuples is a dict update
    per trace.
    """
    raw = getattr(snapshot.traces, "_traces", None)
    if not isinstance(raw, list):  # a Python whose snapshot is shaped otherwise
        return {
            tuple((f.filename, f.lineno) for f in reversed(stat.traceback)): (
                stat.count,
                stat.size,
            )
            for stat in snapshot.statistics("traceback")
        }
    # Hot loop under tracemalloc: appending to a list allocates rarely, where adding up
    # ints past 256 would allocate (and trace) an int per trace; sum() adds in C.
    sizes: dict[RawTraceback, list[int]] = {}
    for trace in raw:
        bucket = sizes.get(trace[2])
        if bucket is None:
            bucket = sizes[trace[2]] = []
        bucket.append(trace[1])
    return {traceback: (len(each), sum(each)) for traceback, each in sizes.items()}


class _Namer:
    """Names each ``(file, line)`` once, after the innermost function that owns it.

    tracemalloc records only file and line. The functions alive in the process (found
    through the garbage collector, no source compiled) say which code owns which lines;
    lines owned by no live function are module or class level.
    """

    def __init__(self, files: set[str]) -> None:
        self._index = _code_index(files)
        self._frames: dict[tuple[str, int], tuple[Frame, bool]] = {}

    def stack(self, traceback: RawTraceback) -> tuple[Frame, ...]:
        """The named stack, leaf first (tracemalloc's raw order)."""
        named: list[Frame] = []
        inlined = False
        for where in traceback:
            entry = self._frames.get(where)
            if entry is None:
                name, comprehension = _owner(self._index, where[0], where[1])
                entry = self._frames[where] = (Frame(name, where[0], 0, where[1]), comprehension)
            # 3.11 runs a comprehension in a frame of its own, on the same line as its
            # function's frame; named after the function, the two are one frame (as 3.12+).
            if inlined and named[-1] is entry[0]:
                inlined = entry[1]
                continue
            named.append(entry[0])
            inlined = entry[1]
        return tuple(named)


_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>"})

Index = dict[str, tuple[list[int], list[CodeType], dict[CodeType, CodeType]]]


def _code_index(files: set[str]) -> Index:
    """Per file, its live code objects sorted by first line, and each one's parent."""
    found: dict[str, dict[int, CodeType]] = {}
    parents: dict[CodeType, CodeType] = {}
    for obj in gc.get_objects():
        if not isinstance(obj, FunctionType) or obj.__code__.co_filename not in files:
            continue
        for code in _with_nested(obj.__code__, parents):
            found.setdefault(code.co_filename, {})[id(code)] = code
    index = {}
    for filename, codes in found.items():
        ordered = sorted(codes.values(), key=lambda c: c.co_firstlineno)
        index[filename] = ([c.co_firstlineno for c in ordered], ordered, parents)
    return index


def _owner(index: Index, filename: str, line: int) -> tuple[str, bool]:
    """The qualified name owning the line, and whether a comprehension owns it."""
    entry = index.get(filename)
    if entry is not None:
        firsts, codes, parents = entry
        # The innermost owner starts last among the code objects whose lines hold `line`.
        position = bisect.bisect_right(firsts, line) - 1
        for code in reversed(codes[max(0, position - 64) : position + 1]):
            if line in _code_lines(code):
                # A list, set or dict comprehension is part of its function (3.12+
                # inlines them): name the line after the function.
                comprehension = code.co_name in _COMPREHENSIONS
                owner = code
                while owner.co_name in _COMPREHENSIONS and owner in parents:
                    owner = parents[owner]
                if owner.co_name in _COMPREHENSIONS or owner.co_name == "<module>":
                    break
                return owner.co_qualname, comprehension
    return f"{os.path.splitext(os.path.basename(filename))[0]}:{line}", False


_CODE_LINES: dict[CodeType, frozenset[int]] = {}


def _code_lines(code: CodeType) -> frozenset[int]:
    # Cached: walking co_lines() allocates, which tracemalloc makes slow.
    lines = _CODE_LINES.get(code)
    if lines is None:
        lines = _CODE_LINES[code] = frozenset(
            line for _, _, line in code.co_lines() if line is not None
        )
    return lines


def _with_nested(code: CodeType, parents: dict[CodeType, CodeType]) -> list[CodeType]:
    out = [code]
    for const in code.co_consts:
        if isinstance(const, CodeType):
            parents[const] = code
            out.extend(_with_nested(const, parents))
    return out
