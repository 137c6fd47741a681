"""Run a shutdown or flush within a deadline, logging instead of raising."""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from clue.otel import _fork

__all__ = ["Shutdown", "bounded", "prepare_for_shutdown", "run_all_bounded", "run_bounded"]

_logger = structlog.get_logger("clue.otel")


class Shutdown(Protocol):
    """A bounded shutdown: returns whether it completed within ``timeout`` seconds.

    It never raises; a failure or a timeout is logged through structlog. Calling it
    again after it ran is a no-op that returns the first outcome.
    """

    def __call__(self, timeout: float = 5.0) -> bool: ...


def run_bounded(fn: Callable[[], object], timeout: float, what: str) -> bool:
    """Call ``fn`` in a daemon thread and wait at most ``timeout`` seconds for it.

    Returns True when ``fn`` returned in time without raising. A failure or a timeout is
    logged (the thread, if still running, is left to finish on its own).
    """
    return run_all_bounded({what: fn}, timeout)


def run_all_bounded(steps: dict[str, Callable[[], object]], timeout: float) -> bool:
    """Run every step in parallel daemon threads, all within one ``timeout``."""
    outcomes: dict[str, BaseException | None] = {}

    def run(what: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:  # reported below, never raised into the caller
            outcomes[what] = exc
        else:
            outcomes[what] = None

    deadline = time.monotonic() + max(timeout, 0.0)
    waits: list[Callable[[float], object]] = []
    for what, fn in steps.items():
        thread = threading.Thread(
            target=run, args=(what, fn), name=f"clue-otel {what}", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:
            # No new threads at interpreter shutdown (Python 3.12: in ``atexit`` and
            # threading's exit hooks): a standby thread started beforehand runs it.
            done = _STANDBY.submit(functools.partial(run, what, fn))
            if done is None:  # none was started: run it here, unbounded
                run(what, fn)
            else:
                waits.append(done.wait)
        else:
            waits.append(thread.join)
    for wait in waits:
        wait(max(deadline - time.monotonic(), 0.0))
    ok = True
    for what in steps:
        if what not in outcomes:
            _logger.warning("otel.timeout", component=what, timeout_s=timeout)
            ok = False
        elif (error := outcomes[what]) is not None:
            _logger.warning("otel.failed", component=what, err=repr(error))
            ok = False
    return ok


# Python 3.12 refuses to start a thread once the interpreter is shutting down, in
# ``atexit`` handlers and threading's exit hooks alike (3.11 and 3.13 allow it): the exit
# export, which bounds each step by running it in a daemon thread, would run them in the
# main thread instead, unbounded, and a hanging collector would hold the exit for ever.
# There, a few daemon threads started with the configuration wait to run them.
_NEEDS_STANDBY = sys.version_info[:2] == (3, 12)
# Enough for the exit export's steps and the ones nested in them, each in parallel.
_STANDBY_THREADS = 8


class _Standby:
    """Daemon threads, started beforehand, that run jobs when no thread can be started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], threading.Event]] = (
            queue.SimpleQueue()
        )
        self._pid: int | None = None
        _fork.register(self)

    def start(self) -> None:
        """Start the threads in this process, once."""
        with self._lock:
            if self._pid == os.getpid():
                return
            for n in range(_STANDBY_THREADS):
                threading.Thread(
                    target=self._serve, args=(self._jobs,), name=f"clue-otel exit {n}", daemon=True
                ).start()
            self._pid = os.getpid()

    def after_fork(self) -> None:
        """In a forked child: the parent's threads are gone; start the child's own."""
        started, self._pid = self._pid is not None, None
        self._lock = threading.Lock()
        self._jobs = queue.SimpleQueue()
        if started:
            with contextlib.suppress(RuntimeError):
                self.start()

    def submit(self, job: Callable[[], object]) -> threading.Event | None:
        """Queue ``job`` for a standby thread; the event is set when it has run."""
        if self._pid != os.getpid():
            return None
        done = threading.Event()
        self._jobs.put((job, done))
        return done

    @staticmethod
    def _serve(jobs: queue.SimpleQueue[tuple[Callable[[], object], threading.Event]]) -> None:
        while True:
            job, done = jobs.get()
            try:
                job()
            finally:
                done.set()


_STANDBY = _Standby()


def prepare_for_shutdown() -> None:
    """Make bounded runs possible at interpreter shutdown, where threads cannot start.

    Only Python 3.12 needs it; elsewhere a no-op.
    """
    if _NEEDS_STANDBY:
        with contextlib.suppress(RuntimeError):  # already shutting down
            _STANDBY.start()


class bounded:  # noqa: N801 (reads as a function: ``shutdown = bounded(exporter.shutdown, ...)``)
    """Wrap ``fn`` into a :class:`Shutdown` that runs it once, within its timeout."""

    def __init__(self, fn: Callable[[], object], what: str) -> None:
        self._fn = fn
        self._what = what
        self._lock = threading.Lock()
        self._result: bool | None = None
        _fork.register(self)

    def after_fork(self) -> None:
        """In a forked child: a new lock."""
        self._lock = threading.Lock()

    def __call__(self, timeout: float = 5.0) -> bool:
        with self._lock:
            if self._result is None:
                self._result = run_bounded(self._fn, timeout, self._what)
            return self._result
