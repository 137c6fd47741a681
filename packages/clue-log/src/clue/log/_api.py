"""The log functions: buffered, immediate and error paths, and flushing.

The buffered path is the hot path and is written for speed on purpose: it takes the
timestamp, captures what depends on the moment of the call (arguments with a shallow
snapshot of mutable containers, the bound key/values, ``exc_info``, key/value functions and
the call site when configured) and appends one tuple. Message formatting, entry building
and rendering happen at flush time, only for entries that are written.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from types import FrameType, TracebackType
from typing import Any, NoReturn

from clue.log import _keys, _tracing
from clue.log._config import state
from clue.log._context import _MUTABLE, LogContext, Request, current, pairs_of, root, snapshot
from clue.log._entry import Entry, settle
from clue.log._kv import KV
from clue.log._render import _CONTAINERS, Bounded, Traceback, text_of
from clue.log._tracing import is_tracing, record_error
from clue.log._tracing import sampled as _sampled

# A buffered record: (time_ns, level, msg, args, kv, bound, extra). An entry with ``err``
# or ``exc_info`` is a ``Held`` record (the record plus its ``err`` and traceback pairs);
# chain records (from a hand-written structlog chain) are objects with ``replay()``.
Record = tuple[int, str, Any, tuple[Any, ...], dict[str, Any], Any, list[tuple[str, Any]] | None]

_get = current.get
_otel_get = _tracing.otel_context_get
_SPAN_KEY = _tracing.SPAN_KEY
_time_ns = time.time_ns
_SKIP_PREFIXES = ("clue.log", "structlog", "logging")


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


class Held:
    """A buffered record whose ``err`` and traceback were captured at call time."""

    __slots__ = ("head", "rec", "tail")

    def __init__(
        self,
        rec: Record,
        head: list[tuple[str, Any]] | None,
        tail: list[tuple[str, Any]] | None,
    ) -> None:
        self.rec = rec
        self.head = head
        self.tail = tail

    @property
    def time_ns(self) -> int:
        return self.rec[0]


# Value types a buffered call keeps as they are: immutable, and meaning nothing special to
# clue. A value of any other type sends the call to the slow path, which copies mutable
# containers and resolves ``err``/``exc_info`` holding an exception or ``True`` at the
# call. Types are learned as they are met (the set is bounded); ``err`` strings and
# ``exc_info`` tuples are plain and are resolved when the entry is written.
_PLAIN: set[type] = {str, int, float, type(None), bytes, tuple, frozenset, complex, KV}
_PLAIN_CAP = 512


def _learn_plain(t: type) -> bool:
    if t in _MUTABLE or t is bool or issubclass(t, BaseException):
        return False
    if len(_PLAIN) < _PLAIN_CAP:
        _PLAIN.add(t)
    return True


def _make(level: str) -> Callable[..., None]:
    plain = _PLAIN

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
                        _SPAN_KEY not in otel_ctx
                        or not _sampled(otel_ctx[_SPAN_KEY])
                        or req.disable is False
                    ):
                        for v in kv.values():
                            if type(v) not in plain and not _learn_plain(type(v)):
                                break
                        else:
                            if args:
                                args = _snapshot_args(args)
                            buf.append((_time_ns(), level, msg, args, kv, ctx.bound, None))
                            req.appended += 1
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
    kv, head, tail, _ = _split_err(_capture(kv), None, level == "error", True)
    extra = _extra() if _has_extra() else None
    rec: Record = (_time_ns(), level, msg, _snapshot_args(args), kv, ctx.bound, extra)
    buf.append(rec if head is None and tail is None else Held(rec, head, tail))
    req.appended += 1
    if req.buf is None:
        _drain(req, buf)
    return True


def stops_buffering(req: Request) -> bool:
    """Whether this request's entry is written now rather than buffered: debug on, or the
    switch says so (checked per entry; the buffer stays for later entries)."""
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


def _capture(kv: dict[str, Any]) -> dict[str, Any]:
    return {k: snapshot(x) for k, x in kv.items()}


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
    """
info = _make("info")
info.__doc__ = """Log at info severity: buffered inside a log context, written at once outside.

    Accepts a message with ``%``-format arguments, ``KV``/``Fields`` positionally, and
    keywords.

    Example:
        >>> from clue import log
        >>> with log.context():
        ...     log.info("charging %s", "card", log.KV("amount", 42), currency="EUR")
    """
warn = _make("warn")
warn.__doc__ = """Log at warn severity: buffered inside a log context (``warning`` is an alias).

    Example:
        >>> from clue import log
        >>> with log.context():
        ...     log.warn("retrying", attempt=2)
    """
