"""A bounded pool of daemon threads for sync pings, and one background event loop.

``concurrent.futures.ThreadPoolExecutor`` joins its workers at interpreter exit, so a
ping hung on a dead dependency would keep the process from exiting. These workers are
daemon threads: a hung ping costs one idle thread, never a clean shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from clue.health._fork import at_fork, reinit_after_fork

_P = ParamSpec("_P")
_T = TypeVar("_T")

_Work = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


#: A worker idle this long exits (a pool that is not used costs no thread).
IDLE_SECONDS = 60.0


class DaemonPool(Executor):
    """At most ``max_workers`` daemon threads, started on demand, idle ones reused."""

    def __init__(
        self, max_workers: int, name: str = "clue-health", idle_seconds: float = IDLE_SECONDS
    ) -> None:
        self._max = max_workers
        self._idle_seconds = idle_seconds
        self._name = name
        self._start()
        reinit_after_fork(self)

    def _after_fork(self) -> None:
        self._start()  # no worker survived the fork; the parent's lock may be held

    def _start(self) -> None:
        self._pid = os.getpid()
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._queued = 0

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` on a worker; the future holds its outcome."""
        fut: Future[_T] = Future()
        if self._pid != os.getpid():  # forked (e.g. a pre-forking server): no worker survived
            self._start()
        with self._lock:
            self._queued += 1
            spawn = self._queued > self._idle and self._threads < self._max
            if spawn:
                self._threads += 1
        self._queue.put((fut, fn, args, kwargs))
        if spawn:
            threading.Thread(
                target=self._work, name=f"{self._name}-{self._threads}", daemon=True
            ).start()
        return fut

    @property
    def threads(self) -> int:
        """Worker threads alive now."""
        return self._threads

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            try:
                fut, fn, args, kwargs = self._queue.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._queued <= self._idle:  # no queued work counts on this worker
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
                self._queued -= 1
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # the outcome belongs to the future
                fut.set_exception(exc)


class _BackgroundLoop:
    """An event loop on a daemon thread, with a liveness probe.

    An async pinger that makes a blocking call stops its loop, and with it every other
    async ping submitted there. The loop is "stuck" when a probe posted to it has gone
    unanswered longer than a ping's timeout; ``background_loop()`` then replaces it.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._probe_since: float | None = None  # when the unanswered probe was posted
        threading.Thread(target=self._run, name="clue-health-loop", daemon=True).start()

    def _run(self) -> None:
        self.loop.run_forever()
        self.loop.close()

    def probe(self) -> None:
        """Ask the loop to show it runs callbacks (one probe outstanding at a time)."""
        if self._probe_since is None:
            self._probe_since = time.monotonic()
            self.loop.call_soon_threadsafe(self._answered)

    def _answered(self) -> None:
        self._probe_since = None

    def stuck(self, after: float) -> bool:
        """Whether a probe has gone unanswered for more than ``after`` seconds."""
        since = self._probe_since
        return since is not None and time.monotonic() - since > after

    def retire(self) -> None:
        """Stop the loop once every task on it is done (if it ever runs again)."""
        with contextlib.suppress(RuntimeError):  # already closed
            asyncio.run_coroutine_threadsafe(_stop_when_idle(), self.loop)


async def _stop_when_idle() -> None:
    me = asyncio.current_task()
    while others := [t for t in asyncio.all_tasks() if t is not me]:
        await asyncio.wait(others)
    asyncio.get_running_loop().stop()


_loop: _BackgroundLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


@at_fork
def _forget_loop() -> None:
    global _loop, _loop_lock  # per-process state re-created after fork
    _loop, _loop_lock = None, threading.Lock()


def background_loop(stuck_after: float) -> asyncio.AbstractEventLoop:
    """The event loop that runs async pingers for sync ``check()`` calls.

    Started on first use, and again after a fork, or when the current one has not run a
    callback for ``stuck_after`` seconds (a ping blocked it): the stuck loop is left to its
    ping and stops when its tasks are done, so a blocking async pinger costs its own
    dependency (which stays ``NOT OK`` until its ping returns) and no other.
    """
    global _loop, _loop_pid  # noqa: PLW0603 - one lazily started loop per process
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():  # none yet, or its thread was forked away
            _loop, _loop_pid = _BackgroundLoop(), os.getpid()
        elif _loop.stuck(stuck_after):
            _loop.retire()
            _loop = _BackgroundLoop()
        _loop.probe()
        return _loop.loop


def probe_background_loop() -> None:
    """Post a liveness probe to the current background loop (after pings ran late)."""
    with _loop_lock:
        if _loop is not None and _loop_pid == os.getpid():
            _loop.probe()
