"""The structlog integration ``configure()`` installs: clue's processor and bound logger.

With ``log.configure()`` the chain is just clue's processor, which hands each event to the
same buffered/immediate paths as ``log.info()`` and returns an empty string to a logger
whose methods do nothing (``NullLoggerFactory``). The wrapper class it installs
(``bound_logger_class()``) calls those paths directly while clue's chain is the one in
force, and gives a caching ``structlog.get_logger()`` proxy its methods (``_adopt``, which
the buffering wrapper class of ``_structlog_wrapper`` uses too). Whether clue's chain is
the one in force is one flag (``_ours``), refreshed by structlog's configuration object and
by ``CHAIN`` whenever either changes. A bound logger's plain key/values stay apart from a
buffered call's keywords (the record's ``args`` slot) and are merged when the entry is
written (``_write``).

For hand-written chains see ``_structlog_chain`` (``BufferingProcessor``) and
``_structlog_wrapper`` (``buffering_wrapper_class``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Any

import structlog
from structlog import _config as _structlog_config
from structlog.typing import EventDict, Processor, WrappedLogger

from clue.log import _api, _budget, _tracing, _write
from clue.log._context import current
from clue.log._render import text_of as _text_of
from clue.log._structlog_bound import bound_plain as _bound_plain
from clue.log._structlog_bound import is_plain as _is_plain

# Hot path aliases: one global read each on a call.
_get = current.get
_otel_get = _tracing.otel_context_get
_SPAN_KEY = _tracing.SPAN_KEY
_sampled = _tracing.sampled
_time_ns = time.time_ns

#: What ``event`` is when a call gives no positional message.
_NO_EVENT: Any = object()

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
    fn = _api.BY_LEVEL[level]
    given: Any = event_dict
    if not isinstance(given, dict):
        # What a processor before this one made of the event (a rendered line) is the
        # message; the empty string is what clue's own processor hands on, once written.
        if not (type(given) is str and not given):
            fn(given)
        return ""
    msg = event_dict.pop("event", None)
    # ``err``, ``exc_info`` and every other key go through as keywords: the log functions
    # take the message positional-only, so no key can collide with a parameter.
    try:
        fn(msg, **event_dict)
    except TypeError:  # a key that is not a string (the log functions never raise)
        fn(msg, **{k if type(k) is str else _text_of(k): v for k, v in event_dict.items()})
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
        size_of = _budget.size_of
        entry = _budget.ENTRY_BYTES
        # info and warn take ``log.info``'s buffered path inline (one Python call per
        # buffered call, not two); anything off that path goes through ``fn``.
        inline = level in {"info", "warn"}

        def meth(self: Any, event: Any = _NO_EVENT, /, *args: Any, **kw: Any) -> Any:
            if not _ours and not in_force():
                return _elsewhere(self, name, () if event is _NO_EVENT else (event, *args), kw)
            if args:
                event = _interpolate(event, args)
            elif event is _NO_EVENT:
                event = kw.pop("event", None)
            bound = self._context
            # Any ``exc_info`` (``True``, ``1``...) is resolved at the call: ``fn``'s path.
            if inline and _api._plain and "exc_info" not in kw:
                ctx = _get()
                if ctx is not None and (buf := ctx.req.buf) is not None:
                    req = ctx.req
                    otel_ctx = _otel_get()
                    if (
                        _SPAN_KEY not in otel_ctx
                        or not _sampled(otel_ctx[_SPAN_KEY])
                        or req.disable is False
                    ) and ((t := type(event)) is str or _is_plain(t)):
                        # The same estimate as ``log.info``'s fast path.
                        size = len(event) if t is str else size_of(event)
                        if bound:
                            cached = self._clue
                            if cached[0] is not bound:
                                cached = _bound_plain(self, bound)
                            keys = cached[2]
                            if keys is not None:
                                # Plain bound key/values, sized once per logger: the call's
                                # keywords alone are looked at, unless one of them is
                                # bound too (then merged here, as the reference path).
                                # The logger's copy of them, made as they were sized: what
                                # is written is what was counted.
                                bound = cached[3]
                                more = cached[1]
                                kept = False
                                try:
                                    for k, v in kw.items():
                                        if k in keys:
                                            break
                                        t = type(v)
                                        if t in fixed:
                                            pass
                                        elif t is str:
                                            more += len(v)
                                        elif t in plain or _api._learn_plain(t, kw):
                                            more += size_of(v)
                                        else:
                                            break
                                    else:
                                        kept = True
                                except Exception:  # a class whose (metaclass's) hash raises
                                    kept = False
                                if kept:
                                    # The logger's dict in the args slot: merged under the
                                    # call's keywords when the entry is written (``_write``).
                                    size += more
                                    rec = (
                                        _time_ns(), level, event, bound, kw, ctx.bound, None,
                                        otel_ctx, size,
                                    )  # fmt: skip
                                    # ``_budget.append``, written inline: claimed, then
                                    # appended, with no call in between (``_api``).
                                    room = req.room - entry - size
                                    if room >= 0:
                                        req.room = room
                                        buf.append(rec)
                                    else:
                                        _budget.tight(req, buf, rec, entry + size)
                                    if req.buf is None:  # flushed by another thread meanwhile
                                        _write._drain(req, buf)
                                    return None
                            kw = {**bound, **kw}
                            bound = None
                        kept = False
                        try:
                            for v in kw.values():
                                t = type(v)
                                if t in fixed:
                                    pass
                                elif t is str:
                                    size += len(v)
                                elif t in plain or _api._learn_plain(t, kw):
                                    size += size_of(v)
                                else:
                                    break
                            else:
                                # A bound ``exc_info`` merged here: resolved at the call.
                                kept = "exc_info" not in kw
                        except Exception:  # a class whose (metaclass's) hash raises
                            kept = False
                        if kept:
                            rec = (
                                _time_ns(), level, event, (), kw, ctx.bound, None, otel_ctx, size
                            )  # fmt: skip
                            room = req.room - entry - size  # ``_budget.append``
                            if room >= 0:
                                req.room = room
                                buf.append(rec)
                            else:
                                _budget.tight(req, buf, rec, entry + size)
                            if req.buf is None:  # flushed by another thread meanwhile
                                _write._drain(req, buf)
                            return None
            if bound:
                kw = {**bound, **kw}
            return fn(event, **kw)

        meth.__name__ = name
        return meth

    def exception(self: Any, /, *args: Any, **kw: Any) -> Any:
        if not _ours and not in_force():
            return _elsewhere(self, "exception", args, kw)
        kw.setdefault("exc_info", True)
        return error_meth(self, *args, **kw)

    def log(self: Any, /, *args: Any, **kw: Any) -> Any:
        if not _ours and not in_force():
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
        # ``_copy`` written inline: once per request for a logger bound per request.
        new = object.__new__(type(self))
        new._logger = self._logger
        new._processors = self._processors
        new._context = {**self._context, **new_values}
        return new

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
        # ``(context, size, keys, copy)`` of ``_bound_plain``, made on the first buffered
        # call.
        "_clue": (None, 0, None, None),
        "bind": bind,
        "new": new,
    }
    for name in ("debug", "info", "msg", "warning", "warn", "error", "critical", "fatal"):
        namespace["a" + name] = _make_async(namespace[name])
    namespace["aexception"] = _make_async(exception)
    namespace["alog"] = _make_async(log)
    _METHODS[:] = [n for n in namespace if n not in ("__init__", "bind", "new")]
    return type("ClueBoundLogger", (base,), namespace)


def _watching(name: str) -> Any:
    # A list method that changes the list, then refreshes ``_ours``.
    change = getattr(list, name)

    def changed(self: Any, *args: Any, **kw: Any) -> Any:
        try:
            return change(self, *args, **kw)
        finally:
            _refresh()

    changed.__name__ = name
    return changed


#: The list methods that change what a list holds (``sort`` and ``reverse`` only reorder
#: it: clue's processor alone stays alone, and a longer list stays longer).
_CHANGES = (
    "__setitem__", "__delitem__", "__iadd__", "__imul__",
    "append", "extend", "insert", "pop", "remove", "clear",
)  # fmt: skip
#: A list that refreshes ``_ours`` whenever it is changed in place.
_Chain: type[list[Any]] = type(
    "_Chain", (list,), {"__slots__": (), **{name: _watching(name) for name in _CHANGES}}
)

#: The chain ``configure()`` installs. Every ``configure()`` installs this same list, so a
#: logger cached under one ``configure()`` stays valid under the next; any other chain in
#: structlog's configuration (the application's ``structlog.configure(processors=...)``,
#: ``structlog.testing.capture_logs()``) is another object, and clue's bound logger then
#: hands its calls to structlog (see ``_elsewhere``), as it does when the list itself has
#: been changed in place (``capture_logs`` does that) so that it is no longer clue's
#: processor alone.
CHAIN: list[Processor] = _Chain([processor])

#: structlog's live configuration.
config = _structlog_config._CONFIG


class _WatchedConfiguration(_structlog_config._Configuration):
    """structlog's configuration object, refreshing ``_ours`` whenever it is set."""

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        finally:
            _refresh()


