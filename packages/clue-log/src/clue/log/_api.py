"""The log functions: the buffered, immediate and error paths at the moment of the call.

The buffered path is the hot path and is written for speed on purpose: it takes the
timestamp, captures what depends on the moment of the call (arguments with a shallow
snapshot of mutable containers, the bound key/values, ``exc_info``, key/value functions and
the call site when configured), estimates the entry's size (``_budget``) and appends one
tuple. Message formatting, entry building
and rendering happen at flush time (``_write``), only for entries that are written.
"""

from __future__ import annotations

import contextvars
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, NoReturn

from clue.log import _keys, _tracing
from clue.log._budget import ENTRY_BYTES as _ENTRY_BYTES
from clue.log._budget import append as _append
from clue.log._budget import size_of as _size_of
from clue.log._budget import size_of_all as _size_of_all
from clue.log._budget import size_of_arg as _size_of_arg
from clue.log._budget import size_of_args as _size_of_args
from clue.log._budget import tight as _tight
from clue.log._capture import MUTABLE_BASES as _MUTABLE_BASES
from clue.log._capture import capture as _capture
from clue.log._capture import snapshot_arg as _snapshot_arg
from clue.log._capture import snapshot_args as _snapshot_args
from clue.log._context import _MUTABLE, LogContext, Request, current, root
from clue.log._kv import KV
from clue.log._state import state
from clue.log._tracing import is_tracing, record_error
from clue.log._tracing import sampled as _sampled
from clue.log._write import Held, Record, _drain, _split_err, build_entry, flush_context

_get = current.get
_otel_get = _tracing.otel_context_get
_SPAN_KEY = _tracing.SPAN_KEY
_time_ns = time.time_ns
_SKIP_PREFIXES = ("clue.log", "structlog", "logging")
_NoneType = type(None)


def _otel_empty() -> object:
    # What ``_otel_get`` returns while no OpenTelemetry context is attached: its context
    # variable's default, an empty Context (immutable). The buffered call tells it apart by
    # identity, cheaper than looking the span key up in it; anything else (another
    # runtime context) gets a sentinel that never matches, and the lookup.
    got = contextvars.Context().run(_otel_get)
    return got if isinstance(got, dict) and not got else object()


_OTEL_EMPTY = _otel_empty()


# Neither a custom buffering switch nor extras: the common case. A cache of ``state``
# that the hot path reads as a module global (the cheapest read there is);
# ``sync_switch()`` refreshes it whenever ``state`` changes.
_plain = True


def sync_switch() -> None:
    """Refresh the hot path's view of ``state`` (after ``configure`` or a test reset)."""
    global _plain  # noqa: PLW0603 - a module global is the cheapest read on the hot path
    _plain = state.disable_buffering is is_tracing and not _has_extra() and not state.debug


def _has_extra() -> bool:
    return bool(state.funcs) or state.file_location


# Value types a buffered call keeps as they are: immutable, and meaning nothing special to
# clue. A value of any other type sends the call to the slow path, which copies mutable
# containers and resolves ``err`` holding an exception, and any ``exc_info``, at the call.
# Types are learned as they are met (the set is bounded); ``err`` strings are plain and
# are resolved when the entry is written.
_PLAIN: set[type] = {str, int, float, type(None), bytes, tuple, frozenset, complex, KV}
_PLAIN_CAP = 512
# Plain types whose values add nothing to an entry's size estimate beyond ENTRY_BYTES (the
# buffered call tells them apart by identity, structlog's bound logger by this set). A
# bool adds nothing either, but is told apart on its own: structlog's bound logger sends
# ``exc_info=True`` the slow way (``_learn_plain``).
_FIXED_SIZE = frozenset({int, float, type(None)})


