"""A pure-Python sampling profiler over ``sys._current_frames()``, and its output formats.

A background thread wakes ``hz`` times a second. Each round it reads every thread's CPU
clock (new threads count from zero, so a thread per request counts once seen), then
walks every thread's Python stack, again when another thread ran during the walk and cut
a coroutine stack (so a running coroutine's frames are all there). The ``wall`` profile
is every thread's stack weighted by the time that really passed until the next round
(rounds that come late under load do not shorten it).

The ``cpu`` profile needs to know which threads were *running*, not only how much CPU
they used: a thread that worked and then parked on a condition would otherwise charge
its work to the condition. Of the threads that used CPU since the last round, those
blocked in a call (a sleep, ``select``, a socket, a lock, a condition, a queue: see
``_threadstate``) are parked, and their places are parking places; the others, waiting
for the GIL or on a CPU in native code, are on-CPU samples unless they sit at a parking
place (they have just woken there). A thread waiting for the GIL is found where it last
ran, but more often where more threads contend (it waits longer for each turn there):
the threads caught in one round share one sample, so that a thread's samples follow its
running time. Each thread's CPU time is shared among its on-CPU samples. While a
profile runs, the interpreter's switch interval is lowered so that a thread holding the
GIL is caught where it works rather than where it next blocks; it is restored afterwards.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from inspect import CO_ASYNC_GENERATOR, CO_COROUTINE, CO_GENERATOR, CO_ITERABLE_COROUTINE
from types import CodeType, FrameType

from clue.debug._pprof import Frame, ProfileBuilder
from clue.debug._threadstate import BLOCKED, ThreadStates, clock_id, read_clock, thread_clock

__all__ = [
    "Key",
    "Profile",
    "clip_stack",
    "clipped",
    "cpu_clock_available",
    "sample",
    "to_collapsed",
    "to_pprof",
    "to_speedscope",
    "walk_stack",
]

MAX_DEPTH = 512
"""Deeper stacks keep their innermost and outermost frames, with a marker between."""

ROOT_FRAMES = 64
"""How many outermost frames a stack deeper than ``MAX_DEPTH`` keeps."""

OMITTED_NAME = "clue.debug.frames_omitted"
"""The marker frame's name; its line is the number of frames left out."""

SWITCH_INTERVAL = 0.0002
"""``sys.setswitchinterval`` while a profile runs (when the process's is longer)."""

Stack = tuple[Frame, ...]  # leaf first
Key = tuple[str, Stack]  # (thread name, stack)
Site = tuple[CodeType, int]  # the leaf frame's code and instruction


@dataclass
class Profile:
    """What a sampling run saw, per ``(thread name, stack)``.

    ``counts`` are rounds in which the stack was seen, ``wall_ns`` the time those rounds
    stood for, ``cpu_ns`` the CPU time spent in the stack (only when ``has_cpu``).
    ``sampler`` names what produced it (``builtin`` or ``py-spy``), ``notes`` say more
    (both go into the outputs).
    """

    interval_ns: int
    start_ns: int = 0
    duration_ns: int = 0
    rounds: int = 0
    counts: Counter[Key] = field(default_factory=Counter)
    wall_ns: Counter[Key] = field(default_factory=Counter)
    cpu_ns: Counter[Key] = field(default_factory=Counter)
    has_cpu: bool = False
    on_cpu_samples: int = 0
    threads_seen: int = 0
    truncated_stacks: int = 0
    sampler: str = "builtin"
    notes: list[str] = field(default_factory=list)


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
    sampler = _Sampler(profile, set(exclude))
    worker = threading.Thread(
        target=sampler.run, args=(seconds, interval, halt), name="clue-debug-profiler"
    )
    worker.daemon = True
    previous = sys.getswitchinterval()
    lowered = min(previous, SWITCH_INTERVAL)
    sys.setswitchinterval(lowered)
    try:
        worker.start()
        worker.join()
    finally:
        if sys.getswitchinterval() == lowered:  # unless the application changed it since
            sys.setswitchinterval(previous)
    return profile


def cpu_clock_available() -> bool:
    """Whether per-thread CPU time can be read here (Linux thread CPU clocks)."""
    return thread_clock(threading.get_native_id()) is not None


@dataclass
class _Thread:
    name: str
    ident: int
    native_id: int
    clock_id: int
    last_cpu: int
    cpu_ns: int = 0
    hits: dict[tuple[Stack, Site], float] = field(default_factory=dict)
    seen: Counter[tuple[Stack, Site]] = field(default_factory=Counter)
    ended: bool = False


