"""Outputs: where written entries go.

A stream plus the format its entries are rendered with (``Sink``), or any other ``Output``
(``log.otlp_output()``, in ``_otlp``).

A failing output (closed pipe, full disk, a stream that raises) never raises into the
application: failures are counted and reported on stderr at most once per interval.

Fork-safe: every lock here is re-created in a forked child (``os.register_at_fork``), so a
process forked while another thread holds one (gunicorn ``--preload``, ``multiprocessing``
with fork) can log at once.
"""

from __future__ import annotations

import codecs
import errno
import io
import os
import re
import sys
import threading
import time
import weakref
from typing import IO, Any, Protocol

from clue.log import _keys
from clue.log._entry import Entry
from clue.log._format import Format, format_terminal, format_text
from clue.log._metrics import output_written as written

REPORT_INTERVAL = 60.0


class Output(Protocol):
    """What the writing path hands entries to.

    ``render`` once per entry, then ``write`` with the batch, once per flush. Neither raises.
    """

    def render(self, entry: Entry) -> Any:
        """Prepare one entry (a stream output renders it with its format)."""
        ...

    def write(self, chunks: list[Any]) -> None:
        """Write what ``render`` returned for a batch of entries, in order."""
        ...


class Sink:
    """One output stream and its format; writes batches with a single ``write()``."""

    __slots__ = ("_binary", "_fixed", "_format", "_tty", "failures")

    def __init__(self, stream: IO[Any] | None, fmt: Format | None) -> None:
        # stream None: whatever sys.stdout is at write time (so test capture and
        # redirection work); fmt None: terminal format on a TTY, text otherwise.
        self._fixed = stream
        self._format = fmt
        self._binary = _is_binary(stream) if stream is not None else False
        self._tty: tuple[object, bool] = (None, False)
        self.failures = 0

    @property
    def stream(self) -> IO[Any]:
        """The stream written to."""
        return self._fixed if self._fixed is not None else sys.stdout

    @property
    def format(self) -> Format:
        """The format entries are rendered with."""
        if self._format is not None:
            return self._format
        stream = self.stream
        if self._tty[0] is not stream:
            try:
                tty = bool(stream.isatty())
            except Exception:  # a stream without a working isatty is not a terminal
                tty = False
            self._tty = (stream, tty)
        return format_terminal if self._tty[1] else format_text

    def render(self, entry: Entry) -> str | bytes:
        """Render one entry; a custom format that raises yields a marker line."""
        fmt = self.format
        try:
            out: object = fmt(entry)  # a custom format may return anything at run time
        except Exception as exc:
            return f"clue/log: format {_name(fmt)} failed: {type(exc).__name__}\n"
        if isinstance(out, (str, bytes)):
            return out
        return f"clue/log: format {_name(fmt)} returned {type(out).__name__}\n"

    def write(self, chunks: list[str | bytes]) -> None:
        """Write rendered entries with one ``write()`` call, never raising."""
        if not chunks:
            return
        if getattr(_writing, "active", False):
            # The output's own write() logged through clue (a logging proxy as stdout):
            # writing again would deadlock on the stream's lock or recurse without end.
            self.failures += 1
            failures.report(self, RuntimeError("the output logged while being written"))
            return
        _writing.active = True
        try:
            self._write(chunks)
        finally:
            _writing.active = False

    def _write(self, chunks: list[str | bytes]) -> None:
        try:
            stream = self.stream
            binary = self._binary if self._fixed is not None else _is_binary(stream)
            data = _join(chunks, binary)
            with lock_for(stream):
                lost = 0
                try:
                    _write_all(stream, data)
                except UnicodeError:
                    # An entry the stream cannot encode (a custom format's lone surrogate on
                    # a strict UTF-8 stream): nothing was written; escape what the stream
                    # cannot take, entry by entry, so its neighbours are written too.
                    logfmt = self.format in (format_text, format_terminal)
                    lost = _write_each(stream, chunks, binary, logfmt)
                flush = getattr(stream, "flush", None)
                if flush is not None:
                    flush()
            if lost:
                raise UnicodeError(f"{lost} entries could not be encoded for the stream")
        except Exception as exc:
            self.failures += 1
            failures.report(self, exc)


# Objects holding a lock, re-created in a forked child: the thread that held one in the
# parent does not exist in the child, so the lock would never be released.
_FORK_SAFE: weakref.WeakSet[Any] = weakref.WeakSet()


def fork_safe(obj: Any) -> None:
    """Have ``obj._after_fork()`` called in every forked child (it re-creates its locks)."""
    _FORK_SAFE.add(obj)


def _reinit_after_fork() -> None:
    for obj in list(_FORK_SAFE):
        obj._after_fork()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_reinit_after_fork)


