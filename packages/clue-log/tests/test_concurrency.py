"""Threads and asyncio tasks never see each other's key/values or entries (SPEC §3.3.9)."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from clue import log
from clue.log import _budget
from clue.log._context import current

from .conftest import JsonOut


def _request(i: int, fail: bool) -> None:
    with log.context():
        log.bind(req=i)
        for step in range(5):
            log.info("step", step=step, req_echo=i)
        if fail:
            log.error("failed", req_echo=i)


def test_thread_pool_reuse_no_cross_request_lines(out: JsonOut) -> None:
    """32 threads on one reused pool: every written line belongs to its own request."""
    n = 2000
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda i: _request(i, i % 7 == 0), range(n)))
    docs = out.docs()
    failed = [i for i in range(n) if i % 7 == 0]
    assert len(docs) == len(failed) * 6
    for d in docs:
        assert d["req"] == d["req_echo"]
        assert d["req"] % 7 == 0
    by_req: dict[int, list[object]] = {}
    for d in docs:
        by_req.setdefault(d["req"], []).append(d.get("step", d["msg"]))  # type: ignore[arg-type]
    assert all(v == [0, 1, 2, 3, 4, "failed"] for v in by_req.values())


def test_reused_worker_thread_sees_no_previous_context() -> None:
    """A pool thread that ran a request starts the next task with no log context."""
    seen: list[object] = []

    def task() -> None:
        seen.append(current.get())
        with log.context():
            log.bind(leak="x")

    with ThreadPoolExecutor(max_workers=1) as pool:
        for _ in range(5):
            pool.submit(task).result()
    assert seen == [None] * 5


async def test_thousands_of_tasks_no_cross_request_lines(out: JsonOut) -> None:
    """Thousands of concurrent asyncio tasks keep their own contexts."""

    async def request(i: int) -> None:
        with log.context():
            log.bind(req=i)
            for step in range(3):
                log.info("step", step=step, req_echo=i)
                await asyncio.sleep(0)
            if i % 5 == 0:
                log.error("failed", req_echo=i)

    await asyncio.gather(*(request(i) for i in range(3000)))
    docs = out.docs()
    assert len(docs) == 600 * 4
    assert all(d["req"] == d["req_echo"] and d["req"] % 5 == 0 for d in docs)


async def test_child_tasks_and_to_thread_see_request_context(out: JsonOut) -> None:
    """asyncio child tasks and asyncio.to_thread inherit their request's context."""
    with log.context():
        log.bind(req="parent")

        async def child() -> None:
            log.info("from child task")

        await asyncio.create_task(child())
        await asyncio.to_thread(log.info, "from thread")
        log.error("done")
    docs = out.docs()
    assert [d["msg"] for d in docs] == ["from child task", "from thread", "done"]
    assert all(d["req"] == "parent" for d in docs)


def test_copy_context_carries_log_context(out: JsonOut) -> None:
    """contextvars.copy_context() carries the log context to another thread."""
    with log.context():
        log.bind(req="r")
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(log.info, "in thread"))
        t.start()
        t.join()
        log.error("done")
    assert out.msgs() == ["in thread", "done"]


def test_concurrent_flush_and_append_lose_nothing(out: JsonOut) -> None:
    """Entries appended while another thread flushes the same context are all written once."""
    with log.context():
        ctx_copy = contextvars.copy_context()
        start = threading.Barrier(2)

        def writer() -> None:
            start.wait()
            for i in range(2000):
                log.info("w", i=i)

        t = threading.Thread(target=ctx_copy.run, args=(writer,))
        t.start()
        start.wait()
        log.flush()
        t.join()
    seen = [d["i"] for d in out.docs()]
    assert sorted(seen) == list(range(2000))
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("flush_midway", [False, True])
@pytest.mark.parametrize(("max_buffered", "max_bytes"), [(1000, 2000), (5, 20_000), (1000, 20_000)])
def test_threads_appending_to_one_context_keep_its_bounds(
    max_buffered: int, max_bytes: int, flush_midway: bool
) -> None:
    """Threads appending to one context at once (past its bounds, a flush racing them) never
    raise, keep its entry and byte bounds, and lose nothing uncounted and write nothing twice."""
    stream = io.StringIO()
    log.configure(
        output=stream, format=log.format_json,
        max_buffered=max_buffered, max_buffered_bytes=max_bytes,
    )  # fmt: skip
    threads, calls = 4, 1500
    raised: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def append(tid: int) -> None:
        start.wait()
        for i in range(calls):
            try:
                log.info("x" * (i * 37 % 1500), t=tid, i=i)
            except BaseException as exc:  # what reaches the application
                raised.append(exc)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as the interpreter lets them
    try:
        with log.context():
            workers = [
                threading.Thread(target=contextvars.copy_context().run, args=(append, t))
                for t in range(threads)
            ]
            for w in workers:
                w.start()
            start.wait()
            if flush_midway:
                log.flush()
            for w in workers:
                w.join()
            log.error("failed")
    finally:
        sys.setswitchinterval(switch)
    assert raised == []
    docs = [json.loads(line) for line in stream.getvalue().splitlines()]
    dropped = sum(d.get("clue.dropped", 0) for d in docs)
    kept = [(d["t"], d["i"]) for d in docs if "t" in d]
    assert len(kept) == len(set(kept))
    assert len(kept) + dropped == threads * calls
    if not flush_midway:  # everything written was held at once, within the bounds
        assert len(kept) <= max_buffered
        held = sum(_budget.ENTRY_BYTES + len(d["msg"]) for d in docs if "t" in d)
        assert held <= max_bytes