class _Sampler:
    def __init__(self, profile: Profile, skip: set[int]) -> None:
        self.profile = profile
        self.skip = skip
        self.cache: dict[tuple[CodeType, int], Frame] = {}
        self.threads: dict[tuple[int, int], _Thread] = {}
        self.last_keys: list[Key] = []
        self.states = ThreadStates()
        # Where threads were found blocked: a sleep, select, socket, lock, condition or
        # queue wait. A thread found at such a place waiting for the GIL has just woken
        # from that call: it did not work there, and the sample is not an on-CPU one.
        self.parking: set[Site] = set()

    def run(self, seconds: float, interval: float, halt: threading.Event) -> None:
        self.skip.add(threading.get_ident())
        profile = self.profile
        profile.has_cpu = cpu_clock_available()
        started = time.monotonic_ns()
        deadline = started + int(seconds * 1e9)
        previous = started
        process_before, own_before = time.process_time_ns(), time.thread_time_ns()
        try:
            while not halt.is_set():
                now = time.monotonic_ns()
                # A round's stacks stand for the time until the next round: what really
                # passed, however late that round is.
                self._credit_wall(now - previous)
                previous = now
                self._round(first=profile.rounds == 0)
                profile.rounds += 1
                after = time.monotonic_ns()
                if after >= deadline:
                    break
                # Fell behind? Do not burst to catch up: wait one interval from now at most.
                wait = min(now + profile.interval_ns, deadline) - after
                if wait > 0:
                    halt.wait(wait / 1e9)
        finally:
            end = time.monotonic_ns()
            self._credit_wall(end - previous)
            for state in self.threads.values():  # the CPU used since the last round
                cpu = read_clock(state.clock_id)
                state.ended = cpu < 0
                self._add_cpu(state, cpu)
            profile.duration_ns = end - started
            # CPU of threads never seen (born and ended between two rounds, or ended
            # before their last reading): what the process used besides the threads
            # read and this one.
            process = time.process_time_ns() - process_before
            own = time.thread_time_ns() - own_before
            read = sum(state.cpu_ns for state in self.threads.values())
            self._share_cpu(max(0, process - own - read) if profile.has_cpu else 0)

    def _credit_wall(self, wall: int) -> None:
        for key in self.last_keys:
            self.profile.wall_ns[key] += wall

    def _round(self, *, first: bool) -> None:
        profile = self.profile
        threads = [t for t in threading.enumerate() if t.ident not in self.skip]
        # 1. Which threads did work since the last round (clock reads keep the GIL).
        worked: dict[int, tuple[_Thread, int]] = {}
        if profile.has_cpu:
            for thread in threads:
                state = self._state(thread, first)
                if state is None:
                    continue
                cpu = read_clock(state.clock_id)
                if cpu > state.last_cpu:
                    state.cpu_ns += cpu - state.last_cpu
                    state.last_cpu = cpu
                    worked[state.ident] = (state, cpu)
        # 2. Every stack, walked without a call that may release the GIL. The interpreter
        # may still hand the GIL over between two instructions of the walk: a coroutine
        # stack cut that way (its thread ran and the coroutine suspended) is walked again.
        names = {t.ident: t.name for t in threads}
        keys = self.last_keys = []
        found: list[tuple[_Thread, int, Stack, Site]] = []
        for ident, leaf in sys._current_frames().items():
            if ident in self.skip:
                continue
            frame, stack = _walk_thread(ident, leaf, self.cache)
            key = (names.get(ident) or f"thread-{ident}", stack)
            profile.counts[key] += 1
            keys.append(key)
            if clipped(stack):
                profile.truncated_stacks += 1
            entry = worked.get(ident)
            if entry is not None:
                found.append((*entry, stack, (frame.f_code, frame.f_lasti)))
        # 3. Where each thread that worked is now: waiting for the GIL (it was running
        # Python, or has just woken), on a CPU without the GIL (native code), or blocked
        # in another call. Read with the GIL held where libc is reachable, so that the
        # states and the stacks just walked are one snapshot.
        states = self.states
        caught: list[tuple[_Thread, Stack, Site]] = []
        for state, cpu, stack, site in found:
            state.seen[stack, site] += 1
            if states.where(state.native_id) != BLOCKED:
                caught.append((state, stack, site))
            elif read_clock(state.clock_id) == cpu:
                # Blocked, and has not run since its stack was walked (it may have, if
                # the reading let the GIL go): its frames are where the call was made.
                self.parking.add(site)
        # 4. A thread is caught where it last ran, but it is caught more often where
        # more threads contend for the GIL (it waits longer there for each turn): the
        # threads caught in one round share one sample, so that a thread's samples
        # follow its running time rather than its waiting time.
        profile.on_cpu_samples += len(caught)
        for state, stack, site in caught:
            state.hits[stack, site] = state.hits.get((stack, site), 0.0) + 1 / len(caught)

    def _state(self, thread: threading.Thread, first: bool) -> _Thread | None:
        ident, native = thread.ident, thread.native_id
        if ident is None or native is None:
            return None
        state = self.threads.get((ident, native))
        if state is None:
            clock = clock_id(native)
            cpu = read_clock(clock)
            if cpu < 0:  # ended since enumerate()
                return None
            # Threads running when the profile starts are counted from now; any later
            # thread from its start (a thread's CPU clock starts at zero).
            state = self.threads[(ident, native)] = _Thread(
                thread.name, ident, native, clock, cpu if first else 0
            )
            self.profile.threads_seen += 1
        return state

    @staticmethod
    def _add_cpu(state: _Thread, cpu: int) -> None:
        if cpu > state.last_cpu:
            state.cpu_ns += cpu - state.last_cpu
            state.last_cpu = cpu

    def _share_cpu(self, unseen: int) -> None:
        # Each thread's CPU time is shared among its on-CPU samples, away from parking
        # places; a thread never caught running (a short-lived one, typically) shares
        # its CPU among the stacks it was seen in while it worked. CPU nobody could be
        # given, and that of threads never seen, goes to the samples of the threads that
        # ended during the profile (they are the short-lived ones), else to everyone's.
        profile = self.profile
        parking = self.parking
        placed: list[tuple[_Thread, dict[Stack, float], float]] = []
        unplaced = unseen
        for state in self.threads.values():
            hits = _away_from(state.hits, parking)
            if not hits:
                hits = _away_from(state.seen, parking)
            total = sum(hits.values())
            if total:
                placed.append((state, hits, total))
            else:
                unplaced += state.cpu_ns
        heirs = [entry for entry in placed if entry[0].ended] or placed
        heirs_total = sum(total for _, _, total in heirs)
        for state, hits, total in placed:
            for stack, weight in hits.items():
                profile.cpu_ns[(state.name, stack)] += int(state.cpu_ns * weight / total)
        if unplaced and heirs_total:
            for state, hits, _ in heirs:
                for stack, weight in hits.items():
                    profile.cpu_ns[(state.name, stack)] += int(unplaced * weight / heirs_total)


