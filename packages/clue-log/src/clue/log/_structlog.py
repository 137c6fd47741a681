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
import sys
import time
from collections.abc import Sequence
from typing import Any

import structlog
from structlog import _config as _structlog_config
from structlog.exceptions import DropEvent
from structlog.typing import EventDict, Processor, WrappedLogger

from clue.log import _api, _write
from clue.log._context import _MUTABLE, current, snapshot
from clue.log._state import state
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
    # ``err``, ``exc_info`` and every other key go through as keywords: the log functions
    # take the message positional-only, so no key can collide with a parameter.
    if level == "error":
        _api.error(msg, **event_dict)
    else:
        _api._FNS[level](msg, **event_dict)
    return ""


def _make_bound_logger() -> type[Any]:
    """structlog's DEBUG filtering bound logger, with methods that go straight to clue.

    ``configure()`` installs it as the wrapper class: the chain would only hold clue's
    processor anyway, so the methods (sync and async ``a*``) skip structlog's event-dict
    plumbing and call the same paths as ``log.info()``. Written for speed on purpose, like
    structlog's own pre-built classes. Every parameter is positional-only, so any keyword
    (``event`` next to a positional message, ``level``, ``self``...) is a key/value, never
    a ``TypeError``.
    """
    base = structlog.make_filtering_bound_logger(logging.DEBUG)
    _BASE[:] = [base]

    def make(level: str, name: str) -> Any:
        # ``name``: structlog's method of the same meaning, for calls clue does not take.
        fn = _api._FNS.get(level, _api.error)

        def meth(self: Any, /, *args: Any, **kw: Any) -> Any:
            try:
                if config.default_processors is not CHAIN or CHAIN[-1] is not processor:
                    return _elsewhere(self, name, args, kw)
            except IndexError:  # the configured list was emptied
                return _elsewhere(self, name, args, kw)
            if args:
                event = args[0]
                if len(args) > 1:
                    event = _interpolate(event, args[1:])
            else:
                event = kw.pop("event", None)
            bound = self._context
            if bound:
                kw = {**bound, **kw}
            return fn(event, **kw)

        meth.__name__ = name
        return meth

    def exception(self: Any, /, *args: Any, **kw: Any) -> Any:
        if config.default_processors is not CHAIN or CHAIN[-1:] != [processor]:
            return _elsewhere(self, "exception", args, kw)
        kw.setdefault("exc_info", True)
        return error_meth(self, *args, **kw)

    def log(self: Any, /, *args: Any, **kw: Any) -> Any:
        if config.default_processors is not CHAIN or CHAIN[-1:] != [processor]:
            return _elsewhere(self, "log", args, kw)
        if args:
            level, args = args[0], args[1:]
        else:
            level = kw.pop("level", logging.INFO)
        return meths[_level_name(level)](self, *args, **kw)

    def init(self: Any, logger: Any, processors: Any, context: Any) -> None:
        self._logger = logger
        self._processors = processors
        self._context = context
        if processors is CHAIN:
            _adopt(sys._getframe(1), self)
        else:
            # Built with another chain (the application configured only its processors):
            # structlog's own bound logger, running that chain.
            self.__class__ = base

    def _copy(self: Any, context: dict[str, Any]) -> Any:
        # A bound copy without ``__init__``: ``bind()`` once per request stays cheap.
        new = object.__new__(type(self))
        new._logger = self._logger
        new._processors = self._processors
        new._context = context
        return new

    def bind(self: Any, /, **new_values: Any) -> Any:
        if config.default_processors is not CHAIN:
            # Cached under clue's chain, structlog reconfigured since: what an uncached
            # logger would give.
            return structlog.get_logger(**self._context).bind(**new_values)
        return _copy(self, {**self._context, **new_values})

    def new(self: Any, /, **new_values: Any) -> Any:
        if config.default_processors is not CHAIN:
            return structlog.get_logger().bind(**new_values)
        return _copy(self, dict(new_values))

    info = make("info", "info")
    error_meth = make("error", "error")
    warning = make("warn", "warning")
    meths = {"debug": make("debug", "debug"), "info": info, "warn": warning, "error": error_meth}
    namespace: dict[str, Any] = {
        "debug": meths["debug"],
        "info": info,
        "msg": make("info", "msg"),
        "warning": warning,
        "warn": warning,
        "error": error_meth,
        "err": error_meth,
        "critical": make("error", "critical"),
        "fatal": make("error", "fatal"),
        "exception": exception,
        "log": log,
        "__init__": init,
        "bind": bind,
        "new": new,
    }
    for name in ("debug", "info", "msg", "warning", "warn", "error", "critical", "fatal"):
        namespace["a" + name] = _make_async(namespace[name])
    namespace["aexception"] = _make_async(exception)
    namespace["alog"] = _make_async(log)
    _METHODS[:] = [n for n in namespace if n not in ("__init__", "bind", "new")]
    return type("ClueBoundLogger", (base,), namespace)