def _learn_plain(t: type, kv: dict[str, Any]) -> bool:
    if t is bool:
        # A bool is plain unless it may be ``exc_info=True`` (resolved at the call).
        return "exc_info" not in kv
    try:
        if t in _MUTABLE or issubclass(t, (BaseException, *_MUTABLE_BASES)):
            return False
    except Exception:  # a class whose subclass check raises: not plain
        return False
    if len(_PLAIN) < _PLAIN_CAP:
        _PLAIN.add(t)
    return True


def _make(level: str) -> Callable[..., None]:
    plain = _PLAIN
    entry = _ENTRY_BYTES
    otel_empty = _OTEL_EMPTY

    def log_fn(msg: Any = None, /, *args: Any, **kv: Any) -> None:
        ctx = _get()
        if ctx is not None:
            req = ctx.req
            buf = req.buf
            if buf is not None:
                if _plain:
                    # Hot path, written for speed: decide, capture, append; defer the rest.
                    otel_ctx = _otel_get()
                    if (
                        otel_ctx is otel_empty
                        or _SPAN_KEY not in otel_ctx
                        or not _sampled(otel_ctx[_SPAN_KEY])
                        or req.disable is False
                    ):
                        # The estimate beyond ENTRY_BYTES (``_budget.size_of``, written
                        # inline), the message's length first: a small int, shared, for
                        # most entries. Strings, then numbers, booleans and None, told
                        # apart by identity (cheaper than a set lookup); no snapshot.
                        if type(msg) is str:
                            size = len(msg)
                        else:  # key/values, or anything else, given as the message
                            msg = _snapshot_arg(msg)
                            size = _size_of_arg(msg)
                        kept = True  # every value kept as it is: no copy, no resolving
                        try:
                            for v in kv.values():
                                t = type(v)
                                if t is str:
                                    size += len(v)
                                elif t is int or t is float or t is _NoneType or t is bool:
                                    pass
                                elif t in plain or _learn_plain(t, kv):
                                    size += _size_of(v)
                                else:
                                    kept = False
                                    break
                        except Exception:  # a class whose (metaclass's) hash raises
                            kept = False
                        # Any ``exc_info`` goes the slow path: a true one (``True``, ``1``,
                        # ``"yes"``) means the exception being handled now.
                        if kept and "exc_info" not in kv:
                            if args:
                                args = _snapshot_args(args)
                                size += _size_of_args(args)
                            rec = (
                                _time_ns(), level, msg, args, kv, ctx.bound, None, otel_ctx, size
                            )  # fmt: skip
                            room = req.room - entry - size
                            if room >= 0:
                                # Claimed, then appended, with no call in between: under
                                # the GIL no other thread runs between the two (``_budget``).
                                req.room = room
                                buf.append(rec)
                            else:
                                # Past the counter: full by count, past what the context
                                # holds, or another thread working on it.
                                _tight(req, buf, rec, entry + size)
                            if req.buf is None:  # flushed by another thread meanwhile
                                _drain(req, buf)
                            return
                        if _buffer_slow(ctx, req, buf, level, msg, args, kv):
                            return
                    else:
                        # Not buffered (a sampled span): what is buffered is written first.
                        _drain(req, buf)
                elif _buffer_slow(ctx, req, buf, level, msg, args, kv):
                    return
        emit_now(ctx, level, msg, args, kv)

    log_fn.__name__ = log_fn.__qualname__ = level
    return log_fn


def _buffer_slow(
    ctx: LogContext,
    req: Request,
    buf: deque[Any],
    level: str,
    msg: Any,
    args: tuple[Any, ...],
    kv: dict[str, Any],
) -> bool:
    # The buffered path with a custom switch, extras, debug on, or ``err``/``exc_info``;
    # False when this entry is not buffered (what is buffered is then written first).
    if stops_buffering(req):
        _drain(req, buf)
        return False
    # ``err`` and ``exc_info`` are resolved now (``err``'s text made now); the rest copied.
    kv, head, tail, _ = _split_err(kv, None, level == "error", True)
    kv = _capture(kv)
    extra = _extra() if _has_extra() else None
    msg = _snapshot_arg(msg)
    args = _snapshot_args(args)
    size = _size_of_arg(msg) + _size_of_args(args) + _size_of_all(kv.values())
    if head is not None:
        size += _size_of_all([v for _, v in head])
    if extra:
        size += _size_of_all([v for _, v in extra])
    rec: Record = (_time_ns(), level, msg, args, kv, ctx.bound, extra, _otel_get(), size)
    size += _ENTRY_BYTES
    held = rec if head is None and tail is None else Held(rec, head, tail)
    _append(req, buf, held, size)
    if req.buf is None:
        _drain(req, buf)
    return True