warning = warn


def print(msg: Any = None, /, *args: Any, **kv: Any) -> None:
    """Write an info entry now, never buffered.

    Example:
        >>> import io
        >>> from clue import log
        >>> out = io.StringIO()
        >>> log.configure(output=out, format=log.format_text)
        >>> with log.context():
        ...     log.print("server starting on port %d", 8080)
        >>> "msg=\\"server starting on port 8080\\"" in out.getvalue()
        True
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
    """
    ctx = _get()
    return state.debug if ctx is None else ctx.req.debug_on()


# --- writing ---------------------------------------------------------------------------


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
        entry = build_entry((_time_ns(), level, msg, args, kv, bound, extra), head, tail)
        for sink in state.sinks:
            sink.write([sink.render(entry)])
    except Exception:  # noqa: S110 - logging never raises into the application
        pass


def _split_err(
    kv: dict[str, Any], err: Any, is_error: bool, at_call: bool
) -> tuple[dict[str, Any], list[tuple[str, Any]] | None, list[tuple[str, Any]] | None, Any]:
    # ``err`` (keyword or argument) and ``exc_info`` (True, a sys.exc_info() tuple or an
    # exception): ``err`` becomes the first key and an exception's traceback the
    # ``exception`` key. At error severity an ``exc_info`` exception is also ``err``.
    # ``exc_info=True`` means the exception being handled only at the call (``at_call``).
    # Returns the remaining keywords, the head and tail pairs, and what to record on the
    # span (the exception, else ``err``).
    if "err" in kv or "exc_info" in kv:
        kv = dict(kv)
        if err is None:
            err = kv.pop("err", None)
        exc_info = kv.pop("exc_info", None)
    else:
        exc_info = None
    exc = err if _is_exc(err) else None
    tb = exc.__traceback__ if exc is not None else None
    if exc is None and exc_info is not None:
        if type(exc_info) is tuple and len(exc_info) == 3:
            tb = exc_info[2]
        exc = _exc_from(exc_info) if at_call or type(exc_info) is tuple else None
        if exc is not None and tb is None:
            tb = exc.__traceback__
        if err is None and is_error:
            err = exc
    head: list[tuple[str, Any]] | None = None
    if err is not None:
        head = [(_keys.ERROR_MESSAGE_KEY, err if exc is err else text_of(err))]
    tail: list[tuple[str, Any]] | None = None
    if exc is not None:
        tail = [(_keys.EXCEPTION_KEY, _traceback(exc, tb))]
    return kv, head, tail, exc if exc is not None else err


def flush_context(req: Request) -> None:
    """Write a context's buffered entries, once, and make the context unbuffered."""
    buf = req.buf
    if buf is None:
        return
    req.buf = None
    _drain(req, buf)


def _drain(req: Request, buf: deque[Any]) -> None:
    records: list[Any] = []
    try:
        while True:
            records.append(buf.popleft())
    except IndexError:
        pass
    dropped = req.appended - len(records)
    req.appended = 0
    with contextlib.suppress(Exception):  # logging never raises into the application
        write_records(records, dropped)


def write_records(records: list[Any], dropped: int = 0) -> None:
    """Render native records (one ``write()`` per output) and replay chain records."""
    sinks = state.sinks
    chunks: list[list[str | bytes]] = [[] for _ in sinks]
    if dropped > 0 and records:
        first = records[0]
        ts = first[0] if type(first) is tuple else first.time_ns
        marker = Entry(
            ts,
            "warn",
            [
                (_keys.MESSAGE_KEY, f"clue/log: {dropped} earlier entries dropped (max_buffered)"),
                (_keys.DROPPED_KEY, dropped),
            ],
        )
        for i, sink in enumerate(sinks):
            chunks[i].append(sink.render(marker))
    for rec in records:
        kind = type(rec)
        if kind is tuple or kind is Held:
            if kind is Held:
                entry = build_entry(rec.rec, rec.head, rec.tail)
            elif "err" in rec[4] or "exc_info" in rec[4]:
                # A plain ``err`` string or ``exc_info`` tuple, kept as given at the call.
                kv, head, tail, _ = _split_err(rec[4], None, rec[1] == "error", False)
                entry = build_entry((*rec[:4], kv, *rec[5:]), head, tail)
            else:
                entry = build_entry(rec)
            for i, sink in enumerate(sinks):
                chunks[i].append(sink.render(entry))
        else:
            # A structlog chain record: keep order with what we have rendered so far.
            for i, sink in enumerate(sinks):
                sink.write(chunks[i])
                chunks[i] = []
            rec.replay()
    for i, sink in enumerate(sinks):
        sink.write(chunks[i])


