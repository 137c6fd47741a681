"""``Checker``: concurrent pings with timeouts, single flight and a short cache."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from clue.health._fork import reinit_after_fork
from clue.health._health import NOT_OK, OK, Health, current_uptime, current_version
from clue.health._ping import Attempt
from clue.health._pinger import Pinger
from clue.health._pool import DaemonPool, background_loop, probe_background_loop
from clue.health._validate import seconds

#: Per-ping timeout: below Kubernetes' default 1 s probe timeout, with room to answer.
DEFAULT_TIMEOUT = 0.5
#: How long a finished check answers later probes without pinging again.
DEFAULT_CACHE_TTL = 1.0
#: Upper bound on threads running sync pings for one checker.
DEFAULT_MAX_WORKERS = 16
# How much longer than the deadline a caller waits for an evaluation it shares.
_FOLLOWER_GRACE = 1.0


class Checker:
    """Checks the health of a service's dependencies.

    Every check pings all dependencies concurrently: sync pingers on a bounded pool of
    daemon threads, async pingers as tasks (on the caller's loop for ``acheck()``, on a
    background loop for ``check()``). Each ping has ``timeout`` seconds from when it
    starts and the whole check never takes longer than ``deadline``; a ping that is too
    slow, raises anything, or is still stuck from a previous check is ``NOT OK``.
    Concurrent callers share one evaluation (single flight), and a finished evaluation
    answers for ``cache_ttl`` seconds, so a storm of probes costs each dependency one
    ping per TTL. Each ping is a client span ``health.ping.<name>``; failures are logged.

    Args:
        *pingers: the dependencies (see ``Pinger``); names must be unique.
        timeout: per-ping timeout in seconds (default 0.5).
        deadline: bound on the whole check in seconds (default: 1.5 x ``timeout``,
            which only binds when pings wait for a worker or start late).
        cache_ttl: seconds a result is reused (default 1.0; 0 disables the cache
            but keeps single flight).
        max_workers: threads for sync pingers (default: one per sync pinger, at most 16).

    Raises:
        TypeError: an argument is not a ``Pinger``.
        ValueError: a name is empty or repeated, or an option is out of range.

    Example:
        >>> class Cache:
        ...     name = "redis"
        ...
        ...     def ping(self) -> None:
        ...         pass
        >>> report, healthy = Checker(Cache()).check()
        >>> dict(report.status), healthy
        ({'redis': 'OK'}, True)

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *pingers: Pinger,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        max_workers: int | None = None,
    ) -> None:
        self._timeout = seconds("timeout", timeout)
        self._deadline = 1.5 * self._timeout if deadline is None else seconds("deadline", deadline)
        self._cache_ttl = seconds("cache_ttl", cache_ttl, zero=True)
        self._names = _names(pingers)
        self._pingers = pingers
        self._async = tuple(_is_async(p) for p in pingers)
        n_sync = self._async.count(False)
        if max_workers is None:
            max_workers = max(1, min(n_sync, DEFAULT_MAX_WORKERS))
        elif isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive int, got {max_workers!r}")
        self._pool = DaemonPool(max_workers)
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reset()
        reinit_after_fork(self)

    def _after_fork(self) -> None:
        # The parent's lock may be held by a thread that is not in the child, and its
        # pings and evaluations are not the child's to wait for.
        self._lock = threading.Lock()
        self._tasks = set()
        self._reset()

    def _reset(self) -> None:
        """Forget pings and evaluations in flight (at start, and in a forked child)."""
        self._pid = os.getpid()
        # The attempt each pinger is running, if any: a stuck ping is not started again.
        self._running: list[Attempt | None] = [None] * len(self._pingers)
        self._inflight: concurrent.futures.Future[Health] | None = None
        self._inflight_at = 0.0
        # The leader's attempts, one per pinger in order (to give up on a lost evaluation).
        self._inflight_attempts: list[Attempt] = []
        self._cached: Health | None = None
        self._cached_at = 0.0

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the dependencies, in order."""
        return self._names

    @property
    def timeout(self) -> float:
        """Per-ping timeout in seconds."""
        return self._timeout

    @property
    def deadline(self) -> float:
        """Bound on a whole check in seconds."""
        return self._deadline

    @property
    def cache_ttl(self) -> float:
        """Seconds a finished check is reused."""
        return self._cache_ttl

    def check(self) -> tuple[Health, bool]:
        """Ping every dependency (or share a check in flight) and report.

        Never raises; blocks at most about ``deadline`` seconds. In ``async`` code use
        ``acheck()``.

        Returns:
            The report and whether every dependency is ``OK``.
        """
        fut, attempts = self._join()
        if attempts is not None:
            self._evaluate_sync(fut, attempts)
        try:
            health = fut.result(timeout=self._deadline + _FOLLOWER_GRACE)
        except Exception:  # the shared evaluation never finished: report, do not raise
            health = self._report([])
        return health, health.healthy

    async def acheck(self) -> tuple[Health, bool]:
        """Like ``check()``, without blocking the event loop.

        Async pingers run as tasks on the running loop; sync ones on the checker's threads.
        """
        fut, attempts = self._join()
        if attempts is not None:
            task = asyncio.get_running_loop().create_task(self._evaluate_async(fut, attempts))
            self._tasks.add(task)  # the evaluation outlives a cancelled caller
            task.add_done_callback(self._tasks.discard)
        try:
            async with asyncio.timeout(self._deadline + _FOLLOWER_GRACE):
                health = await asyncio.wrap_future(fut)
        except TimeoutError:
            health = self._report([])
        return health, health.healthy

    # Single flight: the first caller leads an evaluation (and gets the list its attempts
    # go in), the others wait for it.
    def _join(self) -> tuple[concurrent.futures.Future[Health], list[Attempt] | None]:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's pings are not ours to wait for
                self._reset()
            if self._cached is not None and time.monotonic() - self._cached_at < self._cache_ttl:
                done: concurrent.futures.Future[Health] = concurrent.futures.Future()
                done.set_result(self._cached)
                return done, None
            if self._inflight is not None:
                if time.monotonic() - self._inflight_at <= self._deadline + _FOLLOWER_GRACE:
                    return self._inflight, None
                self._abandon()
            fut: concurrent.futures.Future[Health] = concurrent.futures.Future()
            # RUNNING futures cannot be cancelled by a follower that goes away.
            fut.set_running_or_notify_cancel()
            self._inflight, self._inflight_at = fut, time.monotonic()
            self._inflight_attempts = []
            return fut, self._inflight_attempts

    def _abandon(self) -> None:
        """Give up on an evaluation far past its deadline (called with the lock held).

        Only an ``acheck()`` whose event loop was closed or stopped under it gets here:
        its async pings died with that loop, so they no longer count as running (sync
        pings keep their threads, and their slots, until they return).
        """
        assert self._inflight is not None
        attempts = self._inflight_attempts
        for i, attempt in enumerate(attempts):
            attempt.give_up("check abandoned: its event loop stopped")
            if self._async[i] and self._running[i] is attempt:
                self._running[i] = None
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            self._inflight.set_result(self._report(attempts))
        self._inflight = None

    def _publish(self, fut: concurrent.futures.Future[Health], health: Health) -> None:
        with self._lock:
            if self._inflight is fut:  # not an evaluation given up on meanwhile
                self._cached, self._cached_at = health, time.monotonic()
                self._inflight = None
        with contextlib.suppress(concurrent.futures.InvalidStateError):  # given up on
            fut.set_result(health)

    def _evaluate_sync(
        self, fut: concurrent.futures.Future[Health], attempts: list[Attempt]
    ) -> None:
        try:
            start = time.monotonic()
            waiting: set[concurrent.futures.Future[None]] = set()
            on_loop: list[tuple[int, Attempt]] = []
            for i, attempt in self._launch(otel_context.get_current(), attempts):
                if self._async[i]:
                    thread_fut = self._submit_async(attempt, i, start)
                    on_loop.append((i, attempt))
                else:
                    thread_fut = self._pool.submit(self._run_sync, attempt, i)
                thread_fut.add_done_callback(functools.partial(self._release, i, attempt))
                waiting.add(thread_fut)
            while waiting and (pause := self._sweep(attempts, start)) is not None:
                _, waiting = concurrent.futures.wait(
                    waiting, timeout=pause, return_when=concurrent.futures.FIRST_COMPLETED
                )
            if waiting and on_loop:
                # Pings left running: find out whether the loop still runs at all.
                probe_background_loop()
                for i, attempt in on_loop:
                    if attempt.started is None:  # never began (the loop is blocked): given
                        self._release(i, attempt)  # up, it will not run, so nothing is stuck
        finally:
            self._publish(fut, self._report(attempts))

    def _submit_async(
        self, attempt: Attempt, i: int, start: float
    ) -> concurrent.futures.Future[None]:
        coro = self._run_async(attempt, i, start)
        try:
            return asyncio.run_coroutine_threadsafe(coro, background_loop(self._timeout))
        except RuntimeError:  # a retired loop closed under us: this ping cannot run now
            coro.close()
            attempt.give_up("background loop closed")
            done: concurrent.futures.Future[None] = concurrent.futures.Future()
            done.set_result(None)
            return done

    async def _evaluate_async(
        self, fut: concurrent.futures.Future[Health], attempts: list[Attempt]
    ) -> None:
        try:
            start = time.monotonic()
            loop = asyncio.get_running_loop()
            waiting: set[asyncio.Future[None]] = set()
            for i, attempt in self._launch(otel_context.get_current(), attempts):
                if self._async[i]:
                    task = loop.create_task(self._run_async(attempt, i, start))
                    task.add_done_callback(functools.partial(self._release, i, attempt))
                    waiting.add(task)
                else:
                    thread_fut = self._pool.submit(self._run_sync, attempt, i)
                    thread_fut.add_done_callback(functools.partial(self._release, i, attempt))
                    waiting.add(asyncio.wrap_future(thread_fut))
            while waiting and (pause := self._sweep(attempts, start)) is not None:
                _, waiting = await asyncio.wait(
                    waiting, timeout=pause, return_when=asyncio.FIRST_COMPLETED
                )
            for left in waiting:
                # Stops async pings past their time; a sync ping keeps its thread, but its
                # result no longer goes to this loop (which may be closed by then).
                left.cancel()
        finally:
            self._publish(fut, self._report(attempts))

    def _launch(self, parent: Context, attempts: list[Attempt]) -> Iterable[tuple[int, Attempt]]:
        """Create one attempt per pinger; yield those to run (not stuck from before)."""
        for i, name in enumerate(self._names):
            attempt = Attempt(name, self._timeout, parent)
            attempts.append(attempt)
            with self._lock:
                busy = self._running[i] is not None
                if not busy:
                    self._running[i] = attempt
            if busy:
                attempt.give_up("previous ping still running")
                continue
            yield i, attempt

    def _release(self, i: int, attempt: Attempt, _: object = None) -> None:
        with self._lock:
            if self._running[i] is attempt:
                self._running[i] = None

    def _sweep(self, attempts: list[Attempt], start: float) -> float | None:
        """Give up on pings past their time; return how long to wait next, None to stop."""
        now = time.monotonic()
        end = start + self._deadline
        if now >= end:
            for a in attempts:
                if a.started is not None and a.started + self._timeout <= now:
                    a.give_up(f"timed out after {self._timeout:g}s")
                else:
                    a.give_up(f"check deadline of {self._deadline:g}s passed")
            return None
        wake = end
        pending = False
        for a in attempts:
            if a.resolved:
                continue
            if a.started is not None:
                expiry = a.started + self._timeout
                if expiry <= now:
                    a.give_up(f"timed out after {self._timeout:g}s")
                    continue
                wake = min(wake, expiry)
            pending = True
        return wake - now if pending else None

    def _run_sync(self, attempt: Attempt, i: int) -> None:
        if not attempt.start():
            return
        error: BaseException | None = None
        token = otel_context.attach(trace.set_span_in_context(attempt.span))
        try:
            result = self._pingers[i].ping()
            if inspect.isawaitable(result):  # a sync-looking ping that returned a coroutine
                asyncio.run(_within(result, attempt.timeout))
        except BaseException as exc:  # a pinger raising anything is NOT OK, never an error
            error = exc
        finally:
            otel_context.detach(token)
        self._release(i, attempt)  # before answering: the next check may ping again
        attempt.finish(error)

    async def _run_async(self, attempt: Attempt, i: int, start: float) -> None:
        if not attempt.start():
            return
        budget = min(self._timeout, start + self._deadline - time.monotonic())
        error: BaseException | None = None
        timed_out = False
        token = otel_context.attach(trace.set_span_in_context(attempt.span))
        try:
            await _within(self._pingers[i].ping(), budget)
        except TimeoutError as exc:  # ours, or the pinger's own
            timed_out = time.monotonic() - (attempt.started or 0.0) >= budget
            error = exc
        except asyncio.CancelledError:
            self._release(i, attempt)
            attempt.give_up("cancelled")
            raise
        except BaseException as exc:  # a pinger raising anything is NOT OK, never an error
            error = exc
        finally:
            otel_context.detach(token)
        self._release(i, attempt)
        if not timed_out:
            attempt.finish(error)
        elif budget >= self._timeout:
            attempt.give_up(f"timed out after {self._timeout:g}s")
        else:
            attempt.give_up(f"check deadline of {self._deadline:g}s passed")

    def _report(self, attempts: list[Attempt]) -> Health:
        ok = {a.name for a in attempts if a.resolved and a.ok}
        status = {name: OK if name in ok else NOT_OK for name in self._names}
        return Health(uptime=current_uptime(), version=current_version(), status=status)


async def _within(awaitable: Awaitable[Any] | None, seconds: float) -> None:
    if awaitable is None:
        return
    async with asyncio.timeout(max(seconds, 0.0)):
        await awaitable


def _is_async(pinger: Pinger) -> bool:
    ping: Callable[..., Any] = pinger.ping
    return inspect.iscoroutinefunction(ping) or inspect.iscoroutinefunction(
        getattr(ping, "__call__", None)  # noqa: B004 - an async callable object counts too
    )


def _names(pingers: tuple[Pinger, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for i, p in enumerate(pingers):
        if not callable(getattr(p, "ping", None)):
            raise TypeError(f"pinger #{i} ({p!r}) has no ping() method")
        name = getattr(p, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"pinger #{i} ({p!r}): name must be a non-empty str, got {name!r}")
        if name in names:
            raise ValueError(f"pinger name {name!r} is used twice; names must be unique")
        names.append(name)
    return tuple(names)
