"""Checker: concurrency, timeouts, single flight, cache, validation, reports."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from clue import health
from clue.health import Checker, Health


def test_all_ok_is_healthy(pingers):
    """Every dependency answering makes the service healthy, status in pinger order."""
    report, ok = Checker(pingers.sync("b"), pingers.sync("a"), cache_ttl=0).check()
    assert ok is True
    assert list(report.status.items()) == [("b", "OK"), ("a", "OK")]


def test_no_dependency_is_healthy():
    """A checker without dependencies reports healthy with an empty status."""
    report, ok = Checker().check()
    assert ok
    assert dict(report.status) == {}


@pytest.mark.parametrize(
    "error",
    [RuntimeError("boom"), OSError("refused"), ValueError(), SystemExit(3), KeyboardInterrupt()],
)
def test_a_pinger_raising_anything_is_not_ok(pingers, error):
    """Whatever a pinger raises, that dependency is NOT OK and check() returns normally."""
    checker = Checker(pingers.sync("bad", error=error), pingers.sync("good"), cache_ttl=0)
    report, ok = checker.check()
    assert not ok
    assert dict(report.status) == {"bad": "NOT OK", "good": "OK"}


@pytest.mark.parametrize("error", [RuntimeError("boom"), TimeoutError(), KeyboardInterrupt()])
async def test_an_async_pinger_raising_anything_is_not_ok(pingers, error):
    """An async pinger raising anything is NOT OK for acheck() too."""
    report, ok = await Checker(pingers.aio("bad", error=error), cache_ttl=0).acheck()
    assert not ok
    assert report.status["bad"] == "NOT OK"


def test_a_hung_dependency_costs_at_most_the_timeout(pingers):
    """A hung sync ping is NOT OK after the timeout while the others are OK."""
    hung = pingers.sync("hung", block=True)
    checker = Checker(hung, pingers.sync("db"), timeout=0.2, cache_ttl=0)
    t0 = time.monotonic()
    report, ok = checker.check()
    elapsed = time.monotonic() - t0
    assert not ok
    assert dict(report.status) == {"hung": "NOT OK", "db": "OK"}
    assert 0.2 <= elapsed < 0.7


async def test_a_hung_async_dependency_is_cancelled_at_the_timeout(pingers):
    """acheck() cancels an async ping past its timeout and reports it NOT OK."""
    hung = pingers.aio("hung", block=True)
    t0 = time.monotonic()
    report, ok = await Checker(hung, timeout=0.1, cache_ttl=0).acheck()
    assert time.monotonic() - t0 < 0.6
    assert not ok
    assert report.status["hung"] == "NOT OK"
    assert hung.cancelled.wait(2)


def test_sync_check_runs_async_pingers(pingers):
    """check() runs async pingers (on a background loop) and bounds them by the timeout."""
    checker = Checker(pingers.aio("ok"), pingers.aio("hung", block=True), timeout=0.1, cache_ttl=0)
    t0 = time.monotonic()
    report, _ = checker.check()
    assert time.monotonic() - t0 < 0.6
    assert dict(report.status) == {"ok": "OK", "hung": "NOT OK"}


async def test_async_check_runs_sync_pingers_off_the_loop(pingers):
    """acheck() runs sync pingers on threads: the event loop keeps running meanwhile."""
    hung = pingers.sync("hung", block=True)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    report, _ = await Checker(hung, pingers.sync("ok"), timeout=0.2, cache_ttl=0).acheck()
    task.cancel()
    assert dict(report.status) == {"hung": "NOT OK", "ok": "OK"}
    assert ticks >= 5


def test_pings_run_concurrently(pingers):
    """Three dependencies each slower than a third of the timeout all pass: they overlap."""
    barrier = threading.Barrier(3, timeout=2)

    class Meeting:
        def __init__(self, name: str) -> None:
            self.name = name

        def ping(self) -> None:
            barrier.wait()  # only returns when all three pings run at once

    report, ok = Checker(Meeting("a"), Meeting("b"), Meeting("c"), timeout=1, cache_ttl=0).check()
    assert ok, dict(report.status)


def test_a_late_success_is_still_not_ok():
    """A ping that returns after its timeout is NOT OK even though it did not fail."""
    release = threading.Event()

    class Late:
        name = "late"

        def ping(self) -> None:
            release.wait(0.25)

    checker = Checker(Late(), timeout=0.1, deadline=1.0, cache_ttl=0)
    report, ok = checker.check()
    assert not ok
    assert report.status["late"] == "NOT OK"


def test_a_ping_still_stuck_is_not_called_again(pingers, poll):
    """While a ping is stuck, later checks report it NOT OK at once without a new call."""
    hung = pingers.sync("hung", block=True)
    checker = Checker(hung, timeout=0.4, cache_ttl=0)
    checker.check()
    t0 = time.monotonic()
    report, _ = checker.check()
    assert time.monotonic() - t0 < 0.2  # no wait for the 0.4 s timeout
    assert report.status["hung"] == "NOT OK"
    assert hung.calls == 1
    hung.block = False
    hung.release.set()
    poll(lambda: checker.check()[1])
    assert hung.calls == 2


def test_the_deadline_bounds_queued_pings(pingers):
    """With one worker busy on a hung ping, a queued ping is NOT OK at the deadline."""
    hung = pingers.sync("hung", block=True)
    checker = Checker(
        hung, pingers.sync("queued"), timeout=0.1, deadline=0.3, max_workers=1, cache_ttl=0
    )
    t0 = time.monotonic()
    report, _ = checker.check()
    elapsed = time.monotonic() - t0
    assert dict(report.status) == {"hung": "NOT OK", "queued": "NOT OK"}
    assert 0.3 <= elapsed < 0.8


def test_concurrent_checks_share_one_evaluation(pingers):
    """Fifty threads checking at once cause one ping per dependency (single flight + TTL)."""
    slow = pingers.sync("slow", block=True)
    checker = Checker(slow, timeout=2, cache_ttl=60)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(checker.check()[1])) for _ in range(50)
    ]
    for t in threads:
        t.start()
    assert slow.started.wait(5)
    slow.release.set()
    for t in threads:
        t.join(5)
    assert results == [True] * 50
    assert slow.calls == 1


async def test_concurrent_async_checks_share_one_evaluation(pingers):
    """Two hundred concurrent acheck() calls cause one ping even with no cache."""
    slow = pingers.sync("slow", block=True)
    checker = Checker(slow, timeout=2, cache_ttl=0)
    calls = [asyncio.ensure_future(checker.acheck()) for _ in range(200)]
    assert await asyncio.to_thread(slow.started.wait, 5)
    slow.release.set()
    results = await asyncio.gather(*calls)
    assert all(ok for _, ok in results)
    assert slow.calls == 1


async def test_a_cancelled_caller_does_not_break_the_shared_evaluation(pingers):
    """Cancelling the caller that started an evaluation leaves the others their answer."""
    slow = pingers.sync("slow", block=True)
    checker = Checker(slow, timeout=2, cache_ttl=0)
    leader = asyncio.ensure_future(checker.acheck())
    follower = asyncio.ensure_future(checker.acheck())
    assert await asyncio.to_thread(slow.started.wait, 5)
    leader.cancel()
    slow.release.set()
    _report, ok = await follower
    assert ok
    assert slow.calls == 1


def test_results_are_cached_for_the_ttl(pingers, poll):
    """Within the TTL a check reuses the last result; after it, it pings again."""
    dep = pingers.sync("db")
    checker = Checker(dep, cache_ttl=0.05)
    checker.check()
    checker.check()
    assert dep.calls == 1
    poll(lambda: checker.check() is not None and dep.calls == 2)


def test_a_zero_ttl_pings_every_time(pingers):
    """cache_ttl=0 disables the cache: sequential checks each ping."""
    dep = pingers.sync("db")
    checker = Checker(dep, cache_ttl=0)
    for _ in range(3):
        checker.check()
    assert dep.calls == 3


def test_a_sync_ping_returning_an_awaitable_is_awaited():
    """A plain callable returning a coroutine counts as the ping's outcome."""

    async def failing() -> None:
        raise RuntimeError("down")

    class Wrapped:
        name = "wrapped"

        def ping(self):  # type: ignore[no-untyped-def]
            return failing()

    report, _ = Checker(Wrapped(), cache_ttl=0).check()
    assert report.status["wrapped"] == "NOT OK"