def build_entry(
    rec: Record,
    head: list[tuple[str, Any]] | None = None,
    tail: list[tuple[str, Any]] | None = None,
) -> Entry:
    """Turn a captured record into the ``Entry`` formats receive.

    Order of keys: ``err``, bound key/values, the message, positional key/values,
    keywords, the traceback, then key/value functions and the call site. Keys clue wrote
    itself keep their names; an application's key named like one of them is escaped
    (``settle``).
    """
    ts, level, msg, args, kv, bound, extra = rec
    key_vals: list[tuple[str, Any]] = list(head) if head else []
    key_vals.extend(bound)
    positional: list[tuple[str, Any]] = []
    if msg is not None:
        if isinstance(msg, str):
            fmt_args = args
            if args:
                fmt_args, positional = _split_args(args)
            key_vals.append((_keys.MESSAGE_KEY, _percent(msg, fmt_args) if fmt_args else msg))
        elif isinstance(msg, (KV, dict)):
            positional = pairs_of(msg)
            if args:
                more_fmt, more = _split_args(args)
                positional.extend(more)
                if more_fmt:
                    key_vals.append((_keys.MESSAGE_KEY, " ".join(text_of(a) for a in more_fmt)))
        else:
            key_vals.append((_keys.MESSAGE_KEY, text_of(msg)))
    elif args:
        fmt_args, positional = _split_args(args)
        if fmt_args:
            key_vals.append((_keys.MESSAGE_KEY, " ".join(text_of(a) for a in fmt_args)))
    key_vals.extend(positional)
    if "exc_info" in kv:
        for k, v in kv.items():
            key_vals.append((_keys.EXCEPTION_KEY, v) if k == "exc_info" else (k, v))
    else:
        key_vals.extend(kv.items())
    if tail:
        key_vals.extend(tail)
    if extra:
        key_vals.extend(extra)
    return Entry(ts, level, settle(key_vals))


def _split_args(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[tuple[str, Any]]]:
    fmt: list[Any] = []
    pairs: list[tuple[str, Any]] = []
    for a in args:
        try:
            if isinstance(a, (KV, dict)):
                pairs.extend([(k, v) for k, v in pairs_of(a)])
                continue
        except Exception:  # noqa: S110 - a mapping whose items() lie: logged as an argument
            pass
        fmt.append(a)
    return tuple(fmt), pairs


def _percent(msg: str, args: tuple[Any, ...]) -> str:
    try:
        return msg % tuple(Bounded(a) if isinstance(a, _CONTAINERS) else a for a in args)
    except Exception:  # a bad format string still logs its arguments
        return msg + " " + " ".join(text_of(a) for a in args)


def _snapshot_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    out: list[Any] = []
    for a in args:
        kept = a
        try:
            if isinstance(a, KV):
                kept = KV(a.k, snapshot(a.v)) if type(a.v) in _MUTABLE else a
            elif isinstance(a, dict):
                kept = {k: snapshot(v) for k, v in a.items()}
            elif type(a) in _MUTABLE:
                kept = snapshot(a)
        except Exception:  # a hostile argument is kept as given
            kept = a
        out.append(kept)
    return tuple(out)


def _exc_from(exc_info: Any) -> BaseException | None:
    try:
        if isinstance(exc_info, BaseException):
            return exc_info
        if isinstance(exc_info, tuple) and len(exc_info) == 3:
            return exc_info[1] if isinstance(exc_info[1], BaseException) else None
        if exc_info:
            return sys.exc_info()[1]
    except Exception:  # noqa: S110 - a value whose truth or class raises means no exception
        pass
    return None


def _is_exc(v: Any) -> bool:
    try:
        return isinstance(v, BaseException)
    except Exception:  # an object whose __class__ raises is no exception
        return False


def _traceback(exc: BaseException, tb: TracebackType | None = None) -> Traceback:
    try:
        lines = traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
        return Traceback("".join(lines).rstrip("\n"))
    except Exception:  # a hostile exception still logs its type
        return Traceback(f"{type(exc).__name__}: <traceback unavailable>")


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


def log_at(level: str, msg: Any, kv: dict[str, Any]) -> None:
    """Log one entry at ``level`` through the same paths as the public functions."""
    if level == "error":
        error(msg, **kv)
    else:
        _FNS[level](msg, **kv)


_FNS: dict[str, Callable[..., None]] = {"debug": debug, "info": info, "warn": warn}