def _away_from(
    samples: Mapping[tuple[Stack, Site], float], parking: set[Site]
) -> dict[Stack, float]:
    kept: dict[Stack, float] = {}
    for (stack, site), weight in samples.items():
        if site not in parking:
            kept[stack] = kept.get(stack, 0.0) + weight
    return kept


_SUSPENDABLE = CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_GENERATOR | CO_ASYNC_GENERATOR

REWALKS = 8
"""How many times a thread's stack found cut at a coroutine is walked again."""


def _walk_thread(
    ident: int, frame: FrameType, cache: dict[tuple[CodeType, int], Frame]
) -> tuple[FrameType, Stack]:
    """The thread's leaf frame and its whole stack, leaf first.

    The walk is Python code, and the interpreter hands the GIL to other threads between
    its instructions (every switch interval, which a profile lowers). When the walked
    thread runs meanwhile and its coroutine suspends, the coroutine's frame no longer
    links to its caller (``f_back`` is ``None`` while suspended): the walk ends at the
    coroutine, cut below it. A thread's outermost frame is never a coroutine's or a
    generator's unless this happened (or native code drives one without a Python
    caller): such a stack is walked again from the thread's current leaf frame.
    """
    stack, root = _walk(frame, cache)
    for _ in range(REWALKS):
        if root is None or not root.f_code.co_flags & _SUSPENDABLE:
            break
        current = sys._current_frames().get(ident)
        if current is None:  # the thread ended
            break
        frame = current
        stack, root = _walk(frame, cache)
    return frame, stack


def walk_stack(frame: FrameType | None, cache: dict[tuple[CodeType, int], Frame]) -> Stack:
    """The stack from ``frame`` outwards, leaf first.

    Deeper than ``MAX_DEPTH``, the innermost frames and the ``ROOT_FRAMES`` outermost
    are kept, joined by a marker frame named ``OMITTED_NAME`` whose line says how many
    frames were left out.
    """
    return _walk(frame, cache)[0]


