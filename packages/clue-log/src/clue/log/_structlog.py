"""The structlog integration: the processor ``configure()`` installs, and more.

``BufferingProcessor`` is for hand-written chains.

With ``log.configure()`` the chain is just clue's processor, which hands each event to the
same buffered/immediate paths as ``log.info()`` and returns an empty string to a logger
whose methods do nothing. In a hand-written chain, ``BufferingProcessor`` keeps buffered
events (with the processors placed after it still to run) and replays them through the
rest of the chain and the real logger when the context is flushed.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import datetime
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import structlog
from structlog import _config as _structlog_config
from structlog._base import BoundLoggerBase
from structlog.exceptions import DropEvent
from structlog.testing import LogCapture
from structlog.typing import EventDict, Processor, WrappedLogger

from clue.log import _api, _budget, _keys, _tracing, _write
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
    _api.BY_LEVEL[level](msg, **event_dict)
    return ""


def _make_bound_logger() -> type[Any]:
    """The DEBUG filtering bound logger of structlog, with methods that go straight to clue.

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
        fn = _api.BY_LEVEL.get(level, _api.error)
        plain = _api._PLAIN
        fixed = _api._FIXED_SIZE
        # info and warn take ``log.info``'s buffered path inline (one Python call per
        # buffered call, not two); anything off that path goes through ``fn``.
        inline = level in {"info", "warn"}

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
            if inline and _api._plain:
                ctx = _get()
                if ctx is not None and (buf := ctx.req.buf) is not None:
                    req = ctx.req
                    otel_ctx = _otel_get()
                    if (
                        _SPAN_KEY not in otel_ctx
                        or not _sampled(otel_ctx[_SPAN_KEY])
                        or req.disable is False
                    ) and type(event) in plain:
                        size = 0  # the same estimate as ``log.info``'s fast path
                        for v in kw.values():
                            t = type(v)
                            if t in fixed:
                                pass
                            elif t is str:
                                size += len(v)
                            elif t in plain or _api._learn_plain(t, kw):
                                size += _budget.size_of(v)
                            else:
                                break
                        else:
                            size += _budget.size_of(event)
                            rec = (
                                _time_ns(), level, event, (), kw, ctx.bound, None, otel_ctx, size
                            )  # fmt: skip
                            _budget.append(req, buf, rec, size + _budget.ENTRY_BYTES)
                            if req.buf is None:  # flushed by another thread meanwhile
                                _write._drain(req, buf)
                            return None
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