def stops_buffering(req: Request) -> bool:
    """Whether this request's entry is written now rather than buffered.

    It is when debug is on, or when the switch says so (checked per entry; the buffer stays
    for later entries).
    """
    if req.debug_on():
        return True
    return req.disable is None and buffering_disabled()


def _make_debug() -> Callable[..., None]:
    buffered_or_now = _make("debug")

    def log_fn(msg: Any = None, /, *args: Any, **kv: Any) -> None:
        # A dropped debug call costs two reads: the context's explicit value, else global.
        ctx = _get()
        on = None if ctx is None else ctx.req.debug
        if state.debug if on is None else on:
            buffered_or_now(msg, *args, **kv)

    log_fn.__name__ = log_fn.__qualname__ = "debug"
    return log_fn


def buffering_disabled() -> bool:
    """The configured buffering switch, guarded: a failing predicate keeps buffering on."""
    try:
        return bool(state.disable_buffering())
    except Exception:  # a failing user predicate keeps buffering on
        return False


debug = _make_debug()
debug.__doc__ = """Log at debug severity: dropped unless debug is on for the context.

    Debug on (``configure(debug=True)``, ``log.context(debug=True)`` or clue-debug's
    switch) writes debug entries and disables buffering for that context only.

    Example:
        >>> from clue import log
        >>> log.debug("cache miss", key="user:42")

    .. versionadded:: 0.1.0
    """
info = _make("info")
info.__doc__ = """Log at info severity: buffered inside a log context, written at once outside.

    Accepts a message with ``%``-format arguments, ``KV``/``Fields`` positionally, and
    keywords.

    Example:
        >>> from clue import log
        >>> with log.context():
        ...     log.info("charging %s", "card", log.KV("amount", 42), currency="EUR")

    .. versionadded:: 0.1.0
    """
warn = _make("warn")
warn.__doc__ = """Log at warn severity: buffered inside a log context (``warning`` is an alias).

    Example:
        >>> from clue import log
        >>> with log.context():
        ...     log.warn("retrying", attempt=2)

    .. versionadded:: 0.1.0
    """
warning = warn


def print(msg: Any = None, /, *args: Any, **kv: Any) -> None:
    r"""Write an info entry now, never buffered.

    Example:
        >>> import io
        >>> from clue import log
        >>> out = io.StringIO()
        >>> log.configure(output=out, format=log.format_text)
        >>> with log.context():
        ...     log.print("server starting on port %d", 8080)
        >>> "msg=\"server starting on port 8080\"" in out.getvalue()
        True

    .. versionadded:: 0.1.0
    """
    emit_now(_get(), "info", msg, args, kv)


def error(msg: Any = None, /, *args: Any, err: Any = None, **kv: Any) -> None:
    """Flush the context's buffer, then write an error entry.

    From then on the context is unbuffered. ``err`` (an exception or a string) becomes
    the first key, ``ERROR_MESSAGE_KEY``; an exception's traceback is captured now and
    never truncated. The current recording span gets an ``exception`` event.

    Example:
        >>> from clue import log
        >>> with log.context():
        ...     log.info("loading user")  # buffered
        ...     try:
        ...         raise KeyError("alice")
        ...     except KeyError as exc:
        ...         log.error("user not found", err=exc)  # writes both entries
        time=... level=info msg="loading user"
        time=... level=error err='alice' msg="user not found" exception="Traceback ..."

    .. versionadded:: 0.1.0
    """
    ctx = _get()
    if ctx is not None:
        flush_context(ctx.req)
    emit_now(ctx, "error", msg, args, kv, err)