#: The chain ``configure()`` installs. Every ``configure()`` installs this same list, so a
#: logger cached under one ``configure()`` stays valid under the next; any other chain in
#: structlog's configuration (the application's ``structlog.configure(processors=...)``,
#: ``structlog.testing.capture_logs()``) is another object, and clue's bound logger then
#: hands its calls to structlog (see ``_elsewhere``), as it does when the list itself has
#: been changed so that clue's processor no longer ends it.
CHAIN: list[Processor] = [processor]

#: structlog's live configuration, read on every call (one attribute load).
config = _structlog_config._CONFIG


def _elsewhere(self: Any, name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    """A call on clue's bound logger when clue's chain is not the one in force.

    ``configure()`` turns on structlog's ``cache_logger_on_first_use``, so a module-level
    ``structlog.get_logger()`` keeps the clue bound logger it first built. When structlog
    has been reconfigured since, the call goes to a logger built from the configuration in
    force now, with the same bound key/values, as it would without the cache. When clue's
    list itself was changed in place, structlog's own method of the same name runs it.
    """
    if CHAIN[-1:] != [processor]:
        # clue's list changed in place (``capture_logs`` does that): run it as structlog.
        return getattr(_BASE[0], name)(self, *args, **kw)
    return getattr(structlog.get_logger(**self._context).bind(), name)(*args, **kw)


#: The method names ``_adopt`` puts on a caching proxy.
_METHODS: list[str] = []
_PROXY = _structlog_config.BoundLoggerLazyProxy
_PROXY_BIND = getattr(getattr(_PROXY, "bind", None), "__code__", None)


def _adopt(frame: Any, logger: Any) -> None:
    """Give a caching ``structlog.get_logger()`` proxy the logging methods of the clue bound
    logger it has just built and cached.

    A cached proxy still resolves every ``proxy.info`` through its ``__getattr__`` and its
    cached ``bind()``: about as much work again as the call itself. With the cached
    logger's bound methods in the proxy's ``__dict__``, ``proxy.info`` is a plain attribute
    read. Those methods are the cached logger's own, so they still follow structlog's
    configuration on every call (see ``_elsewhere``). The proxy is the caller of this
    logger's ``__init__`` (``BoundLoggerLazyProxy.bind``); with any other caller, or a
    proxy that does not cache, nothing happens.
    """
    try:
        if frame.f_code is not _PROXY_BIND:
            return
        proxy = frame.f_locals.get("self")
        if not isinstance(proxy, _PROXY):
            return
        flag = proxy._cache_logger_on_first_use
        if flag is True or (flag is None and config.cache_logger_on_first_use is True):
            proxy.__dict__.update({name: getattr(logger, name) for name in _METHODS})
    except Exception:  # structlog's internals changed: the proxy keeps its own lookup
        return


def _make_async(meth: Any) -> Any:
    # clue's calls only append or write one batch: no executor hop (unlike structlog's),
    # so the call site, the log context and the bound key/values are the caller's.
    async def ameth(self: Any, /, *args: Any, **kw: Any) -> None:
        meth(self, *args, **kw)

    ameth.__name__ = "a" + meth.__name__
    return ameth


def _level_name(level: Any) -> str:
    # A stdlib level number to clue's level; anything else is info.
    if isinstance(level, bool) or not isinstance(level, int):
        return "info"
    if level >= logging.ERROR:
        return "error"
    if level >= logging.WARNING:
        return "warn"
    if level >= logging.INFO:
        return "info"
    return "debug"


_BOUND_LOGGER: list[type[Any]] = []
_BASE: list[type[Any]] = []


def bound_logger_class() -> type[Any]:
    """The wrapper class ``configure()`` installs (built once)."""
    if not _BOUND_LOGGER:
        _BOUND_LOGGER.append(_make_bound_logger())
    return _BOUND_LOGGER[0]


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
        req = ctx.req if ctx is not None else None
        if level == "debug" and not (state.debug if req is None else req.debug_on()):
            raise DropEvent
        if level == "error":
            if req is not None:
                _write.flush_context(req)
            err = event_dict.get("err")
            if not isinstance(err, BaseException):
                exc = event_dict.get("exc_info")
                err = (_write._exc_from(exc) if exc else None) or err
            record_error(err, event_dict.get("event"))
            return event_dict
        buf = req.buf if req is not None else None
        if req is None or buf is None:
            return event_dict
        if _api.stops_buffering(req):
            # Not buffered: the buffered events go first, through the same chain.
            _write._drain(req, buf)
            return event_dict
        if event_dict.get("exc_info"):
            exc = _write._exc_from(event_dict["exc_info"])
            event_dict["exc_info"] = (type(exc), exc, exc.__traceback__) if exc else False
        for k, v in event_dict.items():
            if type(v) in _MUTABLE:
                event_dict[k] = snapshot(v)
        buf.append(_ChainRecord(logger, method_name, event_dict, self._rest()))
        req.appended += 1
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
