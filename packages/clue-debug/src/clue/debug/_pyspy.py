"""The py-spy backend of ``/debug/pprof/profile``: ``py-spy record`` against this process.

py-spy reads the process's memory from outside (ptrace permission: root, or
``CAP_SYS_PTRACE`` in a container) and sees every thread's Python stack as it is, with
no GIL hand-off needed. A profile runs it as a subprocess, with nothing but validated
numbers on its command line:

- ``cpu``: ``py-spy record --gil`` — only the thread holding the GIL, idle stacks left
  out. Holding the GIL is not using a CPU (a thread preempted by the OS keeps it), so
  the samples only say *where* each thread works: each thread's CPU, read from its own
  CPU clock before and after, is shared among its samples, and the CPU of threads that
  ended meanwhile (the process's CPU no live thread accounts for) among the samples of
  the threads py-spy saw that are gone. Without thread clocks, a sample is an interval;
- ``wall``: ``py-spy record --idle`` — every thread, running or not; a thread's samples
  stand for the profile's duration shared among the rounds.

Both run side by side when both are wanted (pprof). Output is read from ``--format
raw --threads`` into unnamed temporary files (nothing on disk to leave behind); a run that
outlives its deadline is killed. Any failure is a ``PySpyUnavailable`` with a reason
(the caller falls back to the in-process sampler, or says why it cannot).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sysconfig
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from clue.debug._pprof import Frame
from clue.debug._sampler import Key, Profile, clip_stack, clipped
from clue.debug._threadstate import thread_clock

__all__ = [
    "GRACE_SECONDS",
    "MAX_LINE_BYTES",
    "MAX_OUTPUT_BYTES",
    "PySpyUnavailable",
    "find_pyspy",
    "record",
]

GRACE_SECONDS = 10.0
"""How long past the profile's duration a py-spy run may take (attaching, writing)."""

MAX_OUTPUT_BYTES = 256 * 1024 * 1024
"""How much of a py-spy run's output is read; the profile's comments say when more was left."""

MAX_LINE_BYTES = 4 * 1024 * 1024
"""A longer output line (a stack) is left out, and counted in the profile's comments."""

_STDERR_TAIL = 4096
_THREAD = re.compile(r"thread \((0x[0-9a-fA-F]+|\d+)\)(?:: (.*))?\Z", re.DOTALL)
_FRAME = re.compile(r"(.*) \((.*):(\d+)\)\Z", re.DOTALL)
_ERRORS = re.compile(r"Samples: (\d+) Errors: (\d+)")
_REFUSED = ("permission denied", "operation not permitted", "ptrace")


