"""Heap and allocation profiles from ``tracemalloc``, as pprof or text.

tracemalloc costs memory and slows allocations while it traces, so it is off until the
first ``heap``/``allocs`` request starts it; that answer says so, and covers only what
was allocated since. ``?stop=1`` stops tracing after the snapshot.
"""

from __future__ import annotations

import bisect
import functools
import linecache
import os
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from types import CodeType

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
    # Leave out tracemalloc's own bookkeeping and this report's (source tables, frames).
    ignore = (
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, __file__, all_frames=True),
    )
    sites: list[tuple[tuple[Frame, ...], int, int]] = []
    if kind == "allocs" and seconds > 0:
        before = tracemalloc.take_snapshot().filter_traces(ignore)
        time.sleep(seconds)  # the window being measured, not a wait for an event
        after = tracemalloc.take_snapshot().filter_traces(ignore)
        notes.append(f"allocations during {seconds:g}s still live at its end")
        sites.extend(
            (_stack(diff.traceback), diff.count_diff, diff.size_diff)
            for diff in after.compare_to(before, "traceback")
            if diff.size_diff > 0 and diff.count_diff > 0
        )
    else:
        snapshot = tracemalloc.take_snapshot().filter_traces(ignore)
        sites.extend(
            (_stack(stat.traceback), stat.count, stat.size)
            for stat in snapshot.statistics("traceback")
        )
    return HeapReport(kind=kind, sites=sites, notes=notes, started=started)


def _stack(traceback: Sequence[tracemalloc.Frame]) -> tuple[Frame, ...]:
    # tracemalloc lists frames oldest first; pprof wants the leaf first.
    return tuple(
        Frame(_function_at(f.filename, f.lineno), f.filename, 0, f.lineno)
        for f in reversed(traceback)
    )


def _function_at(filename: str, lineno: int) -> str:
    """The qualified name of the innermost function around ``filename:lineno``."""
    try:
        starts, names = _function_table(filename, _mtime(filename))
    except Exception:  # unreadable or unparsable source: name the site by its line
        return f"{os.path.basename(filename)}:{lineno}"
    index = bisect.bisect_right(starts, lineno) - 1
    return names[index] if index >= 0 else "<module>"


def _mtime(filename: str) -> float:
    try:
        return os.stat(filename).st_mtime
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=512)
def _function_table(filename: str, _mtime: float) -> tuple[list[int], list[str]]:
    # Compile the source once and map each line to the innermost code object owning it.
    source = "".join(linecache.getlines(filename))
    if not source:
        msg = f"no source for {filename}"
        raise LookupError(msg)
    owner: dict[int, tuple[int, str]] = {}  # line -> (depth, qualname)

    def visit(code: CodeType, depth: int) -> None:
        for _, _, line in code.co_lines():
            if line is not None and owner.get(line, (-1, ""))[0] < depth:
                owner[line] = (depth, code.co_qualname)
        for const in code.co_consts:
            if isinstance(const, CodeType):
                visit(const, depth + 1)

    visit(compile(source, filename, "exec", dont_inherit=True), 0)
    lines = sorted(owner)
    return lines, [owner[line][1] for line in lines]
