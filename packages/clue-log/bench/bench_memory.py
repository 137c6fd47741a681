"""clue-log memory benchmarks: what buffering holds, and what its accounting costs.

Run with ``python3 tools/run.py nox -s bench -- bench_memory`` (or ``python
bench_memory.py`` with clue-log and structlog installed). Memory is measured with
tracemalloc and as the growth of peak RSS in a fresh interpreter; timings are medians of
interleaved rounds (in a shuffled order: the slot right after another call reads high
otherwise), reported as ratios measured in the same process.

``CLUE_MEMORY_BEFORE``: another version of ``clue/log/_api.py`` (say ``git show
HEAD~1:packages/clue-log/src/clue/log/_api.py > /tmp/before.py``). Its ``_make`` is built
in this ``_api``'s namespace and M3 times its buffered call beside this one, in the same
rounds: a before and after for changes to the buffered call itself.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import textwrap
import time
import timeit
import tracemalloc
from collections.abc import Callable
from typing import Any

import structlog

from clue import log
from clue.log import _api, _budget

ROUNDS = int(os.environ.get("CLUE_BENCH_ROUNDS", "25"))
DEVNULL = open(os.devnull, "wb")  # noqa: SIM115 - lives for the whole run
RESULTS: list[tuple[str, bool, str]] = []
CONTEXTS, ENTRIES = 1_000, 100
BEFORE = os.environ.get("CLUE_MEMORY_BEFORE")


def bar(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))
    print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def open_contexts(n: int, entries: int) -> list[Any]:
    """``n`` open log contexts, each holding ``entries`` entries of a message and three
    small keywords."""
    held = []
    info = log.info
    for _ in range(n):
        cm = log.context()
        cm.__enter__()
        for j in range(entries):
            info("step", a=j, b="alice", c=1.5)
        held.append(cm)
    return held


def m1() -> None:
    print(f"M1  memory per buffered entry ({CONTEXTS:,} open contexts x {ENTRIES} entries)")
    log.configure(output=DEVNULL, max_buffered=ENTRIES, max_buffered_bytes=1 << 30)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    empty = open_contexts(CONTEXTS, 0)
    mid = tracemalloc.get_traced_memory()[0]
    full = open_contexts(CONTEXTS, ENTRIES)
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_ctx = (mid - base) / CONTEXTS
    per_entry = ((end - mid) - (mid - base)) / (CONTEXTS * ENTRIES)
    del empty, full
    rss = _rss_per_entry()
    print(f"      per open context (no entry), tracemalloc: {per_ctx:,.0f} bytes")
    print(f"      per entry, tracemalloc:                   {per_entry:,.0f} bytes")
    print(f"      per entry, peak RSS growth:               {rss:,.0f} bytes")
    bar("M1a entry <= 250 bytes (tracemalloc)", per_entry <= 250, f"{per_entry:,.0f} bytes")
    bar("M1b entry <= 250 bytes (peak RSS)", rss <= 250, f"{rss:,.0f} bytes")


def _rss_per_entry() -> float:
    # Peak RSS of a fresh interpreter holding the contexts, less one holding them empty.
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path[:0] = {sys.path!r}
        from clue import log
        log.configure(output=open(os.devnull, "wb"), max_buffered={ENTRIES},
                      max_buffered_bytes=1 << 30)
        held = []
        for _ in range({CONTEXTS}):
            cm = log.context()
            cm.__enter__()
            for j in range(int(sys.argv[1])):
                log.info("step", a=j, b="alice", c=1.5)
            held.append(cm)
        # VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's peak.
        with open("/proc/self/status") as status:
            print([line.split()[1] for line in status if line.startswith("VmHWM")][0])
        """
    )

    def peak(entries: int) -> int:
        out = subprocess.run(
            [sys.executable, "-c", script, str(entries)],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout.split()[-1]) * 1024  # kB

    return (peak(ENTRIES) - peak(0)) / (CONTEXTS * ENTRIES)


def m2() -> None:
    print("M2  10 000 requests open at once, 20 entries each: what they hold")
    log.configure(output=DEVNULL)
    gc.collect()
    before = _budget.held()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    held = open_contexts(10_000, 20)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    reserved = _budget.held() - before
    for cm in reversed(held):
        cm.__exit__(None, None, None)
    del held, cm
    gc.collect()
    after = _budget.held() - before
    print(f"      tracemalloc: {used / 2**20:,.1f} MiB ({used / 10_000:,.0f} bytes per request)")
    print(f"      reserved of the budget: {reserved / 2**20:,.1f} MiB (default bound 256 MiB)")
    bar("M2a reservations within the default budget", reserved <= 256 * 2**20, "")
    bar("M2b every reservation given back", after == 0, f"{after} bytes after")