class PySpyUnavailable(Exception):  # noqa: N818 -- a state, not an error of the caller's
    """py-spy could not produce a profile; ``reason`` says why (one line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def find_pyspy(configured: str | None = None) -> str | None:
    """The py-spy executable to run.

    ``configured`` if given (and executable), else the one on ``PATH``, else the one installed
    beside this interpreter (``clue-debug[pyspy]`` in a virtual environment that is not activated).

    Relative ``PATH`` entries (``.``, an empty one) are skipped: they name whatever
    directory the process is in, and a ``py-spy`` planted there is not to be run.
    """
    if configured is not None:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    entries = os.environ.get("PATH", os.defpath).split(os.pathsep)
    absolute = os.pathsep.join(entry for entry in entries if os.path.isabs(entry))
    found = shutil.which("py-spy", path=absolute) if absolute else None
    if found is not None:
        return found
    scripts = sysconfig.get_path("scripts")
    return shutil.which("py-spy", path=scripts) if scripts else None


@dataclass
class _Run:
    sample_type: str
    output: IO[bytes]
    errors: IO[bytes]
    process: subprocess.Popen[bytes] | None = None


def record(
    exe: str,
    seconds: float,
    *,
    hz: int,
    cpu: bool = True,
    wall: bool = True,
    exclude_native: Iterable[int] = (),
    grace: float | None = None,
) -> Profile:
    """Profile this process with py-spy for ``seconds``.

    py-spy's ``--duration`` takes whole seconds: it is given ``seconds`` rounded up, and
    stopped with ``SIGINT`` (on which it writes its output) once ``seconds`` have passed.
    Its output and messages go to unnamed temporary files (the output by ``/dev/fd/N``),
    so nothing is left on disk even when this process is killed while py-spy runs.

    Raises:
        PySpyUnavailable: py-spy failed, was refused, or outlived its deadline.
    """
    grace = GRACE_SECONDS if grace is None else grace
    whole = max(1, math.ceil(seconds))  # py-spy's --duration: whole seconds, a backstop
    interval_ns = 1_000_000_000 // hz
    profile = Profile(interval_ns=interval_ns, start_ns=time.time_ns(), sampler="py-spy")
    profile.duration_ns = int(seconds * 1e9)
    runs: list[_Run] = []
    files = contextlib.ExitStack()
    clocks_before, process_before = _thread_clocks(), time.process_time_ns()
    split = _split_names()
    try:
        for kind, wanted in (("cpu", cpu), ("wall", wall)):
            if wanted:
                # closed by `files` in the finally below
                output = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
                errors = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
                runs.append(_Run(kind, output, errors))
        for run in runs:
            fd = run.output.fileno()
            command = [
                exe,
                "record",
                *("--pid", str(os.getpid()), "--rate", str(int(hz))),
                *("--duration", str(whole), "--format", "raw", "--output", f"/dev/fd/{fd}"),
                *("--threads", "--full-filenames", "--nonblocking"),
                "--gil" if run.sample_type == "cpu" else "--idle",
            ]
            run.process = subprocess.Popen(  # noqa: S603 -- fixed executable, numbers only
                command,
                stdin=subprocess.DEVNULL,
                stdout=run.errors,
                stderr=run.errors,
                close_fds=True,
                pass_fds=(fd,),
                start_new_session=True,
            )
        stop_at = time.monotonic() + seconds
        deadline = stop_at + grace
        sampled = _stop_all(runs, seconds, stop_at, stop_at + grace / 2)
        if sampled > 0:
            # What py-spy really sampled: it may attach late on a loaded machine.
            profile.duration_ns = int(sampled * 1e9)
        for run in runs:
            assert run.process is not None
            try:
                code = run.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                msg = f"py-spy did not finish within {seconds + grace:g}s"
                raise PySpyUnavailable(msg) from None
            if code != 0:
                raise PySpyUnavailable(_failure(code, _tail(run.errors)))
        used = _used_cpu(clocks_before, _thread_clocks())
        ended = time.process_time_ns() - process_before - sum(used.values())
        split |= _split_names()
        excluded = set(exclude_native) | split
        if split:
            profile.notes.append(
                f"samples of {len(split)} threads whose names hold a line break were left "
                "out (py-spy's output cannot tell their stacks from their names)"
            )
        for run in runs:
            left_out: list[int] = [0, 0]  # bytes beyond the bound, lines too long
            lines = _lines(run.output, left_out)
            _add(profile, run.sample_type, lines, excluded, used, ended)
            if any(left_out):
                profile.notes.append(
                    f"py-spy ({run.sample_type}) output: {left_out[0]} bytes beyond the first "
                    f"{MAX_OUTPUT_BYTES} and {left_out[1]} lines longer than "
                    f"{MAX_LINE_BYTES} bytes were not read"
                )
        profile.notes.append(f"py-spy record --nonblocking, {hz} samples/s, {seconds:g}s")
        for run in runs:
            lost = _ERRORS.search(_tail(run.errors))
            if lost and int(lost.group(2)):
                profile.notes.append(
                    f"py-spy ({run.sample_type}) lost {lost.group(2)} of "
                    f"{int(lost.group(1)) + int(lost.group(2))} samples (stacks that changed "
                    "while read, as deep recursion does)"
                )
        return profile
    except OSError as exc:
        msg = f"py-spy could not be run: {exc.strerror or exc}"
        raise PySpyUnavailable(msg) from None
    finally:
        for run in runs:
            if run.process is not None:
                # the whole group, even when its leader ended: a wrapper's py-spy may not
                _signal(run.process, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run.process.wait(5)
        files.close()


def _lines(output: IO[bytes], left_out: list[int]) -> Iterator[str]:
    """The lines of ``output`` within its first ``MAX_OUTPUT_BYTES``.

    Each is at most ``MAX_LINE_BYTES`` long; ``left_out`` counts the bytes beyond and the lines
    too long.
    """
    output.seek(0)
    left = MAX_OUTPUT_BYTES
    too_long = False
    while left > 0:
        line = output.readline(min(left, MAX_LINE_BYTES + 1))
        if not line:
            break
        left -= len(line)
        whole = line.endswith(b"\n")
        if too_long or len(line) > MAX_LINE_BYTES:
            left_out[1] += not too_long
            too_long = not whole
            continue
        if whole or left > 0:
            yield line.decode("utf-8", "replace")
    left_out[0] = max(0, _size(output) - MAX_OUTPUT_BYTES)


def _size(file: IO[bytes]) -> int:
    return os.fstat(file.fileno()).st_size


def _stop_all(runs: list[_Run], seconds: float, stop_at: float, latest: float) -> float:
    """Interrupt each run once it has sampled for ``seconds``, and at ``latest`` at the latest.

    A run is interrupted only once it samples (an earlier SIGINT would kill it before it
    writes anything), and no sooner than ``stop_at``. py-spy may take a while to attach on a
    loaded machine, so a run that started late samples for ``seconds`` all the same. Returns
    the shortest time a run sampled, in seconds (0 when none was seen sampling).
    """
    started: dict[int, float] = {}
    stopped: dict[int, float] = {}
    pending = list(range(len(runs)))
    while pending:
        now = time.monotonic()
        for i in list(pending):
            run = runs[i]
            process = run.process
            assert process is not None
            if process.poll() is not None:  # ended on its own (its --duration)
                stopped[i] = now
                pending.remove(i)
                continue
            if i not in started and _sampling(run.errors):
                started[i] = now
            if i in started and now >= max(stop_at, started[i] + seconds):
                _signal(process, signal.SIGINT)
                stopped[i] = now
                pending.remove(i)
            elif now >= latest:
                if i in started:
                    _signal(process, signal.SIGINT)
                stopped[i] = now
                pending.remove(i)
        if pending:
            time.sleep(0.01)
    spans = [stopped[i] - started[i] for i in started if i in stopped]
    return max(0.0, min(spans)) if spans else 0.0


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal py-spy's whole process group, its own session's.

    A wrapper script that runs py-spy without ``exec`` is signalled with it. A group id is not
    given to another process while the group has a member, so this reaches py-spy's group or no
    process at all.
    """
    try:
        os.killpg(process.pid, signum)
    except OSError:
        if process.poll() is None:
            with contextlib.suppress(OSError):
                process.send_signal(signum)


