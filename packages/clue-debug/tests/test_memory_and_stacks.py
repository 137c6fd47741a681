"""heap/allocs (tracemalloc), goroutine/threads stacks, cmdline."""

from __future__ import annotations

import asyncio
import sys
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest

from clue import debug
from clue.debug import _profiling

_KEEP: list[bytes] = []


def clue_allocate_blocks(n: int) -> None:
    """Allocate n blocks of 10 KiB that stay alive (the site a heap profile must find)."""
    _KEEP.extend(bytes(10_240) for _ in range(n))


@pytest.fixture
def served(wsgi_server):
    mux = debug.Mux()
    debug.mount_pprof_handlers(mux, max_seconds=2)
    yield wsgi_server(mux)
    _KEEP.clear()


def test_heap_starts_tracemalloc_on_demand_and_says_so(served, http, pprof) -> None:
    """The first heap request starts tracemalloc and says so in a header and a comment."""
    assert not tracemalloc.is_tracing()
    first = http(served + "/debug/pprof/heap")
    assert first.status == 200
    assert first.headers["X-Clue-Tracemalloc"] == "started"
    assert tracemalloc.is_tracing()
    assert any("started it now" in c for c in pprof(first.body).comments)
    second = http(served + "/debug/pprof/heap")
    assert second.headers["X-Clue-Tracemalloc"] == "tracing"
    assert not any("started it now" in c for c in pprof(second.body).comments)


def test_heap_profile_finds_live_allocations(served, http, pprof, tmp_path, go_pprof_top) -> None:
    """Live allocations appear under their function, in pprof that go tool pprof reads."""
    http(served + "/debug/pprof/heap")
    clue_allocate_blocks(50)
    reply = http(served + "/debug/pprof/heap")
    decoded = pprof(reply.body)
    assert decoded.sample_types == [("inuse_objects", "count"), ("inuse_space", "bytes")]
    # The allocation line is owned by the generator expression inside the function.
    ours = [s for s in decoded.samples if any("clue_allocate_blocks" in f[0] for f in s[0])]
    assert sum(s[1][1] for s in ours) >= 50 * 10_240
    assert not any(f[1].endswith("_heap.py") for s in decoded.samples for f in s[0])

    path = tmp_path / "heap.pb.gz"
    path.write_bytes(reply.body)
    assert "clue_allocate_blocks" in go_pprof_top(str(path), "-sample_index=inuse_space")


def test_heap_text_form(served, http) -> None:
    """?debug=1 answers text listing the largest sites with their stacks."""
    http(served + "/debug/pprof/heap")
    clue_allocate_blocks(20)
    text = http(served + "/debug/pprof/heap?debug=1").body.decode()
    assert "# heap:" in text
    assert "clue_allocate_blocks" in text


def test_allocs_window_shows_what_was_allocated_during_it(served, http, pprof) -> None:
    """allocs?seconds=N reports allocations made during the window."""
    http(served + "/debug/pprof/heap")
    done = threading.Event()

    def allocate_soon() -> None:
        clue_allocate_blocks(30)
        done.set()

    timer = threading.Timer(0.05, allocate_soon)
    timer.start()
    reply = http(served + "/debug/pprof/allocs?seconds=0.5")
    assert done.wait(5)
    decoded = pprof(reply.body)
    assert decoded.sample_types == [("alloc_objects", "count"), ("alloc_space", "bytes")]
    assert any("clue_allocate_blocks" in f[0] for s in decoded.samples for f in s[0])
    assert any("during 0.5s" in c for c in decoded.comments)


def test_stop_parameter_stops_tracing(served, http) -> None:
    """heap?stop=1 stops tracemalloc after the snapshot."""
    http(served + "/debug/pprof/heap")
    assert tracemalloc.is_tracing()
    http(served + "/debug/pprof/heap?stop=1")
    assert not tracemalloc.is_tracing()


async def clue_waiting_task(event: asyncio.Event) -> None:
    """A coroutine the stack dump must show."""
    await clue_inner_wait(event)


async def clue_inner_wait(event: asyncio.Event) -> None:
    """The awaited coroutine, shown below its caller."""
    await event.wait()


def test_goroutine_lists_threads_and_tasks(served, http, busy_thread, event_loop_thread) -> None:
    """goroutine and threads show every thread's stack and each asyncio task's await chain."""
    loop = event_loop_thread
    holder: dict[str, asyncio.Event] = {}

    async def start() -> None:
        holder["event"] = asyncio.Event()
        loop.create_task(clue_waiting_task(holder["event"]), name="clue-task")

    asyncio.run_coroutine_threadsafe(start(), loop).result(5)
    try:
        for path in ("/debug/pprof/goroutine", "/debug/pprof/threads"):
            text = http(served + path).body.decode()
            assert "thread" in text
            assert '"clue-busy"' in text
            assert "clue_busy_spin" in text
            assert "task 'clue-task' (pending)" in text
            task_part = text.split("task 'clue-task'")[1]
            assert task_part.index("clue_waiting_task") < task_part.index("clue_inner_wait")
    finally:
        loop.call_soon_threadsafe(holder["event"].set)


@pytest.mark.usefixtures("busy_thread")
def test_goroutine_as_pprof(served, http, pprof, go_pprof_top) -> None:
    """goroutine?format=pprof (or ?debug=0) counts thread stacks; go tool pprof reads it."""
    decoded = pprof(http(served + "/debug/pprof/goroutine?format=pprof").body)
    assert decoded.sample_types == [("threads", "count")]
    assert any(s[2].get("thread") == "clue-busy" for s in decoded.samples)
    assert "clue_busy_spin" in go_pprof_top(served + "/debug/pprof/goroutine?debug=0")


def test_cmdline_is_nul_separated(served, http) -> None:
    """cmdline answers the interpreter's command line separated by NUL bytes."""
    body = http(served + "/debug/pprof/cmdline").body
    assert body.decode().split("\x00") == sys.orig_argv


def test_stopping_tracemalloc_waits_for_a_running_allocs_window(served, http, poll) -> None:
    """heap?stop=1 (or allocs?stop=1) while another request measures an allocs window is
    answered 429 and leaves tracing on, so that window completes."""
    with ThreadPoolExecutor(1) as pool:
        window = pool.submit(http, served + "/debug/pprof/allocs?seconds=1&debug=1")
        poll(lambda: tracemalloc.is_tracing() and _profiling._PROFILE_LOCK.locked())
        for path in ("/debug/pprof/heap?stop=1", "/debug/pprof/allocs?stop=1"):
            refused = http(served + path)
            assert refused.status == 429
            assert refused.headers["Retry-After"] == "1"
        assert tracemalloc.is_tracing()
        assert window.result(30).status == 200
    assert http(served + "/debug/pprof/heap?stop=1").status == 200
    assert not tracemalloc.is_tracing()