def _walk(
    frame: FrameType | None, cache: dict[tuple[CodeType, int], Frame]
) -> tuple[Stack, FrameType | None]:
    # Hot path (every thread, every round): one Frame per (code, line), built once.
    frames: list[Frame] = []
    root = frame
    while frame is not None:
        root = frame
        key = (frame.f_code, frame.f_lineno or 0)
        entry = cache.get(key)
        if entry is None:
            code = key[0]
            entry = cache[key] = Frame(
                code.co_qualname, code.co_filename, code.co_firstlineno, key[1]
            )
        frames.append(entry)
        frame = frame.f_back
    return clip_stack(frames), root


def clip_stack(frames: list[Frame]) -> Stack:
    """``frames`` (leaf first) as a stack of at most ``MAX_DEPTH`` frames: deeper, the
    innermost and the ``ROOT_FRAMES`` outermost, joined by an ``OMITTED_NAME`` marker."""
    if len(frames) <= MAX_DEPTH:
        return tuple(frames)
    leaf = MAX_DEPTH - ROOT_FRAMES - 1
    omitted = len(frames) - leaf - ROOT_FRAMES
    marker = Frame(OMITTED_NAME, "<clue.debug>", 0, omitted)
    return (*frames[:leaf], marker, *frames[-ROOT_FRAMES:])


def clipped(stack: Stack) -> bool:
    """Whether ``clip_stack`` left frames out of ``stack``."""
    return len(stack) == MAX_DEPTH and stack[-ROOT_FRAMES - 1].name == OMITTED_NAME


def to_pprof(profile: Profile) -> bytes:
    """The gzipped pprof ``Profile``: ``samples``/count, ``wall``/nanoseconds and, where
    per-thread CPU time is readable, ``cpu``/nanoseconds (then pprof's default view)."""
    types = [("samples", "count"), ("wall", "nanoseconds")]
    if profile.has_cpu:
        types.append(("cpu", "nanoseconds"))  # the last type is pprof's default view
    comments = [f"sampler: {profile.sampler}"]
    if profile.sampler == "builtin":
        clocks = "wall clock and per-thread CPU time" if profile.has_cpu else "wall clock"
        comments.append(f"clue-debug sampling profiler, {profile.rounds} rounds, {clocks}")
    comments.append(f"{profile.threads_seen} threads seen, {profile.on_cpu_samples} on-CPU samples")
    comments.extend(profile.notes)
    if profile.truncated_stacks:
        comments.append(f"{profile.truncated_stacks} stacks deeper than {MAX_DEPTH} frames")
    builder = ProfileBuilder(
        types,
        period_type=("wall", "nanoseconds"),
        period=profile.interval_ns,
        time_nanos=profile.start_ns,
        duration_nanos=profile.duration_ns,
        comments=comments,
    )
    keys = set(profile.counts) | {k for k, v in profile.cpu_ns.items() if v > 0}
    for key in sorted(keys, key=_order):
        values = [profile.counts.get(key, 0), _wall(profile, key)]
        if profile.has_cpu:
            values.append(profile.cpu_ns.get(key, 0))
        builder.add(key[1], values, {"thread": key[0]})
    return builder.encode()


def _order(key: Key) -> tuple[str, int]:
    return (key[0], len(key[1]))


def _wall(profile: Profile, key: Key) -> int:
    wall = profile.wall_ns.get(key)
    return wall if wall is not None else profile.counts.get(key, 0) * profile.interval_ns


def frame_label(frame: Frame) -> str:
    """``qualname (file:line)`` with the characters the folded format reserves replaced."""
    text = f"{frame.name} ({frame.filename}:{frame.line})"
    return _clean(text)


def _clean(text: str) -> str:
    return "".join(
        "_" if ch == ";" or ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" else ch for ch in text
    )


def _weights(profile: Profile, weight: str) -> dict[Key, int]:
    if weight == "cpu":
        return {key: ns for key, ns in profile.cpu_ns.items() if ns > 0}
    return {key: _wall(profile, key) for key in profile.counts}


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
        "name": f"{name} ({weight}, {profile.sampler})",
        "activeProfileIndex": 0,
        "exporter": "clue-debug",
        "sampler": profile.sampler,
        "notes": profile.notes,
    }
    return json.dumps(doc, separators=(",", ":"))