def interleaved(fns: dict[str, Callable[[], Any]], number: int) -> dict[str, float]:
    # Thread CPU time, as bench_core's: time spent descheduled is not the function's.
    samples: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns)
    for _ in range(ROUNDS * 4):
        random.shuffle(order)
        for name in order:
            log.context().__enter__()  # a fresh buffer, as P1 does
            samples[name].append(
                timeit.Timer(fns[name], timer=time.thread_time).timeit(number) / number
            )
    return {name: statistics.median(s) for name, s in samples.items()}


def before_info() -> Callable[..., None] | None:
    """``info`` as ``CLUE_MEMORY_BEFORE``'s ``_make`` builds it, or None."""
    if not BEFORE:
        return None
    with open(BEFORE) as f:
        found = re.search(
            r"^def _make\(.*?^    return log_fn\n", f.read(), re.DOTALL | re.MULTILINE
        )
    if found is None:
        raise SystemExit(f"CLUE_MEMORY_BEFORE={BEFORE!r}: no _make in it")
    namespace = dict(vars(_api))
    exec(compile(found.group(0), BEFORE, "exec"), namespace)
    made: Callable[..., None] = namespace["_make"]("info")
    return made


def m3() -> None:
    print("M3  the accounting on the buffered call")
    structlog.reset_defaults()
    drop = structlog.make_filtering_bound_logger(logging.WARNING)(
        structlog.PrintLogger(open(os.devnull, "w")),  # noqa: SIM115
        [],
        {},
    ).info
    log.configure(output=DEVNULL)
    info = log.info
    payload = "x" * 200
    fns: dict[str, Callable[[], Any]] = {
        "dropped": lambda: drop("msg", a=1, b=2, c=3),
        "small": lambda: info("msg", a=1, b=2, c=3),
        "strings": lambda: info("msg", a=payload, b=payload, c=payload),
        "mixed": lambda: info("msg", a=1, b="alice", c=1.5),
    }
    old = before_info()
    if old is not None:
        fns["before small"] = lambda: old("msg", a=1, b=2, c=3)
        fns["before strings"] = lambda: old("msg", a=payload, b=payload, c=payload)
        fns["before mixed"] = lambda: old("msg", a=1, b="alice", c=1.5)
    got = interleaved(fns, 900)
    d = got["dropped"]
    print(f"      structlog dropped call:           {got['dropped'] * 1e9:,.0f} ns")
    for kind, what in (
        ("small", "three small keywords"),
        ("strings", "three 200-character strings"),
        ("mixed", "1, 'alice', 1.5"),
    ):
        line = f"      clue, {what + ':':29s} {got[kind] * 1e9:,.0f} ns ({got[kind] / d:.2f}x)"
        if old is not None:
            was = got["before " + kind]
            line += f", before {was * 1e9:,.0f} ns ({was / d:.2f}x)"
        print(line)
    bar(
        "M3a P1 with the accounting <= 3x structlog dropped",
        got["small"] <= 3 * d,
        f"{got['small'] / d:.2f}x",
    )
    bar(
        "M3b strings cost no more than 1.2x small values",
        got["strings"] <= 1.2 * got["small"],
        f"{got['strings'] / got['small']:.2f}x",
    )


def m4() -> None:
    print("M4  a buffered call into a buffer full by count (max_buffered entries held)")
    log.configure(output=DEVNULL)
    info = log.info
    samples: dict[str, list[float]] = {"fresh": [], "full": []}
    for _ in range(ROUNDS * 4):
        log.context().__enter__()  # a fresh buffer, as P1 does
        call = timeit.Timer(lambda: info("msg", a=1, b="two", c=3.0), timer=time.thread_time)
        fresh = call.timeit(200) / 200
        log.context().__enter__()
        for _ in range(1000):  # the default max_buffered
            info("x")
        full = call.timeit(200) / 200
        samples["fresh"].append(fresh)
        samples["full"].append(full)
    fresh, full = (statistics.median(samples[k]) for k in ("fresh", "full"))
    print(f"      fresh context:               {fresh * 1e9:,.0f} ns")
    print(f"      buffer full by count:        {full * 1e9:,.0f} ns")
    bar(
        "M4a a full buffer's call (the oldest dropped) <= 2x a fresh context's",
        full <= 2 * fresh,
        f"{full / fresh:.2f}x",
    )


def main() -> int:
    print(
        f"clue-log memory benchmarks — Python {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {ROUNDS} rounds (medians)"
    )
    for fn in (m1, m2, m3, m4):
        fn()
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"bars: {len(RESULTS) - len(failed)} met, {len(failed)} not met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
