"""Run a shutdown or flush within a deadline, logging instead of raising."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from clue.otel import _fork

__all__ = ["Shutdown", "bounded", "run_all_bounded", "run_bounded"]

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
    threads = []
    for what, fn in steps.items():
        thread = threading.Thread(
            target=run, args=(what, fn), name=f"clue-otel {what}", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:
            # No new threads at interpreter shutdown (atexit, Python 3.12): run it here;
            # the SDK calls we make are given the timeout themselves.
            run(what, fn)
        else:
            threads.append(thread)
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    ok = True
    for what in steps:
        if what not in outcomes:
            _logger.warning("otel.timeout", component=what, timeout_s=timeout)
            ok = False
        elif (error := outcomes[what]) is not None:
            _logger.warning("otel.failed", component=what, err=repr(error))
            ok = False
    return ok


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