def test_an_async_callable_object_is_detected_as_async(pingers):
    """A ping that is an object with an async __call__ runs as an async ping."""

    class Call:
        def __init__(self) -> None:
            self.loops: list[bool] = []

        async def __call__(self) -> None:
            self.loops.append(asyncio.get_running_loop() is not None)

    class Pinger:
        name = "callable"

        def __init__(self) -> None:
            self.ping = Call()

    p = Pinger()
    _report, ok = Checker(p, cache_ttl=0).check()
    assert ok
    assert p.ping.loops == [True]


def test_version_and_started_at_are_settable(pingers):
    """Reports show health.VERSION and the whole seconds since health.STARTED_AT."""
    health.VERSION = "abc123"
    health.STARTED_AT = datetime.now(UTC) - timedelta(hours=1)
    report, _ = Checker(pingers.sync("db"), cache_ttl=0).check()
    assert report.version == "abc123"
    assert 3599 <= report.uptime <= 3601


def test_an_unusable_started_at_gives_zero_uptime():
    """STARTED_AT may be naive or a timestamp; a wrong type or future time gives uptime 0."""
    health.STARTED_AT = "yesterday"  # type: ignore[assignment]
    assert Checker().check()[0].uptime == 0
    health.STARTED_AT = datetime.now(UTC) + timedelta(days=1)
    assert Checker().check()[0].uptime == 0
    health.STARTED_AT = datetime.now() - timedelta(seconds=10)  # naive: local time
    assert 9 <= Checker().check()[0].uptime <= 11
    health.STARTED_AT = time.time() - 60  # type: ignore[assignment] # a POSIX timestamp
    assert 59 <= Checker().check()[0].uptime <= 61
    health.STARTED_AT = math.nan  # type: ignore[assignment]
    assert Checker().check()[0].uptime == 0


