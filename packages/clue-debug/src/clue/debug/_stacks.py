"""Every thread's and every asyncio task's stack, as text (the ``goroutine`` endpoint)."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import traceback
from types import FrameType
from typing import Any

__all__ = ["dump_stacks"]

_MAX_AWAIT_DEPTH = 128


def dump_stacks() -> str:
    """All threads' stacks, then all pending asyncio tasks' await chains, as text."""
    out: list[str] = []
    threads = {t.ident: t for t in threading.enumerate()}
    frames = sys._current_frames()
    out.append(f"threads: {len(frames)}\n")
    for ident, frame in sorted(frames.items(), key=lambda kv: kv[0]):
        thread = threads.get(ident)
        name = thread.name if thread is not None else "?"
        daemon = f", daemon={thread.daemon}" if thread is not None else ""
        out.append(f'\nthread {ident} "{name}"{daemon}:\n')
        out.extend(traceback.format_stack(frame))
    tasks = _all_tasks()
    out.append(f"\nasyncio tasks: {len(tasks)}\n")
    for task in tasks:
        out.append(f"\ntask {task.get_name()!r} ({_task_state(task)}):\n")
        out.extend(traceback.format_list(_await_chain(task.get_coro())))
    return "".join(out)


def _all_tasks() -> list[asyncio.Task[Any]]:
    # Event loops may run in any thread; find them all (a debug endpoint can afford a
    # gc walk), then ask each for its pending tasks.
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]
    tasks: list[asyncio.Task[Any]] = []
    for loop in loops:
        if loop.is_closed():
            continue
        try:
            tasks.extend(asyncio.all_tasks(loop))
        except RuntimeError:  # the task set changed under us too often: skip this loop
            continue
    return sorted(tasks, key=lambda t: t.get_name())


def _task_state(task: asyncio.Task[Any]) -> str:
    if task.done():
        return "done"
    return "cancelling" if task.cancelling() else "pending"


def _await_chain(coro: object) -> traceback.StackSummary:
    """The frames of a coroutine and everything it awaits, outermost first."""
    frames: list[tuple[FrameType, int]] = []
    current: Any = coro
    for _ in range(_MAX_AWAIT_DEPTH):
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            frame = getattr(current, "ag_frame", None)
        if frame is None:
            break
        frames.append((frame, frame.f_lineno or 0))
        current = (
            getattr(current, "cr_await", None)
            or getattr(current, "gi_yieldfrom", None)
            or getattr(current, "ag_await", None)
        )
        if current is None:
            break
    return traceback.StackSummary.extract(frames)
