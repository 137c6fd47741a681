"""The log-control seam other clue packages reach through an entry point.

clue-log registers ``LOG_CONTROL`` under the entry-point group ``clue.log_control``, so a
package such as clue-debug can switch debug logs on for a request without importing
clue.log (see docs/development.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from clue.log import _api
from clue.log._context import context, current


class LogControl:
    """What clue-log offers other packages: query and scope debug logs."""

    def debug_enabled(self) -> bool:
        """Whether debug logs are on for the current log context."""
        return _api.debug_enabled()

    @contextmanager
    def debug_scope(self) -> Iterator[None]:
        """Debug logs on for the current log context (or a new one) for the block."""
        ctx = current.get()
        if ctx is None:
            with context(debug=True):
                yield
            return
        req = ctx.req
        previous = req.debug
        req.debug = True
        _api.flush_context(req)  # debug on means unbuffered: the buffer is written first
        try:
            yield
        finally:
            req.debug = previous


LOG_CONTROL = LogControl()
