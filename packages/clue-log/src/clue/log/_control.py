"""The log-control seam other clue packages reach through an entry point.

clue-log registers ``LOG_CONTROL`` under the entry-point group ``clue.log_control``, so a
package such as clue-debug can switch debug logs on for a request without importing
clue.log. The object has two methods: ``debug_enabled()``, whether debug logs are on for
the current log context, and ``debug_scope()``, a context manager that turns them on for
the current log context (opening one, which contexts opened inside inherit, when there
is none). A consumer loads the group once, lazily, and does nothing when it is empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from clue.log import _api, _write
from clue.log._context import LogContext, Request, context, current
from clue.log._state import state


class LogControl:
    """What clue-log offers other packages: query and scope debug logs."""

    def debug_enabled(self) -> bool:
        """Whether debug logs are on for the current log context."""
        return _api.debug_enabled()

    @contextmanager
    def debug_scope(self) -> Iterator[None]:
        """Debug logs on for the block, in this task only.

        Inside a log context, its buffer is written first (debug on means unbuffered),
        then the block logs through an unbuffered view of it with debug on, keeping what
        is bound: tasks or threads logging in the same context at the same time (a
        stream's other messages) keep their own setting. Outside any, a new context.
        """
        ctx = current.get()
        if ctx is None:
            with context(debug=True):
                yield
            return
        req = ctx.req
        _write.flush_context(req)  # debug on means unbuffered: the buffer is written first
        scoped = Request(True, req.disable, False, state.max_buffered)
        current.set(LogContext(scoped, ctx.bound))
        try:
            yield
        finally:
            # Back to the shared context, keeping what the block bound (as without the
            # scope). Set, not reset: the block may end in another copy of the context
            # (a generator resumed elsewhere), where a token would not apply.
            now = current.get()
            bound = now.bound if now is not None and now.req is scoped else ctx.bound
            current.set(LogContext(req, bound))


LOG_CONTROL = LogControl()
