"""The three built-in formats: logfmt text, colored terminal, strict JSON.

Every format renders one entry as exactly one line, whatever the input: CR, LF, the other
line separators and control characters are escaped, keys are sanitized so that no key or
value can forge another field, and a format never raises. Formats run only for entries
that are written, so they favour correctness over raw speed; the common cases still take
a fast path.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

import orjson

from clue.log import _keys
from clue.log._entry import Entry

#: A format turns an entry into one line (trailing newline included).
Format = Callable[[Entry], "str | bytes"]

SEVERITY_CODES = {"debug": "DEBG", "info": "INFO", "warn": "WARN", "error": "ERRO"}
_COLORS = {"debug": "\x1b[37m", "info": "\x1b[34m", "warn": "\x1b[33m", "error": "\x1b[31m"}
_RESET = "\x1b[0m"
_START = time.monotonic()
_START_NS = time.time_ns()

# Characters that force a logfmt value into quotes: whitespace (which in Python's regex
# includes every line separator str.splitlines knows), quotes, '=', backslash, controls.
_NEEDS_QUOTES = re.compile(r'[\s"=\\\x00-\x1f\x7f-\x9f\u2028\u2029]')
# Characters a logfmt key may not hold; they are replaced with '_'.
_BAD_KEY = re.compile(r'[\s"=\\\x00-\x1f\x7f-\x9f\u2028\u2029]')


def _escape_table() -> dict[int, str]:
    table = {c: f"\\u{c:04x}" for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}
    table.update({ord("\\"): "\\\\", ord('"'): '\\"', 10: "\\n", 13: "\\r", 9: "\\t"})
    return table


_ESCAPES = _escape_table()
# Raw UTF-8 sequences orjson leaves unescaped but line splitters honour.
_JSON_SEPARATORS = (
    (b"\xc2\x85", b"\\u0085"),
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
)


class Traceback(str):
    """A formatted exception traceback: exempt from ``max_size`` truncation."""

    __slots__ = ()


class _Limits:
    """Truncation limits; ``configure(max_size=...)`` sets them."""

    max_size = 1024


limits = _Limits()


def format_text(entry: Entry) -> str:
    """Render an entry as logfmt: ``time=2024-01-15T10:30:00Z level=info msg=hello``.

    Example:
        >>> from clue import log
        >>> log.format_text(log.Entry(0, "info", [("msg", "hi there"), ("n", 1)]))
        'time=1970-01-01T00:00:00Z level=info msg="hi there" n=1\\n'
    """
    try:
        parts = [
            f"{_keys.TIMESTAMP_KEY}={_timestamp(entry.time_ns)}",
            f"{_keys.SEVERITY_KEY}={entry.severity}",
        ]
        parts.extend(f"{_key(k)}={_logfmt_value(v)}" for k, v in _capped(entry.key_vals))
        return " ".join(parts) + "\n"
    except Exception as exc:
        return _fallback_text(entry, exc)


def format_terminal(entry: Entry) -> str:
    """Render an entry for a terminal: ``INFO[0042] user=alice action=login``.

    The severity is colored and followed by the seconds elapsed since the process
    imported clue.log.

    Example:
        >>> from clue import log
        >>> line = log.format_terminal(log.Entry(0, "warn", [("msg", "careful")]))
        >>> line.endswith("] msg=careful\\n")
        True
    """
    try:
        secs = max(0, (entry.time_ns - _START_NS) // 1_000_000_000)
        code = SEVERITY_CODES.get(entry.severity, "INFO")
        color = _COLORS.get(entry.severity, "")
        head = f"{color}{code}{_RESET}[{secs:04d}]"
        kvs = " ".join(f"{_key(k)}={_logfmt_value(v)}" for k, v in _capped(entry.key_vals))
        return f"{head} {kvs}\n" if kvs else head + "\n"
    except Exception as exc:
        return _fallback_text(entry, exc)


def format_json(entry: Entry) -> bytes:
    """Render an entry as one line of strict JSON (no NaN, every separator escaped).

    Example:
        >>> from clue import log
        >>> log.format_json(log.Entry(0, "info", [("msg", "hi")]))
        b'{"time":"1970-01-01T00:00:00Z","level":"info","msg":"hi"}\\n'
    """
    try:
        doc: dict[str, Any] = {
            _keys.TIMESTAMP_KEY: _timestamp(entry.time_ns),
            _keys.SEVERITY_KEY: entry.severity,
        }
        for k, v in _capped(entry.key_vals):
            key = k if type(k) is str else safe_str(k)
            doc[key] = _json_value(v, 0)
        out = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
        for raw, escaped in _JSON_SEPARATORS:
            if raw in out:
                out = out.replace(raw, escaped)
        return out
    except Exception as exc:
        fallback = {"level": entry.severity, "msg": "clue/log: entry could not be rendered"}
        fallback["error"] = safe_str(exc)
        return orjson.dumps(fallback, option=orjson.OPT_APPEND_NEWLINE)


# --- helpers -------------------------------------------------------------------------

# Entries written together mostly share their second: cache the last rendering.
_ts_cache: list[tuple[int, str, str]] = [(-1, "", "")]


def _timestamp(time_ns: int) -> str:
    sec = time_ns // 1_000_000_000
    cached = _ts_cache[0]
    fmt = _keys.TIMESTAMP_FORMAT
    if cached[0] == sec and cached[1] == fmt:
        return cached[2]
    rendered = time.strftime(fmt, time.gmtime(sec))
    _ts_cache[0] = (sec, fmt, rendered)
    return rendered


def _capped(key_vals: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    cap = limits.max_size
    if len(key_vals) <= cap:
        return key_vals
    return [*key_vals[:cap], (_keys.TRUNCATED_KEYS_KEY, len(key_vals) - cap)]


def clip(s: str) -> str:
    """Cut a string longer than ``max_size`` characters, marking the cut."""
    cap = limits.max_size
    if len(s) <= cap:
        return s
    return s[:cap] + _keys.TRUNCATED_SUFFIX


def _key(k: object) -> str:
    s = k if type(k) is str else safe_str(k)
    if not s:
        return "_"
    s = clip(s)
    if _BAD_KEY.search(s):
        s = _BAD_KEY.sub("_", s)
    return s


def _quote(s: str) -> str:
    if s and not _NEEDS_QUOTES.search(s):
        return s
    return '"' + s.translate(_ESCAPES) + '"'


def _logfmt_value(v: object) -> str:
    t = type(v)
    if t is str:
        return _quote(clip(v))  # type: ignore[arg-type]
    if t is Traceback:
        return _quote(v)  # type: ignore[arg-type]
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return _quote(_int_str(v))  # type: ignore[arg-type]
    if t is float:
        return _float_str(v)  # type: ignore[arg-type]
    if v is None:
        return "null"
    if isinstance(v, (list, tuple, dict, set, frozenset)):
        return _quote(clip(_json_text(v)))
    return _quote(clip(_scalar_str(v)))


def _int_str(v: int) -> str:
    try:
        return str(v)
    except ValueError:  # more digits than sys.get_int_max_str_digits() allows
        return f"<int of {v.bit_length()} bits>"


def _float_str(v: float) -> str:
    if math.isfinite(v):
        return repr(v)
    if math.isnan(v):
        return "NaN"
    return "+Inf" if v > 0 else "-Inf"


def _scalar_str(v: object) -> str:
    if isinstance(v, BaseException):
        text = safe_str(v)
        return text or type(v).__name__
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, Enum):
        return safe_str(v.value)
    if isinstance(v, bytes):
        return v.decode("utf-8", "backslashreplace")
    if isinstance(v, int):  # int subclasses (IntEnum handled above)
        return _int_str(int(v))
    if isinstance(v, float):
        return _float_str(float(v))
    return safe_str(v)


def safe_str(v: object) -> str:
    try:
        s = str(v)
        if type(s) is str:
            return s
    except Exception:  # noqa: S110 - hostile __str__; fall through to repr
        pass
    try:
        return repr(v)
    except Exception:  # hostile __repr__ too
        return f"<unprintable {type(v).__name__}>"


_MAX_DEPTH = 32


def _json_value(v: object, depth: int) -> object:
    """A JSON-safe copy of ``v``: strings clipped, containers capped, no NaN, no cycles."""
    t = type(v)
    if t is str:
        return clip(v)  # type: ignore[arg-type]
    if t is Traceback:
        return str(v)
    if t is bool or v is None:
        return v
    if t is int:
        n: int = v  # type: ignore[assignment]
        return n if -(2**63) <= n < 2**64 else _int_str(n)
    if t is float:
        return v if math.isfinite(v) else _float_str(v)  # type: ignore[arg-type]
    if depth >= _MAX_DEPTH:
        return "<clue/log.too_deep>"
    if isinstance(v, Mapping):
        out: dict[str, object] = {}
        for i, (k, item) in enumerate(v.items()):
            if i >= limits.max_size:
                out[_keys.TRUNCATED_KEYS_KEY] = len(v) - limits.max_size
                break
            out[k if type(k) is str else safe_str(k)] = _json_value(item, depth + 1)
        return out
    if isinstance(v, (list, tuple, set, frozenset)):
        items = list(v) if isinstance(v, (set, frozenset)) else v
        cap = limits.max_size
        vals = [_json_value(item, depth + 1) for item in items[:cap]]
        if len(items) > cap:
            vals.append(_keys.TRUNCATED_SUFFIX.strip())
        return vals
    return clip(_scalar_str(v))


def _json_text(v: object) -> str:
    try:
        return orjson.dumps(_json_value(v, 0)).decode()
    except Exception as exc:
        return f"<unrenderable {type(v).__name__}: {safe_str(exc)}>"


def _fallback_text(entry: Entry, exc: BaseException) -> str:
    msg = _quote(f"clue/log: entry could not be rendered: {safe_str(exc)}")
    return f"level={entry.severity} msg={msg}\n"