def _sampling(errors: IO[bytes]) -> bool:
    try:
        return b"Sampling process" in os.pread(errors.fileno(), 4096, 0)
    except OSError:
        return False


def _tail(errors: IO[bytes]) -> str:
    try:
        start = max(0, _size(errors) - _STDERR_TAIL)
        return os.pread(errors.fileno(), _STDERR_TAIL, start).decode("utf-8", "replace")
    except OSError:
        return ""


def _failure(code: int, stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = next((line for line in lines if line.lower().startswith("error")), "")
    last = last or (lines[-1] if lines else "")
    last = "".join(ch if ch.isprintable() and ord(ch) < 128 else "?" for ch in last)[:200]
    if any(word in stderr.lower() for word in _REFUSED):
        return f"py-spy was not permitted to read the process (ptrace refused): {last}"
    return f"py-spy failed (exit {code}): {last}"


def _thread_clocks() -> dict[int, int]:
    """Every Python thread's CPU time by native id (empty where it cannot be read)."""
    clocks: dict[int, int] = {}
    for thread in threading.enumerate():
        native = thread.native_id
        cpu = thread_clock(native) if native is not None else None
        if native is not None and cpu is not None:
            clocks[native] = cpu
    return clocks


def _split_names() -> set[int]:
    """Native ids of the threads whose names hold a line break.

    py-spy writes names as they are, so such a name splits its line, and its first half would
    read as a stack (with whatever count the name says).
    """
    return {
        thread.native_id
        for thread in threading.enumerate()
        if thread.native_id is not None and "\n" in thread.name
    }


def _used_cpu(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    """CPU used during the profile by each thread alive at its end.

    A thread started meanwhile is counted from its start: a thread's CPU clock starts at zero.
    """
    return {native: max(0, cpu - before.get(native, 0)) for native, cpu in after.items()}


def _add(
    profile: Profile,
    sample_type: str,
    lines: Iterable[str],
    excluded: set[int],
    used: dict[int, int] | None = None,
    ended: int = 0,
) -> None:
    """Add py-spy's ``--format raw --threads`` lines (root first) to ``profile``.

    ``cpu`` samples: where ``used`` (CPU per native thread id alive at the end) is known,
    each thread's CPU is shared among its samples, and ``ended`` (the CPU of threads that
    ended meanwhile) among the samples of threads not alive at the end; otherwise each
    sample stands for one interval.
    """
    cache: dict[str, Frame] = {}
    read: Counter[tuple[str, str, tuple[Frame, ...]]] = Counter()  # (tid, name, leaf first)
    for line in lines:
        text, _, count_text = line.rstrip("\n").rpartition(" ")
        if not text or not count_text.isdigit():
            continue
        fields = text.split(";")
        thread = _THREAD.match(fields[0])
        if thread is None:
            name, tid, frames = "python", "", fields
        else:
            tid = thread.group(1)
            name = thread.group(2) or f"thread-{tid}"
            frames = fields[1:]
            if _native(tid) in excluded:
                continue
        read[tid, name, tuple(_frame(part, cache) for part in reversed(frames))] += int(count_text)
    completed = _complete(read)
    if completed:
        profile.notes.append(
            f"py-spy ({sample_type}): {completed} samples read cut below a frame, completed "
            "from the thread's most frequent stack through that frame"
        )
    samples: Counter[Key] = Counter()
    by_thread: Counter[tuple[int, Key]] = Counter()
    per_thread: Counter[str] = Counter()
    for (tid, name, read_frames), count in read.items():
        stack = clip_stack(list(read_frames))
        samples[name, stack] += count
        per_thread[tid] += count
        if tid:
            by_thread[_native(tid), (name, stack)] += count
    profile.truncated_stacks += sum(1 for _, stack in samples if clipped(stack))
    profile.threads_seen = max(profile.threads_seen, len(per_thread))
    if sample_type == "cpu":
        profile.has_cpu = True
        profile.on_cpu_samples += sum(samples.values())
        if used and sum(by_thread.values()) == sum(samples.values()):
            _share_cpu(profile, by_thread, used, ended)
        else:
            for key, count in samples.items():
                profile.cpu_ns[key] += count * profile.interval_ns
        return
    # Every thread is in every round with --idle: the longest-lived thread's samples are
    # the rounds, and each round stands for its share of the duration (late rounds too).
    rounds = max(per_thread.values(), default=0)
    profile.rounds = rounds
    for key, count in samples.items():
        profile.counts[key] += count
        profile.wall_ns[key] += profile.duration_ns * count // rounds if rounds else 0


def _native(tid: str) -> int:
    return int(tid, 16) if tid.startswith("0x") else int(tid)


def _complete(read: Counter[tuple[str, str, tuple[Frame, ...]]]) -> int:
    """Complete, in place, stacks read cut below a frame; how many samples were.

    Reading a thread's frames while they change (``--nonblocking``), py-spy now and then
    finds a chain cut below a coroutine: the stack ends at a frame that is not the
    thread's root. Such a stack gets the outer frames of the thread's most frequent
    stack that passes through the same function (that coroutine's usual caller chain).
    """
    roots: dict[str, Counter[Frame]] = {}
    for (tid, _, frames), count in read.items():
        if frames and tid:
            roots.setdefault(tid, Counter())[frames[-1]] += count
    root_of = {tid: counter.most_common(1)[0][0] for tid, counter in roots.items()}
    whole: dict[str, list[tuple[int, tuple[Frame, ...]]]] = {}
    cut: list[tuple[str, str, tuple[Frame, ...]]] = []
    for key, count in read.items():
        tid, _, frames = key
        if frames and tid:
            if frames[-1] == root_of[tid]:
                whole.setdefault(tid, []).append((count, frames))
            else:
                cut.append(key)
    completed = 0
    for key in cut:
        tid, name, frames = key
        below = frames[-1]
        for _, other in sorted(whole.get(tid, ()), key=lambda entry: -entry[0]):
            index = next(
                (
                    i
                    for i, frame in enumerate(other)
                    if frame.name == below.name and frame.filename == below.filename
                ),
                None,
            )
            if index is not None:
                count = read.pop(key)
                read[tid, name, frames + other[index + 1 :]] += count
                completed += count
                break
    return completed


def _share_cpu(
    profile: Profile, samples: Counter[tuple[int, Key]], used: dict[int, int], ended: int
) -> None:
    totals: Counter[int] = Counter()
    for (native, _), count in samples.items():
        totals[native] += count
    ended_samples = sum(count for native, count in totals.items() if native not in used)
    for (native, key), count in samples.items():
        if native in used:
            share = used[native] * count // totals[native]
        else:
            share = max(0, ended) * count // ended_samples
        profile.cpu_ns[key] += share


def _frame(text: str, cache: dict[str, Frame]) -> Frame:
    frame = cache.get(text)
    if frame is None:
        match = _FRAME.match(text)
        if match is None:
            frame = Frame(text, "", 0, 0)
        else:
            frame = Frame(match.group(1), match.group(2), 0, int(match.group(3)))
        cache[text] = frame
    return frame