# Set while this thread writes to an output.
_writing = threading.local()
_stream_locks: dict[tuple[str, int], threading.Lock] = {}
_stream_locks_guard = threading.Lock()


def _fresh_locks_after_fork() -> None:
    # A lock another thread held at fork() stays held in the child: start with new ones.
    global _stream_locks_guard  # noqa: PLW0603 - replaced only in a forked child
    _stream_locks_guard = threading.Lock()
    _stream_locks.clear()


os.register_at_fork(after_in_child=_fresh_locks_after_fork)


def lock_for(stream: object) -> threading.Lock:
    """The lock every sink takes to write to ``stream``.

    One per file descriptor (two stream objects on one descriptor share it), else one per stream
    object, so two outputs on one stream never interleave their batches.
    """
    try:
        key = ("fd", int(stream.fileno()))  # type: ignore[attr-defined]
    except Exception:  # no descriptor (StringIO, a custom stream): the object itself
        key = ("id", id(stream))
    with _stream_locks_guard:
        lock = _stream_locks.get(key)
        if lock is None:
            if len(_stream_locks) >= 4096:  # streams come and go: forget the old ones
                _stream_locks.clear()
            lock = _stream_locks[key] = threading.Lock()
        return lock


def _join(chunks: list[str | bytes], binary: bool) -> str | bytes:
    # Text a binary stream gets is UTF-8 with what UTF-8 cannot hold (lone surrogates)
    # escaped as \udcxx; bytes a text stream gets are decoded with invalid bytes escaped.
    if binary:
        return b"".join(
            c if isinstance(c, bytes) else c.encode("utf-8", "backslashreplace") for c in chunks
        )
    return "".join(
        c if isinstance(c, str) else c.decode("utf-8", "backslashreplace") for c in chunks
    )


def _write_each(stream: IO[Any], chunks: list[str | bytes], binary: bool, logfmt: bool) -> int:
    """Write ``chunks`` with what the stream cannot encode escaped.

    Returns how many entries could still not be written.
    """
    encoding = getattr(stream, "encoding", None) or "utf-8"
    errors = getattr(stream, "errors", None) or "strict"
    try:
        codecs.lookup(encoding)
    except LookupError:  # an encoding Python does not know: plain ASCII is safest
        encoding = "ascii"
    safe: list[str | bytes] = []
    for chunk in chunks:
        text = chunk if isinstance(chunk, str) else chunk.decode("utf-8", "backslashreplace")
        try:
            text.encode(encoding, errors)
        except UnicodeError:
            text = _logfmt_for(text, encoding) if logfmt else _escape_for(text, encoding)
        safe.append(text)
    try:
        _write_all(stream, _join(safe, binary))
    except UnicodeError:
        lost = 0
        for one in safe:  # still refused: one write per entry, so one loss is one entry
            try:
                _write_all(stream, _join([one], binary))
            except UnicodeError:
                lost += 1
        return lost
    return 0


def _write_all(stream: IO[Any], data: str | bytes) -> None:
    """``stream.write(data)``, then the rest of what a raw binary stream took only part of.

    A raw binary stream may take only part (as ``RawIOBase.write`` may): an entry never loses
    its end or runs into the next one. A stream that then takes nothing is a failure, never a
    busy loop; so is a raw stream whose first ``write()`` returns ``None`` (it would block:
    nothing was written). What the stream took is counted in ``clue.log.output.bytes`` as it
    goes, in the stream's own encoding, so a write that fails halfway counts what got through.
    """
    n: object = stream.write(data)  # a custom stream may return anything
    if not isinstance(data, bytes):
        written("stream", _text_size(stream, data))
        return
    if n is None and isinstance(stream, io.RawIOBase):
        raise OSError(errno.EAGAIN, f"the stream took nothing; {len(data)} bytes unwritten")
    if type(n) is not int or not 0 < n < len(data):
        written("stream", len(data))  # all of it (or a stream whose write() gives no count)
        return
    written("stream", n)
    rest = memoryview(data)[n:]
    while rest:
        took: object = stream.write(rest)
        if type(took) is not int or took <= 0:
            raise OSError(errno.EAGAIN, f"the stream took no more; {len(rest)} bytes unwritten")
        took = min(took, len(rest))
        written("stream", took)
        rest = rest[took:]


# Per encoding name a stream gives: whether ASCII text is one byte a character in it (so
# ASCII text is counted by its length), and the bytes its encoder writes before any text
# (a byte order mark, which a stream writes once, not per write); None for an encoding
# Python does not know.
_encodings: dict[str, tuple[bool, int] | None] = {}


