"""A pure-Python sampling profiler over ``sys._current_frames()``, and its output formats.

A background thread wakes at a fixed rate and records the Python stack of every other
thread. No signals are used, so it works from any thread, under any server, on any
platform. Every sample counts wall-clock presence (a thread blocked in ``select`` is
sampled too, which is what a service's latency is made of). Where Linux exposes each
thread's CPU time (``/proc/self/task/<tid>/schedstat``, nanoseconds), the CPU time a
thread used since the previous round is attributed to the stack sampled now, giving a
real CPU profile beside the wall-clock one. Each sample carries its thread name.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import CodeType, FrameType

from ._pprof import Frame, ProfileBuilder

__all__ = [
    "Profile",
    "cpu_clock_available",
    "sample",
    "to_collapsed",
    "to_pprof",
    "to_speedscope",
    "walk_stack",
]

MAX_DEPTH = 256
"""Deeper stacks keep their innermost frames."""

Stack = tuple[Frame, ...]  # leaf first


@dataclass
class Profile:
    """What a sampling run saw: stack counts per thread."""

    interval_ns: int
    start_ns: int = 0
    duration_ns: int = 0
    rounds: int = 0
    counts: Counter[tuple[str, Stack]] = field(default_factory=Counter)
    cpu_ns: Counter[tuple[str, Stack]] = field(default_factory=Counter)
    has_cpu: bool = False


def sample(
    seconds: float,
    *,
    hz: int,
    exclude: Iterable[int] = (),
    stop: threading.Event | None = None,
) -> Profile:
    """Sample every thread's stack ``hz`` times a second for ``seconds`` seconds.

    Runs the sampling loop in a background thread and waits for it. ``exclude`` names
    thread idents not to sample (the caller's own thread, typically); ``stop`` ends the
    run early.
    """
    interval = 1.0 / hz
    profile = Profile(interval_ns=int(interval * 1e9), start_ns=time.time_ns())
    halt = stop if stop is not None else threading.Event()
    skip = set(exclude)
    worker = threading.Thread(
        target=_run, args=(profile, seconds, interval, skip, halt), name="clue-debug-profiler"
    )
    worker.daemon = True
    worker.start()
    worker.join()
    return profile


def _run(
    profile: Profile, seconds: float, interval: float, skip: set[int], halt: threading.Event
) -> None:
    skip.add(threading.get_ident())
    code_cache: dict[tuple[CodeType, int], Frame] = {}
    clock = _CpuClock()
    profile.has_cpu = clock.available
    started = time.monotonic()
    deadline = started + seconds
    next_tick = started
    try:
        while not halt.is_set():
            threads = {t.ident: t for t in threading.enumerate()}
            # Hot loop: one dict of frames per round; frames are cached per code and line.
            for ident, frame in sys._current_frames().items():
                if ident in skip:
                    continue
                thread = threads.get(ident)
                key = (
                    thread.name if thread is not None else f"thread-{ident}",
                    walk_stack(frame, code_cache),
                )
                profile.counts[key] += 1
                if thread is not None and thread.native_id is not None:
                    used = clock.used(thread.native_id)
                    if used:
                        profile.cpu_ns[key] += used
            profile.rounds += 1
            next_tick += interval
            now = time.monotonic()
            if now >= deadline:
                break
            # Fell behind (GIL contention)? Do not burst to catch up.
            next_tick = max(next_tick, now)
            halt.wait(min(next_tick, deadline) - now)
    finally:
        clock.close()
    profile.duration_ns = int((time.monotonic() - started) * 1e9)


def cpu_clock_available() -> bool:
    """Whether per-thread CPU time can be read here (Linux schedstat)."""
    return _CpuClock().available


class _CpuClock:
    """Per-thread CPU time from Linux's schedstat, read with pread on kept descriptors."""

    def __init__(self) -> None:
        self.available = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/schedstat")
        self._fds: dict[int, int] = {}
        self._last: dict[int, int] = {}

    def used(self, native_id: int) -> int:
        """CPU nanoseconds the thread used since the previous call (0 the first time)."""
        if not self.available:
            return 0
        try:
            fd = self._fds.get(native_id)
            if fd is None:
                fd = self._fds[native_id] = os.open(
                    f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY
                )
            now = int(os.pread(fd, 64, 0).split(maxsplit=1)[0])
        except (OSError, ValueError, IndexError):  # the thread ended, or no schedstat
            return 0
        last = self._last.get(native_id)
        self._last[native_id] = now
        return now - last if last is not None and now > last else 0

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def walk_stack(frame: FrameType | None, cache: dict[tuple[CodeType, int], Frame]) -> Stack:
    """The stack from ``frame`` outwards, leaf first, at most ``MAX_DEPTH`` frames."""
    # Hot path (every thread, every round): one Frame per (code, line), built once.
    frames: list[Frame] = []
    while frame is not None and len(frames) < MAX_DEPTH:
        key = (frame.f_code, frame.f_lineno or 0)
        entry = cache.get(key)
        if entry is None:
            code = key[0]
            entry = cache[key] = Frame(
                code.co_qualname, code.co_filename, code.co_firstlineno, key[1]
            )
        frames.append(entry)
        frame = frame.f_back
    return tuple(frames)


def to_pprof(profile: Profile) -> bytes:
    """The gzipped pprof ``Profile``: ``samples``/count, ``wall``/nanoseconds and, where
    per-thread CPU time is readable, ``cpu``/nanoseconds (then pprof's default view)."""
    types = [("samples", "count"), ("wall", "nanoseconds")]
    if profile.has_cpu:
        types.append(("cpu", "nanoseconds"))  # the last type is pprof's default view
    clocks = "wall clock and per-thread CPU time" if profile.has_cpu else "wall clock"
    builder = ProfileBuilder(
        types,
        period_type=("wall", "nanoseconds"),
        period=profile.interval_ns,
        time_nanos=profile.start_ns,
        duration_nanos=profile.duration_ns,
        comments=[f"clue-debug sampling profiler, {profile.rounds} rounds, {clocks}"],
    )
    for key, count in profile.counts.items():
        values = [count, count * profile.interval_ns]
        if profile.has_cpu:
            values.append(profile.cpu_ns.get(key, 0))
        builder.add(key[1], values, {"thread": key[0]})
    return builder.encode()


def frame_label(frame: Frame) -> str:
    """``qualname (file:line)`` with the characters the folded format reserves replaced."""
    text = f"{frame.name} ({frame.filename}:{frame.line})"
    return _clean(text)


def _clean(text: str) -> str:
    return "".join(
        "_" if ch == ";" or ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" else ch for ch in text
    )


def _weights(profile: Profile, weight: str) -> dict[tuple[str, Stack], int]:
    if weight == "cpu":
        return {key: ns for key, ns in profile.cpu_ns.items() if ns > 0}
    return {key: count * profile.interval_ns for key, count in profile.counts.items()}


def to_collapsed(profile: Profile, *, weight: str = "wall") -> str:
    """Brendan Gregg's folded stacks: ``thread;root;...;leaf value`` per line.

    The value is the number of samples (``weight="wall"``) or CPU nanoseconds (``"cpu"``).
    """
    lines: Counter[str] = Counter()
    values = profile.counts if weight == "wall" else _weights(profile, weight)
    for (thread, stack), value in values.items():
        parts = [_clean(thread), *(frame_label(f) for f in reversed(stack))]
        lines[";".join(parts)] += value
    return "".join(f"{key} {value}\n" for key, value in sorted(lines.items()))


def to_speedscope(
    profile: Profile, *, name: str = "clue-debug profile", weight: str = "wall"
) -> str:
    """A speedscope file: one sampled profile per thread, weights in wall or CPU nanoseconds."""
    frame_index: dict[Frame, int] = {}
    frames: list[dict[str, object]] = []
    per_thread: dict[str, tuple[list[list[int]], list[int]]] = {}
    for (thread, stack), value in sorted(
        _weights(profile, weight).items(), key=lambda kv: kv[0][0]
    ):
        indices = []
        for frame in reversed(stack):  # speedscope wants root first
            index = frame_index.get(frame)
            if index is None:
                index = frame_index[frame] = len(frames)
                frames.append({"name": frame.name, "file": frame.filename, "line": frame.line})
            indices.append(index)
        samples, weights = per_thread.setdefault(thread, ([], []))
        samples.append(indices)
        weights.append(value)
    profiles = [
        {
            "type": "sampled",
            "name": thread,
            "unit": "nanoseconds",
            "startValue": 0,
            "endValue": sum(weights),
            "samples": samples,
            "weights": weights,
        }
        for thread, (samples, weights) in per_thread.items()
    ]
    doc = {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": profiles,
        "name": f"{name} ({weight})",
        "activeProfileIndex": 0,
        "exporter": "clue-debug",
    }
    return json.dumps(doc, separators=(",", ":"))
