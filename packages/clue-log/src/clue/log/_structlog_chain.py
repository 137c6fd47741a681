"""``BufferingProcessor``: clue's buffering as a processor in a hand-written structlog chain.

Inside a log context the processor keeps buffered events (``_ChainRecord``, with the
processors placed after it still to run) and replays them through the rest of the chain and
the real logger when the context is flushed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from structlog.exceptions import DropEvent
from structlog.typing import EventDict, Processor, WrappedLogger

from clue.log import _api, _budget, _keys, _structlog, _write
from clue.log._context import _MUTABLE, current, snapshot
from clue.log._state import state
from clue.log._structlog import config
from clue.log._tracing import record_error

# Assigned, not imported by name: CPython compiles ``LEVELS.get(...)`` on a name bound by an
# import as an attribute load and a call, on an assigned global as one method call.
LEVELS = _structlog.LEVELS


class BufferingProcessor:
    """clue's buffering as a processor for a hand-written structlog chain.

    Place it after the processors that capture call-time facts (``TimeStamper``,
    ``add_log_level``, ``merge_contextvars``) and before the expensive ones (renderers).
    Inside a log context it keeps debug/info/warning events; error, exception and critical
    flush the context (replaying kept events through the processors after it, then the
    logger) and then pass through. Outside a log context every event passes through.

    Example:
        >>> import structlog
        >>> from clue import log
        >>> structlog.configure(
        ...     processors=[
        ...         structlog.processors.TimeStamper(fmt="iso"),
        ...         structlog.processors.add_log_level,
        ...         log.BufferingProcessor(),
        ...         structlog.processors.JSONRenderer(),
        ...     ]
        ... )

    .. versionadded:: 0.1.0
    """

    def __init__(self, processors_after: Sequence[Processor] | None = None) -> None:
        """Make the processor.

        Args:
            processors_after: what to run at flush time; default: the processors that follow
                this one in ``structlog.get_config()["processors"]``.
        """
        self._explicit = list(processors_after) if processors_after is not None else None
        self._cache: tuple[int, int, list[Processor]] = (0, -1, [])

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        level = LEVELS.get(method_name, "info")
        ctx = current.get()
        req = ctx.req if ctx is not None else None
        if level == "debug" and not (state.debug if req is None else req.debug_on()):
            raise DropEvent
        if level == "error":
            if req is not None:
                _write.flush_context(req)
            _record_error(event_dict)
            return event_dict
        buf = req.buf if req is not None else None
        if req is None or buf is None:
            return event_dict
        if _api.stops_buffering(req):
            # Not buffered: the buffered events go first, through the same chain.
            _write._drain(req, buf)
            return event_dict
        # An ``exc_info`` that refuses to be looked at (its truth value) is kept as given.
        with contextlib.suppress(Exception):
            if event_dict.get("exc_info"):
                exc = _write.exc_from(event_dict["exc_info"])
                event_dict["exc_info"] = (type(exc), exc, exc.__traceback__) if exc else False
        for k, v in event_dict.items():
            if type(v) in _MUTABLE:
                event_dict[k] = snapshot(v)
        rec = _ChainRecord(logger, method_name, event_dict, self._rest())
        _budget.append(req, buf, rec, rec.size)
        if req.buf is None:  # flushed by another thread meanwhile
            _write._drain(req, buf)
        raise DropEvent

    def _rest(self) -> list[Processor]:
        if self._explicit is not None:
            return self._explicit
        chain: Any = config.default_processors  # get_config() builds a dict per call
        ident, size, rest = self._cache
        if ident == id(chain) and size == len(chain):
            return rest
        rest = []
        for i, p in enumerate(chain):
            if p is self:
                rest = list(chain[i + 1 :])
                break
        self._cache = (id(chain), len(chain), rest)
        return rest


def _record_error(event_dict: EventDict) -> None:
    # The error on the current span, from ``err`` or ``exc_info``; a value that refuses to
    # be looked at (its truth value, ``__class__``) never makes the call raise.
    try:
        err = event_dict.get("err")
        if not isinstance(err, BaseException):
            exc = event_dict.get("exc_info")
            err = (_write.exc_from(exc) if exc else None) or err
        record_error(err, event_dict.get("event"))
    except Exception:
        return


class _ChainRecord:
    """A buffered structlog event, replayed through the rest of its chain on flush."""

    __slots__ = ("event_dict", "logger", "method_name", "rest", "size", "time_ns")

    def __init__(
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict, rest: list[Processor]
    ) -> None:
        self.time_ns = time.time_ns()
        self.size = _budget.ENTRY_BYTES + _budget.size_of_all(event_dict.values())
        self.logger = logger
        self.method_name = method_name
        self.event_dict = event_dict
        self.rest = rest

    def dropped_marker(self, text: str, dropped: int) -> _ChainRecord:
        """The ``warn`` entry saying how many entries before this one were dropped.

        It goes through the same chain to the same logger, at this entry's time.
        """
        marker = object.__new__(_ChainRecord)
        marker.time_ns = self.time_ns
        marker.size = 0
        marker.logger = self.logger
        marker.method_name = "warning"
        event: dict[str, Any] = {"event": text, _keys.DROPPED_KEY: dropped}
        if "level" in self.event_dict:  # what ``add_log_level`` before the buffering set
            event["level"] = "warning"
        marker.event_dict = event
        marker.rest = self.rest
        return marker

    def replay(self) -> None:
        try:
            ev: Any = self.event_dict
            for proc in self.rest:
                ev = proc(self.logger, self.method_name, ev)
        except DropEvent:
            return
        except Exception:  # a failing processor must not break the flush
            return
        args: tuple[Any, ...]
        kw: dict[str, Any]
        if isinstance(ev, (str, bytes, bytearray)):
            args, kw = (ev,), {}
        elif isinstance(ev, tuple):
            args, kw = ev
        elif isinstance(ev, dict):
            args, kw = (), ev
        else:
            return
        # A failing output never raises into the app.
        with contextlib.suppress(Exception):
            getattr(self.logger, self.method_name)(*args, **kw)
