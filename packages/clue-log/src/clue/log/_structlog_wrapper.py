"""``buffering_wrapper_class``: the user's structlog chain, run only for entries that are written.

Inside a log context the wrapper class keeps each debug/info/warning call as a ``_Call``
(``_structlog_call``) with its mutable values as they are at the call; error, exception
and critical write the buffered calls first, then themselves.
"""

from __future__ import annotations

import contextvars
import copy
import logging
import sys
import time
from typing import Any

import structlog
from structlog._base import BoundLoggerBase
from structlog.testing import LogCapture

from clue.log import _api, _budget, _tracing, _write
from clue.log._context import _MUTABLE, current
from clue.log._structlog import LEVELS, _adopt
from clue.log._structlog_call import _Call
from clue.log._tracing import record_error

# Hot path aliases: one global read each on a call.
_get = current.get
_otel_get = _tracing.otel_context_get
_SPAN_KEY = _tracing.SPAN_KEY
_sampled = _tracing.sampled
_time_ns = time.time_ns
_copy_context = contextvars.copy_context


def _call_size(event: Any, kw: dict[str, Any]) -> int:
    # What a buffered structlog call adds to its context's bounds (``_budget``).
    return _budget.ENTRY_BYTES + _budget.size_of(event) + _budget.size_of_all(kw.values())


def _bound_size(context: Any, kw: dict[str, Any]) -> int:
    # What a call's bound key/values add to its estimate: each one the call does not give
    # again, as a keyword would (``_call_size`` of the event dict the chain will see). A
    # bound list or dict is copied at every buffered call, so it must count in every one.
    try:
        return sum([_budget.size_of(v) for k, v in context.items() if k not in kw])
    except Exception:  # a context that refuses to be read is counted as empty
        return 0


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


#: What ``_keep`` copies at a buffered call: lists, dicts, sets and bytearrays, their
#: subclasses too (``defaultdict``, ``OrderedDict``, ``Counter``, the application's own).
#: Told by the value's type (``issubclass``), never by its ``__class__``, which a hostile
#: value may make raise.
_KINDS = (list, dict, set, bytearray)


def _keep(v: Any) -> Any:
    # A mutable container (list, dict, set, bytearray) as it is at the call: a whole shallow
    # copy of the same type, which the chain renders as it would have then (``snapshot``'s
    # cap and its ``bytes`` are for clue's own rendering, not the chain's). A subclass is
    # copied as ``copy.copy`` does, so that it keeps its type and its attributes.
    try:
        if type(v) in _MUTABLE:
            return v.copy()
        return copy.copy(v)
    except Exception:  # mutated concurrently, or a copy that refuses: the object itself
        return v


def _frozen_exc_info(context: Any) -> tuple[BaseException, Any] | None:
    # ``exc_info`` bound with ``bind()`` and not given by the call, in the call's copy of
    # the key/values: resolved at the call as a keyword's is (``_snapshot_exc_info``).
    try:
        kw = {"exc_info": context["exc_info"]}
        held = _snapshot_exc_info(kw)
        context["exc_info"] = kw["exc_info"]
    except Exception:  # a context that refuses to be read is replayed as it is
        return None
    return held


def _frozen_context(context: Any) -> Any:
    # The bound key/values as they are at the call: a copy (the logger's own may be changed
    # in place later, through ``structlog.get_context()``), with its mutable values copied
    # too. A buffered call renders what it would have rendered then.
    try:
        context = context.copy()
        for k, v in context.items():
            if type(v) in _MUTABLE or issubclass(type(v), _KINDS):
                context[k] = _keep(v)
    except Exception:  # a context that refuses to be copied is replayed as it is
        return context
    return context


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
                            if type(v) in mutable or issubclass(type(v), _KINDS):
                                event_kw[k] = _keep(v)
                        held = None
                        if "exc_info" in event_kw:
                            held = _snapshot_exc_info(event_kw)
                        if type(event) in mutable or issubclass(type(event), _KINDS):
                            event = _keep(event)
                        size = _call_size(event, event_kw)
                        if event_args:
                            event_args = tuple(
                                _keep(a) if issubclass(type(a), _KINDS) else a for a in event_args
                            )
                            size += _budget.size_of_all(event_args)
                        context = _frozen_context(self._context)
                        if "exc_info" not in event_kw and "exc_info" in context:
                            held = _frozen_exc_info(context)
                        size += _bound_size(context, event_kw)
                        call = (
                            _time_ns(),
                            self,
                            method_name,
                            event,
                            event_kw,
                            _copy_context(),
                            size,
                            event_args,
                            held,
                            context,
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
    size_of = _budget.size_of
    entry = _budget.ENTRY_BYTES
    fixed = _api._FIXED_SIZE | {bool}
    kinds = _KINDS
    # Types that are no list, dict, set or bytearray subclass: told apart by identity
    # before ``isinstance`` is asked.
    others = frozenset({bytes, tuple, frozenset, complex})

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
                # A mutable value (a keyword or a bound one, a list, dict, set or bytearray
                # or a subclass of one) takes the copying path. The estimate is
                # ``_call_size``'s, written inline.
                size = entry + (len(event) if type(event) is str else size_of(event))
                for v in kw.values():
                    t = type(v)
                    if t is str:
                        size += len(v)
                    elif t in fixed:
                        pass
                    elif t in mutable or (t not in others and issubclass(t, kinds)):
                        break
                    else:
                        size += size_of(v)
                else:
                    # The bound key/values count as keywords do (``_bound_size``), each
                    # one the call does not give again.
                    context = self._context
                    for k, v in context.items():
                        t = type(v)
                        if t is str:
                            if k not in kw:
                                size += len(v)
                        elif t in fixed:
                            pass
                        elif t in mutable or (t not in others and issubclass(t, kinds)):
                            break
                        elif k not in kw:
                            size += size_of(v)
                    else:
                        if (
                            "exc_info" not in kw
                            and "exc_info" not in context
                            and not issubclass(type(event), kinds)
                        ):
                            # The key/values as they are now: a copy, replayed in a copy
                            # of the logger (``_replay``).
                            call = _Call(
                                (
                                    _time_ns(), self, name, event, kw, _copy_context(), size,
                                    (), None, context.copy(),
                                )
                            )  # fmt: skip
                            room = req.room - size  # ``_budget.append``, written inline
                            if room >= 0:
                                # Claimed, then appended, with no call in between
                                # (``_api``).
                                req.room = room
                                buf.append(call)
                            else:
                                _budget.tight(req, buf, call, size)
                            if req.buf is None:  # flushed by another thread meanwhile
                                _write._drain(req, buf)
                            return None
                return self._proxy_to_logger(name, event, **kw)
        if args:
            event = interpolate(event, args)
        return self._proxy_to_logger(name, event, **kw)

    meth.__name__ = name
    return meth