def _adopt(frame: Any, logger: Any, names: list[str] | None = None) -> None:
    """Give a caching ``structlog.get_logger()`` proxy the logging methods of its logger.

    The methods are those of the clue bound logger the proxy has just built and cached.

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
            names = _METHODS if names is None else names
            proxy.__dict__.update({name: getattr(logger, name) for name in names})
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
            err = event_dict.get("err")
            if not isinstance(err, BaseException):
                exc = event_dict.get("exc_info")
                err = (_write.exc_from(exc) if exc else None) or err
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


# --- the buffering wrapper class: the user's chain, run only for entries that are written ---

#: The time of the call being replayed (set only inside a replay, in the call's copied
#: context): what ``TimeStamper`` stamps instead of the time of the flush.
_CALL_TIME: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "clue_log_call_time", default=None
)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_get = current.get
_otel_get = _tracing.otel_context_get
_SPAN_KEY = _tracing.SPAN_KEY
_sampled = _tracing.sampled
_time_ns = time.time_ns
_copy_context = contextvars.copy_context


class TimeStamper(structlog.processors.TimeStamper):
    """The ``TimeStamper`` of structlog (same arguments, same output), with the call's time.

    It stamps an entry buffered by ``buffering_wrapper_class`` with the time of the call,
    not of the flush.

    Outside a replay it is structlog's own stamper.

    Example:
        >>> from clue import log
        >>> stamper = log.TimeStamper(fmt="iso", utc=True)
        >>> sorted(stamper(None, "info", {}))
        ['timestamp']

    .. versionadded:: 0.2.0
    """

    __slots__ = ()

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> EventDict:
        ns = _CALL_TIME.get()
        if ns is None:
            return self._stamper(event_dict)
        event_dict[self.key] = _stamp(ns, self.fmt, self.utc)
        return event_dict


def _stamp(ns: int, fmt: str | None, utc: bool) -> Any:
    # What structlog's stamper writes at the instant ``ns`` (see ``_make_stamper``).
    if fmt is None:
        return ns / 1e9
    at = _EPOCH + datetime.timedelta(microseconds=ns // 1000)
    if fmt.upper() == "ISO":
        if utc:
            return at.isoformat().replace("+00:00", "Z")
        return at.astimezone().replace(tzinfo=None).isoformat()
    if utc:
        return at.strftime(fmt)
    return at.astimezone().strftime(fmt)


class _Call(tuple):  # type: ignore[type-arg]
    """A buffered structlog call, a tuple subclass: built at C speed.

    Its fields: (time_ns, bound logger, method name, event, keywords, the call's copied
    ``contextvars`` context, its estimated size, its positional arguments, and
    ``(exception, traceback at the call)`` for an ``exc_info`` given as an exception, else
    None).
    """

    __slots__ = ()

    @property
    def time_ns(self) -> int:
        return self[0]  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        return self[6]  # type: ignore[no-any-return]

    def dropped_marker(self, text: str, dropped: int) -> _Call:
        """The ``warn`` entry saying how many entries before this one were dropped.

        It goes through the user's whole chain, in this call's context and at its time.
        """
        kw = {_keys.DROPPED_KEY: dropped}
        return _Call((self[0], self[1], "warning", text, kw, self[5], 0, (), None))

    def replay(self) -> None:
        # The user's whole chain, in the call's context (``merge_contextvars``, trace ids,
        # anything read from a context variable) and with the call's time.
        with contextlib.suppress(Exception):  # a failing chain must not break the flush
            self[5].run(_replay, self)


def _replay(call: _Call) -> None:
    _CALL_TIME.set(call[0])
    held = call[8]
    if held is None:
        call[1]._clue_replay(call[2], call[3], call[7], call[4])
        return
    # An exception given as ``exc_info`` is rendered with its traceback as at the call:
    # re-raised since, it has gathered the frames it went through.
    exc, tb = held
    now = exc.__traceback__
    exc.__traceback__ = tb
    try:
        call[1]._clue_replay(call[2], call[3], call[7], call[4])
    finally:
        exc.__traceback__ = now


def _call_size(event: Any, kw: dict[str, Any]) -> int:
    # What a buffered structlog call adds to its context's bounds (``_budget``).
    return _budget.ENTRY_BYTES + _budget.size_of(event) + _budget.size_of_all(kw.values())


def _snapshot_exc_info(kw: dict[str, Any]) -> tuple[BaseException, Any] | None:
    # ``exc_info=True`` means the exception being handled now: resolve it at the call.
    # An exception instance is kept with its traceback as it is now (see ``_replay``).
    # A value that refuses to be looked at (``bool``, ``__class__``) is kept as given.
    exc_info = kw["exc_info"]
    try:
        if isinstance(exc_info, BaseException):
            return (exc_info, exc_info.__traceback__)
        if exc_info is True or (exc_info and not isinstance(exc_info, tuple)):
            exc = _write.exc_from(exc_info)
            kw["exc_info"] = (type(exc), exc, exc.__traceback__) if exc is not None else False
    except Exception:
        return None
    return None


def _record_error(event: Any, kw: dict[str, Any]) -> None:
    # The error on the current span, from ``err`` or ``exc_info``; a value that refuses to
    # be looked at (``bool``, ``__class__``) never makes the call raise.
    try:
        err = kw.get("err")
        if not isinstance(err, BaseException):
            exc = kw.get("exc_info")
            err = (_write.exc_from(exc) if exc else None) or err
        record_error(err, event if isinstance(event, str) else None)
    except Exception:
        return


def _keep(v: Any) -> Any:
    # A mutable container (list, dict, set, bytearray) as it is at the call: a whole shallow
    # copy of the same type, which the chain renders as it would have then (``snapshot``'s
    # cap and its ``bytes`` are for clue's own rendering, not the chain's).
    try:
        return v.copy()
    except Exception:  # mutated concurrently: keep the object itself
        return v


def _frozen_logger(logger: Any, mutable: frozenset[type]) -> Any:
    # The bound logger with its mutable bound values as they are at the call: a buffered
    # call renders what it would have rendered then.
    context = logger._context
    for v in context.values():
        if type(v) in mutable:
            break
    else:
        return logger
    context = context.copy()
    for k, v in context.items():
        if type(v) in mutable:
            context[k] = _keep(v)
    frozen = copy.copy(logger)
    frozen._context = context
    return frozen


_WRAPPERS: dict[type[Any], type[Any]] = {}
_ADOPTED = ("debug", "info", "msg", "warning", "warn", "error", "err", "critical", "fatal")


def buffering_wrapper_class(base: int | type[Any] = logging.DEBUG) -> type[Any]:
    """A structlog ``wrapper_class`` that buffers calls inside a log context.

    It runs your whole processor chain only for the entries that are written.

    ``base`` is a minimum level (``structlog.make_filtering_bound_logger(base)`` is
    wrapped) or a bound logger class (a subclass of structlog's ``BoundLoggerBase``, such
    as ``structlog.stdlib.BoundLogger``). Inside a log context a debug/info/warning call
    keeps its arguments, its bound key/values, its ``contextvars`` context and its time;
    error, exception and critical write the buffered calls first, each through the full
    chain in its own context and with its own time (use ``log.TimeStamper``), then the
    error. Outside a log context, or when the context does not buffer, every call is the
    base class's own.

    Example:
        >>> import logging, structlog
        >>> from clue import log
        >>> structlog.configure(wrapper_class=log.buffering_wrapper_class(logging.INFO))

    .. versionadded:: 0.2.0
    """
    if isinstance(base, bool) or not isinstance(base, (int, type)):
        raise ValueError(f"buffering_wrapper_class: base={base!r} is neither a level nor a class")
    if isinstance(base, int):
        base = structlog.make_filtering_bound_logger(base)
    if not issubclass(base, BoundLoggerBase):
        raise ValueError(
            f"buffering_wrapper_class: base={base!r} is not a structlog BoundLoggerBase subclass"
        )
    cls = _WRAPPERS.get(base)
    if cls is None:
        cls = _WRAPPERS[base] = _make_buffering(base)
    return cls


def _make_buffering(base: type[Any]) -> type[Any]:
    base_proxy = base._proxy_to_logger
    base_init = base.__init__
    levels = LEVELS
    mutable = _MUTABLE

    def _proxy_to_logger(
        self: Any, method_name: str, event: Any = None, *event_args: Any, **event_kw: Any
    ) -> Any:
        level = levels.get(method_name, "info")
        ctx = _get()
        if level in {"info", "warn"}:
            if ctx is not None:
                req = ctx.req
                buf = req.buf
                if buf is not None:
                    if _api._plain:
                        otel_ctx = _otel_get()
                        keep = (
                            _SPAN_KEY not in otel_ctx
                            or not _sampled(otel_ctx[_SPAN_KEY])
                            or req.disable is False
                        )
                    else:
                        keep = not _api.stops_buffering(req)
                    if not keep:
                        # Not buffered: what is buffered is written first.
                        _write._drain(req, buf)
                    elif (procs := self._processors) and type(procs[-1]) is LogCapture:
                        pass  # ``capture_logs()`` sees every call as it is made
                    else:
                        for k, v in event_kw.items():
                            if type(v) in mutable:
                                event_kw[k] = _keep(v)
                        held = None
                        if "exc_info" in event_kw:
                            held = _snapshot_exc_info(event_kw)
                        if type(event) in mutable:
                            event = _keep(event)
                        size = _call_size(event, event_kw)
                        if event_args:
                            event_args = tuple(
                                _keep(a) if type(a) in mutable else a for a in event_args
                            )
                            size += _budget.size_of_all(event_args)
                        call = (
                            _time_ns(),
                            _frozen_logger(self, mutable),
                            method_name,
                            event,
                            event_kw,
                            _copy_context(),
                            size,
                            event_args,
                            held,
                        )
                        _budget.append(req, buf, _Call(call), size)
                        if req.buf is None:  # flushed by another thread meanwhile
                            _write._drain(req, buf)
                        return None
            return base_proxy(self, method_name, event, *event_args, **event_kw)
        here: Any = ctx.req if ctx is not None else None
        if level == "error":
            if here is not None:
                _write.flush_context(here)
            _record_error(event, event_kw)
            return base_proxy(self, method_name, event, *event_args, **event_kw)
        # debug: inside a log context, written only when clue's debug is on for it (then
        # unbuffered); outside one, the base class's own, as every other call.
        if here is not None and not here.debug_on():
            return None
        if here is not None and (held := here.buf) is not None:
            _write._drain(here, held)
        return base_proxy(self, method_name, event, *event_args, **event_kw)

    def _clue_replay(
        self: Any, method_name: str, event: Any, args: tuple[Any, ...], event_kw: dict[str, Any]
    ) -> None:
        base_proxy(self, method_name, event, *args, **event_kw)

    def init(self: Any, *args: Any, **kw: Any) -> None:
        base_init(self, *args, **kw)
        # A caching ``structlog.get_logger()`` proxy: give it this logger's methods.
        _adopt(sys._getframe(1), self, names)

    names = [
        name
        for plain in (*_ADOPTED, "exception", "log")
        for name in (plain, "a" + plain)
        if callable(getattr(base, name, None))
    ]
    namespace: dict[str, Any] = {
        "_proxy_to_logger": _proxy_to_logger,
        "_clue_replay": _clue_replay,
        "__init__": init,
        "__module__": __name__,
    }
    if _is_filtering(base):
        # structlog's filtering bound logger: its info/warning methods, with the buffered
        # path inlined (one Python call per buffered call, as ``log.info``).
        for name in ("info", "msg", "warning", "warn"):
            own = getattr(base, name, None)
            if own is not None and own is not _NOP:
                # The name structlog passes on (``msg`` is ``info``, ``warn`` is ``warning``).
                namespace[name] = _fast_method(own.__name__, mutable)
    return type("Buffering" + base.__name__, (base,), namespace)


_NOP: Any = getattr(structlog._native, "_nop", None)
_MAYBE_INTERPOLATE: Any = getattr(structlog._native, "_maybe_interpolate", None)


def _is_filtering(base: type[Any]) -> bool:
    # One of ``make_filtering_bound_logger``'s classes (their level methods only call
    # ``_proxy_to_logger`` with the interpolated event).
    return (
        _MAYBE_INTERPOLATE is not None
        and base.__module__ == "structlog._native"
        and base.__name__.startswith("BoundLoggerFilteringAt")
    )


def _fast_method(name: str, mutable: frozenset[type]) -> Any:
    interpolate = _MAYBE_INTERPOLATE

    def meth(self: Any, event: Any, *args: Any, **kw: Any) -> Any:
        ctx = _get()
        if ctx is not None and (buf := ctx.req.buf) is not None and _api._plain:
            req = ctx.req
            otel_ctx = _otel_get()
            if (
                _SPAN_KEY not in otel_ctx
                or not _sampled(otel_ctx[_SPAN_KEY])
                or req.disable is False
            ) and (not (procs := self._processors) or type(procs[-1]) is not LogCapture):
                if args:
                    event = interpolate(event, args)
                # A mutable value (a keyword or a bound one) takes the copying path.
                for v in kw.values():
                    if type(v) in mutable:
                        break
                else:
                    for v in self._context.values():
                        if type(v) in mutable:
                            break
                    else:
                        if "exc_info" not in kw and type(event) not in mutable:
                            size = _call_size(event, kw)
                            call = (
                                _time_ns(),
                                self,
                                name,
                                event,
                                kw,
                                _copy_context(),
                                size,
                                (),
                                None,
                            )
                            _budget.append(req, buf, _Call(call), size)
                            if req.buf is None:  # flushed by another thread meanwhile
                                _write._drain(req, buf)
                            return None
                return self._proxy_to_logger(name, event, **kw)
        if args:
            event = interpolate(event, args)
        return self._proxy_to_logger(name, event, **kw)

    meth.__name__ = name
    return meth