def fatal(msg: Any = None, /, *args: Any, err: Any = None, **kv: Any) -> NoReturn:
    """``error(...)`` then exit with status 1 (``SystemExit``, so ``finally`` blocks run).

    Example:
        >>> from clue import log
        >>> try:
        ...     log.fatal("cannot bind port", port=80)
        ... except SystemExit as exc:
        ...     exc.code
        time=... level=error msg="cannot bind port" port=80
        1

    .. versionadded:: 0.1.0
    """
    error(msg, *args, err=err, **kv)
    raise SystemExit(1)


def flush() -> None:
    """Write the current context's buffer now and stop buffering it.

    The seed's ``FlushAndDisableBuffering``. Outside a log context it does nothing.

    Example:
        >>> from clue import log
        >>> with log.context():
        ...     log.info("kept in memory")
        ...     log.flush()  # written; later entries are written at once
        time=... level=info msg="kept in memory"

    .. versionadded:: 0.1.0
    """
    ctx = _get()
    if ctx is not None:
        flush_context(ctx.req)


def debug_enabled() -> bool:
    """Whether debug logs are on for the current context.

    Example:
        >>> from clue import log
        >>> with log.context(debug=True):
        ...     log.debug_enabled()
        True

    .. versionadded:: 0.1.0
    """
    ctx = _get()
    return state.debug if ctx is None else ctx.req.debug_on()


# --- writing at once ---------------------------------------------------------------------


def emit_now(
    ctx: LogContext | None,
    level: str,
    msg: Any,
    args: tuple[Any, ...],
    kv: dict[str, Any],
    err: Any = None,
) -> None:
    """Build and write one entry at once (never raises).

    ``err`` and ``kv["err"]``/``kv["exc_info"]`` become the first key and the traceback;
    at error severity the current span records the exception.
    """
    try:
        is_error = level == "error"
        head: list[tuple[str, Any]] | None = None
        tail: list[tuple[str, Any]] | None = None
        exc: Any = None
        if err is not None or "err" in kv or "exc_info" in kv:
            kv, head, tail, exc = _split_err(kv, err, is_error, True)
        if is_error:
            record_error(exc, msg if isinstance(msg, str) else None)
        bound = ctx.bound if ctx is not None else root.bound
        extra = _extra() if _has_extra() else None
        rec = (_time_ns(), level, msg, args, kv, bound, extra, _otel_get(), 0)
        entry = build_entry(rec, head, tail)
        for sink in state.sinks:
            sink.write([sink.render(entry)])
    except Exception:  # noqa: S110 - logging never raises into the application
        pass


def _extra() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for fn in state.funcs:
        try:
            got = fn()
            if isinstance(got, Mapping):
                out.extend(got.items())
            elif got:
                out.extend((k if isinstance(k, str) else str(k), v) for k, v in got)
        except Exception:  # noqa: S112 - a failing key/value function adds nothing
            continue
    if state.file_location:
        out.append((_keys.FILE_KEY, caller_location()))
    return out


def caller_location() -> str:
    """``<dir>/<file>.py:<line>`` of the first frame outside clue.log, structlog, logging."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (isinstance(name, str) and name.startswith(_SKIP_PREFIXES) and _is_lib(name)):
            path = frame.f_code.co_filename
            short = os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))
            return f"{short}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


def _is_lib(name: str) -> bool:
    head = name.split(".", 2)
    if head[0] == "clue":
        return len(head) > 1 and head[1] == "log"
    return head[0] in {"structlog", "logging"}


#: The log function of each level: the one dispatch the stdlib bridge and structlog's
#: processor take, so every entry point reaches the same paths as the public functions.
BY_LEVEL: dict[str, Callable[..., None]] = {
    "debug": debug, "info": info, "warn": warn, "error": error,
}  # fmt: skip
