"""Writing: buffered records turned into entries and handed to the outputs.

Runs at flush time, only for entries that are written: a context's buffer is drained once
(``flush_context``), each record becomes an ``Entry`` (message formatting, ``err`` and
traceback placement, key order) and is rendered once per output, with one ``write()`` per
output per flush.
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
from collections import deque
from types import TracebackType
from typing import Any, Protocol, cast

from clue.log import _budget, _keys
from clue.log._budget import ENTRY_BYTES, drained, release, seize
from clue.log._context import Request, pairs_of
from clue.log._entry import Entry, settle
from clue.log._kv import KV
from clue.log._render import _CONTAINERS, Bounded, Traceback, text_of
from clue.log._state import state

# A buffered record, the native one: (time_ns, level, msg, args, kv, bound, extra, otel,
# size), a plain tuple because building one is a single step on the hot path, and it is
# the smallest object that holds nine fields. ``args`` is a dict, not a tuple, in a call of
# structlog's bound logger (``_structlog``): the logger's key/values, merged under ``kv``
# when the entry is written. ``otel`` is the OpenTelemetry context current
# at the call (the span an OTLP record carries). ``size`` is the estimate ``_budget``
# counts, less ``ENTRY_BYTES`` (so a small int the interpreter shares, for most entries).
# An entry with ``err`` or ``exc_info`` is a ``Held`` record (the record plus its ``err``
# and traceback pairs).
Record = tuple[
    int, str, Any, tuple[Any, ...], dict[str, Any], Any, list[tuple[str, Any]] | None, Any, int
]


class Replayable(Protocol):
    """A buffered structlog chain record (``_structlog``).

    Written by replaying it through the rest of its chain.
    """

    @property
    def time_ns(self) -> int: ...

    def replay(self) -> None: ...


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

    @property
    def size(self) -> int:
        return ENTRY_BYTES + self.rec[8]


#: What a context's buffer holds: native records, held ones, chain records.
Buffered = Record | Held | Replayable


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
        exc = exc_from(exc_info) if at_call or type(exc_info) is tuple else None
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
    release(req)


def _drain(req: Request, buf: deque[Any]) -> None:
    records: list[Buffered] = []
    with _budget.lock:  # the counters and the buffer emptied together; written after
        seize(req)
        try:
            while True:
                records.append(buf.popleft())
        except IndexError:
            pass
        dropped = drained(req, buf)
    req.written += len(records)
    req.dropped += dropped
    req.wrote = True
    with contextlib.suppress(Exception):  # logging never raises into the application
        write_records(records, dropped)


def write_records(records: list[Buffered], dropped: int = 0) -> None:
    """Render native records (one ``write()`` per output) and replay chain records."""
    sinks = state.sinks
    chunks: list[list[Any]] = [[] for _ in sinks]
    first_kept = records[0] if records else None
    dropped_marker = getattr(first_kept, "dropped_marker", None)
    if dropped > 0 and callable(dropped_marker):
        # The first entry kept is a structlog chain's: the marker goes through that chain
        # to its logger, where the entries it counts were going.
        text = f"clue/log: {dropped} earlier entries dropped (buffer bounds)"
        with contextlib.suppress(Exception):
            records = [dropped_marker(text, dropped), *records]
            dropped = 0
    if dropped > 0:
        # Dated as the first entry kept; when none was kept (every entry dropped, as when
        # other contexts hold the whole process-wide budget), as the flush.
        if records:
            first = records[0]
            ts = first[0] if isinstance(first, tuple) else first.time_ns
        else:
            ts = time.time_ns()
        marker = Entry(
            ts,
            "warn",
            [
                (_keys.MESSAGE_KEY, f"clue/log: {dropped} earlier entries dropped (buffer bounds)"),
                (_keys.DROPPED_KEY, dropped),
            ],
        )
        for i, sink in enumerate(sinks):
            chunks[i].append(sink.render(marker))
    for rec in records:
        # Exact types: a replayable record may be a tuple subclass (built at C speed).
        if type(rec) is Held or type(rec) is tuple:
            if isinstance(rec, Held):
                entry = build_entry(rec.rec, rec.head, rec.tail)
            else:
                native: Record = rec
                bound: Any = rec[3]
                if type(bound) is dict:
                    # A structlog bound logger's key/values, kept apart at the call
                    # (``_structlog``): merged now, under the call's keywords.
                    native = (*rec[:3], (), {**bound, **rec[4]}, *rec[5:])
                if "err" in native[4] or "exc_info" in native[4]:
                    # A plain ``err`` string or ``exc_info`` tuple, kept as given at the call.
                    kv, head, tail, _ = _split_err(native[4], None, rec[1] == "error", False)
                    entry = build_entry((*native[:4], kv, *native[5:]), head, tail)
                else:
                    entry = build_entry(native)
            for i, sink in enumerate(sinks):
                chunks[i].append(sink.render(entry))
        else:
            # A structlog chain record: keep order with what we have rendered so far.
            for i, sink in enumerate(sinks):
                sink.write(chunks[i])
                chunks[i] = []
            cast("Replayable", rec).replay()
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
    ts, level, msg, args, kv, bound, extra, otel, _ = rec
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
    entry = Entry(ts, level, settle(key_vals))
    entry._otel = otel
    return entry


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


def exc_from(exc_info: Any) -> BaseException | None:
    """The exception an ``exc_info`` or ``err`` value means, or None (never raises)."""
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