def test_health_is_read_only():
    """A report's status cannot be changed by one of the callers sharing it."""
    report = Health(uptime=1, version="v", status={"a": "OK"})
    with pytest.raises(TypeError):
        report.status["a"] = "NOT OK"  # type: ignore[index]
    assert report.healthy
    assert not Health(1, "v", {"a": "NOT OK"}).healthy


def test_pinger_protocol_matches_sync_and_async_pingers(pingers):
    """Sync and async pingers are Pinger instances; an object without ping() is not."""
    assert isinstance(pingers.sync("a"), health.Pinger)
    assert isinstance(pingers.aio("b"), health.Pinger)
    assert not isinstance(object(), health.Pinger)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "1"}, "timeout"),
        ({"deadline": 0}, "deadline"),
        ({"cache_ttl": -0.1}, "cache_ttl"),
        ({"cache_ttl": math.inf}, "cache_ttl"),
        ({"max_workers": 0}, "max_workers"),
        ({"max_workers": 1.5}, "max_workers"),
    ],
)
def test_bad_options_raise_value_error_naming_them(kwargs, option):
    """Configuration mistakes fail at once with a ValueError naming the option."""
    with pytest.raises(ValueError, match=option):
        Checker(**kwargs)


def test_bad_pingers_are_rejected(pingers):
    """Duplicate or empty names raise ValueError; an object without ping() TypeError."""
    with pytest.raises(ValueError, match="twice"):
        Checker(pingers.sync("db"), pingers.sync("db"))
    with pytest.raises(ValueError, match="name"):
        Checker(pingers.sync(""))
    with pytest.raises(TypeError, match="ping"):
        Checker(object())  # type: ignore[arg-type]


def test_checker_exposes_its_configuration(pingers):
    """names, timeout, deadline and cache_ttl reflect the arguments and defaults."""
    checker = Checker(pingers.sync("a"), pingers.aio("b"))
    assert checker.names == ("a", "b")
    assert checker.timeout == health.DEFAULT_TIMEOUT < 1.0
    assert checker.deadline == 1.5 * checker.timeout < 1.0
    assert checker.cache_ttl == health.DEFAULT_CACHE_TTL


def test_worker_threads_are_bounded_and_exit_when_idle(poll):
    """The sync-ping pool never exceeds max_workers threads, and idle threads exit."""
    from clue.health._pool import DaemonPool

    pool = DaemonPool(2, idle_seconds=0.05)
    release = threading.Event()
    futures = [pool.submit(release.wait, 5) for _ in range(5)]
    poll(lambda: pool.threads == 2)
    release.set()
    assert [f.result(5) for f in futures] == [True] * 5
    poll(lambda: pool.threads == 0)
    assert pool.submit(lambda: 42).result(5) == 42


def test_a_forked_child_checks_on_its_own(pingers):
    """After fork (pre-forking servers), the child's checks run: no dead thread is waited on."""
    import os
    import warnings

    slow = pingers.sync("slow", block=True)
    checker = Checker(slow, pingers.aio("aio"), timeout=0.3, cache_ttl=0)
    checker.check()  # the parent now has a stuck ping, a worker thread and a background loop
    slow.block = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads: on purpose
        pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if the check ran and passed
        code = 1
        try:
            code = 0 if checker.check()[1] else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_async_pinger_blocking_the_loop_costs_no_other_dependency(poll):
    """An async ping that blocks its event loop leaves every other async ping OK."""
    release = threading.Event()

    class Blocking:
        name = "blocking"

        async def ping(self) -> None:
            release.wait()  # a sync call inside ``async def``: the loop stops with it

    class Fine:
        name = "fine"

        async def ping(self) -> None:
            await asyncio.sleep(0)

    try:
        blocked = Checker(Blocking(), Fine(), timeout=0.5, cache_ttl=0)
        blocked.check()
        other = Checker(Fine(), timeout=0.5, cache_ttl=0)
        poll(lambda: other.check()[1])
        poll(lambda: dict(blocked.check()[0].status) == {"blocking": "NOT OK", "fine": "OK"})
    finally:
        release.set()


def test_an_evaluation_whose_loop_was_closed_does_not_wedge_the_checker(pingers, poll):
    """An acheck() whose event loop is closed under it (a per-request loop closed with the
    evaluation pending) costs one deadline: later checks evaluate afresh, OK again."""
    slow = pingers.aio("slow", block=True)
    checker = Checker(slow, pingers.sync("db"), timeout=0.5, cache_ttl=0)
    loop = asyncio.new_event_loop()
    caller = loop.create_task(checker.acheck())
    loop.run_until_complete(asyncio.sleep(0.05))  # the evaluation is under way
    caller.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()  # the evaluation task is left pending on a closed loop
    slow.block = False
    checker.check()  # waits for the lost evaluation at most deadline + grace
    poll(lambda: checker.check()[1])  # wedged, every check would be NOT OK forever
