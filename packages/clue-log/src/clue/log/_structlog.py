"""structlog integration: the processor ``configure()`` installs, and ``BufferingProcessor``
for hand-written chains.

With ``log.configure()`` the chain is just clue's processor, which hands each event to the
same buffered/immediate paths as ``log.info()`` and returns an empty string to a logger
whose methods do nothing. In a hand-written chain, ``BufferingProcessor`` keeps buffered
events (with the processors placed after it still to run) and replays them through the
rest of the chain and the real logger when the context is flushed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import structlog
from structlog.exceptions import DropEvent
from structlog.typing import EventDict, Processor, WrappedLogger

from clue.log import _api
from clue.log._config import state
from clue.log._context import _MUTABLE, current, snapshot
from clue.log._tracing import record_error

LEVELS = {
    "debug": "debug",
    "info": "info",
    "msg": "info",
    "log": "info",
    "warning": "warn",
    "warn": "warn",
    "error": "error",
    "err": "error",
    "exception": "error",
    "critical": "error",
    "fatal": "error",
    "failure": "error",
}


def processor(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
    """The terminal processor ``configure()`` installs: same semantics as ``log.info()``."""
    level = LEVELS.get(method_name, "info")
    msg = event_dict.pop("event", None)
    if level == "error":
        exc = event_dict.pop("exc_info", None)
        err = _api._exc_from(exc) if exc is not None else None
        _api.error(msg, err=err, **event_dict)
    else:
        _api._FNS[level](msg, **event_dict)
    return ""


def _make_bound_logger() -> type[Any]:
    """structlog's DEBUG filtering bound logger, with sync methods that go straight to clue.

    ``configure()`` installs it as the wrapper class: the chain would only hold clue's
    processor anyway, so the sync methods skip structlog's event-dict plumbing and call the
    same paths as ``log.info()`` (the async ``a*`` methods still go through the chain).
    Written for speed on purpose, like structlog's own pre-built classes.
    """
    base = structlog.make_filtering_bound_logger(logging.DEBUG)

    def make(level: str) -> Any:
        fn = _api._FNS.get(level)

        def meth(self: Any, event: Any = None, *args: Any, **kw: Any) -> None:
            bound = self._context
            if bound:
                kw = {**bound, **kw}
            if args:
                event = _interpolate(event, args)
            if fn is not None:
                fn(event, **kw)
            else:
                exc = kw.pop("exc_info", None)
                _api.error(event, err=_api._exc_from(exc) if exc is not None else None, **kw)

        meth.__name__ = level
        return meth

    def exception(self: Any, event: Any = None, *args: Any, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        error_meth(self, event, *args, **kw)

    def log(self: Any, level: int, event: Any = None, *args: Any, **kw: Any) -> None:
        name = _LEVEL_NAMES.get(level, "info") if level >= logging.DEBUG else "debug"
        meths[name](self, event, *args, **kw)

    info = make("info")
    error_meth = make("error")
    meths = {"debug": make("debug"), "info": info, "warn": make("warn"), "error": error_meth}
    namespace = {
        "debug": meths["debug"],
        "info": info,
        "msg": info,
        "warning": meths["warn"],
        "warn": meths["warn"],
        "error": error_meth,
        "err": error_meth,
        "critical": error_meth,
        "fatal": error_meth,
        "exception": exception,
        "log": log,
    }
    return type("ClueBoundLogger", (base,), namespace)


_BOUND_LOGGER: list[type[Any]] = []


def bound_logger_class() -> type[Any]:
    """The wrapper class ``configure()`` installs (built once)."""
    if not _BOUND_LOGGER:
        _BOUND_LOGGER.append(_make_bound_logger())
    return _BOUND_LOGGER[0]


_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}


def _interpolate(event: Any, args: tuple[Any, ...]) -> Any:
    if len(args) == 1 and isinstance(args[0], dict) and args[0]:
        args = args[0]  # type: ignore[assignment]
    try:
        return event % args
    except Exception:  # a bad format string still logs its arguments
        return f"{event} {args!r}"


class _NullLogger:
    """The logger behind clue's processor: clue writes, so every method does nothing."""

    __slots__ = ()

    def msg(self, *args: Any, **kw: Any) -> None:
        return None

    debug = info = warning = warn = error = err = exception = critical = fatal = log = msg
    failure = msg


class NullLoggerFactory:
    """structlog logger factory returning the do-nothing logger."""

    _logger = _NullLogger()

    def __call__(self, *args: Any) -> _NullLogger:
        return self._logger


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
    """

    def __init__(self, processors_after: Sequence[Processor] | None = None) -> None:
        """Args:
        processors_after: what to run at flush time; default: the processors that follow
            this one in ``structlog.get_config()["processors"]``.
        """
        self._explicit = list(processors_after) if processors_after is not None else None
        self._cache: tuple[int, int, list[Processor]] = (0, -1, [])

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        level = LEVELS.get(method_name, "info")
        ctx = current.get()
        if level == "debug" and not (state.debug or (ctx is not None and ctx.debug)):
            raise DropEvent
        if level == "error":
            if ctx is not None:
                _api.flush_context(ctx)
            exc = event_dict.get("exc_info")
            err = _api._exc_from(exc) if exc else None
            record_error(err, event_dict.get("event"))
            return event_dict
        if ctx is None or ctx.buf is None or _api.buffering_disabled():
            return event_dict
        if event_dict.get("exc_info"):
            exc = _api._exc_from(event_dict["exc_info"])
            event_dict["exc_info"] = (type(exc), exc, exc.__traceback__) if exc else False
        for k, v in event_dict.items():
            if type(v) in _MUTABLE:
                event_dict[k] = snapshot(v)
        ctx.buf.append(_ChainRecord(logger, method_name, event_dict, self._rest()))
        ctx.appended += 1
        raise DropEvent

    def _rest(self) -> list[Processor]:
        if self._explicit is not None:
            return self._explicit
        chain = structlog.get_config()["processors"]
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


class _ChainRecord:
    """A buffered structlog event, replayed through the rest of its chain on flush."""

    __slots__ = ("event_dict", "logger", "method_name", "rest", "time_ns")

    def __init__(
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict, rest: list[Processor]
    ) -> None:
        self.time_ns = time.time_ns()
        self.logger = logger
        self.method_name = method_name
        self.event_dict = event_dict
        self.rest = rest

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