def in_force() -> bool:
    """Whether structlog's configured chain is ``CHAIN``, holding clue's processor alone."""
    try:
        return config.default_processors is CHAIN and len(CHAIN) == 1 and CHAIN[0] is processor
    except Exception:  # a configuration that cannot be read is not clue's
        return False


def _refresh() -> None:
    # Called by every change of structlog's configuration and of ``CHAIN``.
    global _ours  # noqa: PLW0603 - a module global is the cheapest read on the hot path
    _ours = _watched and in_force()


#: Whether ``in_force()`` holds, kept up to date by ``_WatchedConfiguration`` and
#: ``_Chain``: the one read a call of clue's bound logger makes to know that its chain is
#: still the one in force. Without the watch (a structlog whose configuration object
#: cannot take it) it stays False and every call asks ``in_force()``.
_ours = False
_watched = False
with contextlib.suppress(TypeError):
    config.__class__ = _WatchedConfiguration
    _watched = True
_refresh()


def _elsewhere(self: Any, name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    """A call on clue's bound logger when clue's chain is not the one in force.

    ``configure()`` turns on structlog's ``cache_logger_on_first_use``, so a module-level
    ``structlog.get_logger()`` keeps the clue bound logger it first built. When structlog
    has been reconfigured since, the call goes to a logger built from the configuration in
    force now, with the same bound key/values, as it would without the cache. When clue's
    list is the one in force but was changed in place, structlog's own method of the same
    name runs it.
    """
    if config.default_processors is CHAIN:
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
    # ``event % args`` as structlog and the stdlib make it (one non-empty dict is the
    # mapping). A bad format string still logs its arguments; an argument whose ``str`` or
    # ``repr`` raises (or nests past the recursion limit) is written as clue writes any
    # such value: the call never raises.
    given: Any = args
    try:
        if len(args) == 1 and isinstance(args[0], dict) and args[0]:
            given = args[0]
        return event % given
    except Exception:
        try:
            return f"{event} {given!r}"
        except Exception:
            values = args if given is args else given.values()
            return " ".join([_text_of(event), *[_text_of(a) for a in values]])


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