def _encoding_facts(encoding: str) -> tuple[bool, int] | None:
    facts = _encodings.get(encoding, False)
    if facts is False:
        try:
            facts = ("\n =az{}".encode(encoding) == b"\n =az{}", len("".encode(encoding)))
        except Exception:  # an unknown encoding, or a codec that is not text to bytes
            facts = None
        if len(_encodings) < 64:
            _encodings[encoding] = facts
    return facts  # type: ignore[return-value]


def _text_size(stream: object, text: str) -> int:
    """The bytes ``text`` takes in ``stream``'s encoding, with the stream's error handler.

    A stream without an encoding (``StringIO``) is counted as UTF-8.
    """
    encoding: object = getattr(stream, "encoding", None)
    facts = _encoding_facts(encoding) if isinstance(encoding, str) else None
    if facts is not None and isinstance(encoding, str):
        ascii_compatible, preamble = facts
        if ascii_compatible and text.isascii():
            return len(text)
        errors = getattr(stream, "errors", None)
        try:
            encoded = text.encode(encoding, errors if isinstance(errors, str) else "strict")
        except Exception:  # noqa: S110 - a handler the codec refuses: counted as UTF-8
            pass
        else:
            return len(encoded) - preamble
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _u_escapes(err: UnicodeError) -> tuple[str, int]:
    r"""Codec error handler: each character as a ``\uXXXX`` escape.

    Astral characters become a surrogate pair: the escape both JSON strings and quoted logfmt values
    read back.
    """
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = []
    for c in err.object[err.start : err.end]:
        n = ord(c)
        if n > 0xFFFF:
            n -= 0x10000
            out.append(f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}")
        else:
            out.append(f"\\u{n:04x}")
    return "".join(out), err.end


codecs.register_error("clue.log.u_escapes", _u_escapes)


def _escape_for(text: str, encoding: str) -> str:
    r"""``text`` with what ``encoding`` cannot hold as ``\uXXXX`` escapes.

    Valid inside JSON strings, where a JSON line holds any character outside ASCII.
    """
    return text.encode(encoding, "clue.log.u_escapes").decode(encoding, "replace")


# One key=value pair of a logfmt line clue wrote (a value bare or quoted), or another token
# (the terminal format's colored severity).
_PAIR = re.compile(r'([^ ="]+)=("(?:[^"\\]|\\.)*"|[^ "]*)|[^ ]+')


def _logfmt_for(line: str, encoding: str) -> str:
    r"""A logfmt line for a stream that cannot encode all of it.

    A value is quoted and holds ``\uXXXX`` escapes; a key character the stream cannot hold becomes
    ``_`` (as any character a logfmt key cannot hold does), with one more ``_`` in front if that
    made one of clue's names.
    """
    body, nl = (line[:-1], "\n") if line.endswith("\n") else (line, "")

    def fix(m: re.Match[str]) -> str:
        token = m.group()
        if _encodes(token, encoding):
            return token
        key, value = m.group(1), m.group(2)
        if key is None:
            return _escape_for(token, encoding)
        if not _encodes(key, encoding):
            key = "".join(c if _encodes(c, encoding) else "_" for c in key)
            if key.lstrip("_") in _keys.RESERVED:
                key = "_" + key
        if not value.startswith('"'):
            value = f'"{value}"'
        return f"{key}={_escape_for(value, encoding)}"

    return _PAIR.sub(fix, body) + nl


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeError:
        return False
    return True


def _is_binary(stream: object) -> bool:
    if isinstance(stream, io.TextIOBase):
        return False
    if isinstance(stream, (io.RawIOBase, io.BufferedIOBase)):
        return True
    return not hasattr(stream, "encoding")


def _name(fmt: object) -> str:
    return getattr(fmt, "__name__", None) or type(fmt).__name__


class _FailureReporter:
    """Counts output failures and reports them on stderr at most once per interval."""

    def __init__(self) -> None:
        self.total = 0
        self._last_report = -REPORT_INTERVAL
        self._unreported = 0
        self._lock = threading.Lock()
        fork_safe(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def report(self, sink: Output, exc: BaseException) -> None:
        with self._lock:
            self.total += 1
            self._unreported += 1
            now = time.monotonic()
            if now - self._last_report < REPORT_INTERVAL:
                return
            count, self._unreported = self._unreported, 0
            self._last_report = now
        try:
            stream = sys.__stderr__
            target = sink.stream if isinstance(sink, Sink) else None
            what = type(target).__name__ if isinstance(sink, Sink) else repr(sink)
            if stream is not None and stream is not target:
                stream.write(
                    f"clue/log: {count} write(s) to {what} failed "
                    f"(last: {type(exc).__name__}: {exc}); reporting at most every "
                    f"{REPORT_INTERVAL:.0f}s\n"
                )
                stream.flush()
        except Exception:  # noqa: S110 - stderr itself is gone; nothing left to tell
            pass


failures = _FailureReporter()
