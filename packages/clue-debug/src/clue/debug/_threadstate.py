"""What a thread is doing right now, as Linux tells it: its CPU clock and its system call.

The CPU sampler asks, for every thread that used CPU since its last round, whether that
thread is waiting for the GIL (it was running Python, or has just woken), on a CPU
without the GIL (native code), or blocked in another call (a sleep, ``select``, a socket,
a lock, a condition, a queue). ``/proc/self/task/<tid>/syscall`` names the call and its
first argument; a ``futex`` wait is a wait for the GIL when that argument, the futex's
address, lies in the memory holding the interpreter's runtime state (``_PyRuntime``),
where the GIL lives on CPython 3.11 to 3.13, and a lock or condition otherwise.

Reading goes through libc with the GIL held (``ctypes.PyDLL``), so that no thread runs
between the reading and the walk of the stacks that follows it: a thread's state and its
stack are one snapshot.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import time

__all__ = [
    "BLOCKED",
    "RUNNING",
    "TO_RUN",
    "UNKNOWN",
    "ThreadStates",
    "clock_id",
    "read_clock",
    "thread_clock",
]

RUNNING, TO_RUN, BLOCKED, UNKNOWN = range(4)

_FUTEX_NUMBER = {"x86_64": b"202", "aarch64": b"98", "arm64": b"98"}.get(platform.machine())
_NO_RANGE = (0, 0)


def clock_id(native_id: int) -> int:
    """The CPU clock of the thread whose kernel id is ``native_id``."""
    # Linux encodes a thread's CPU clock as ~tid << 3 | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED.
    # Built from the kernel thread id rather than with pthread_getcpuclockid, which would
    # read freed memory for a thread that has ended; an ended thread's clock is EINVAL.
    return (~native_id << 3) | 6


def thread_clock(native_id: int) -> int | None:
    """The thread's CPU time in nanoseconds, or ``None`` where it cannot be read."""
    if sys.platform != "linux":
        return None
    try:
        return time.clock_gettime_ns(clock_id(native_id))
    except OSError:
        return None


def read_clock(clock: int) -> int:
    """A CPU clock's time in nanoseconds, or -1 once its thread has ended."""
    try:
        return time.clock_gettime_ns(clock)
    except OSError:
        return -1


class ThreadStates:
    """Reads threads' system calls; built once per profile."""

    def __init__(self) -> None:
        self.gil = _gil_range()
        self.libc = _libc()
        self.buffer = ctypes.create_string_buffer(128)

    def where(self, native_id: int) -> int:
        """``RUNNING``, ``TO_RUN`` (waiting for the GIL), ``BLOCKED`` or ``UNKNOWN``."""
        if _FUTEX_NUMBER is None:
            return UNKNOWN
        text = self._read(native_id)
        if text is None:  # ended, or /proc unreadable here
            return UNKNOWN
        number, _, rest = text.partition(b" ")
        number = number.strip()
        if number == b"running":
            return RUNNING
        if number == _FUTEX_NUMBER:
            if self.gil is _NO_RANGE:
                return TO_RUN  # the GIL's place is unknown here: any futex may be it
            try:
                address = int(rest.split(b" ", 1)[0], 16)
            except ValueError:
                return UNKNOWN
            return TO_RUN if self.gil[0] <= address < self.gil[1] else BLOCKED
        return BLOCKED if number.isdigit() else UNKNOWN

    def _read(self, native_id: int) -> bytes | None:
        # Opened and closed each time (only threads that worked since the last round are
        # asked): descriptors kept per thread would pile up under a thread per request.
        path = b"/proc/self/task/%d/syscall" % native_id
        libc = self.libc
        if libc is None:  # os.read lets the GIL go: threads may move meanwhile
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    return os.read(fd, 128)
                finally:
                    os.close(fd)
            except OSError:
                return None
        fd = libc.open(path, os.O_RDONLY)
        if fd < 0:
            return None
        try:
            size = libc.read(fd, self.buffer, 128)
        finally:
            libc.close(fd)
        return self.buffer.raw[:size] if size > 0 else None


def _libc() -> ctypes.PyDLL | None:
    # PyDLL keeps the GIL during each call; these calls on /proc files do not block.
    try:
        libc = ctypes.PyDLL(None)
        libc.open.argtypes = [ctypes.c_char_p, ctypes.c_int]
        libc.open.restype = ctypes.c_int
        libc.read.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
        libc.read.restype = ctypes.c_ssize_t
        libc.close.argtypes = [ctypes.c_int]
        libc.close.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def _gil_range() -> tuple[int, int]:
    """The mapping that holds ``_PyRuntime`` (and so the GIL), or ``_NO_RANGE``."""
    try:
        address = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                low, _, high = line.split(" ", 1)[0].partition("-")
                if int(low, 16) <= address < int(high, 16):
                    return int(low, 16), int(high, 16)
    except (AttributeError, OSError, ValueError):
        pass
    return _NO_RANGE
