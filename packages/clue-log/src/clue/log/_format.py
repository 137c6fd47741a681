"""The three built-in formats: logfmt text, colored terminal, strict JSON.

Every format renders one entry as exactly one line, whatever the input: CR, LF, the other
line separators, control characters (C0, DEL, C1) and lone surrogates are escaped, keys are
sanitized so that no key or value can forge another field, and a format never raises.

Values are rendered within each entry's budget (``_render``): bounded for any value graph.
Formats run only for entries that are written, so they favour correctness over raw speed;
the common cases (short strings, numbers) still take a fast path.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import Any

import orjson

from clue.log import _keys
from clue.log._entry import Entry, safe_str
from clue.log._render import (
    _FLOOR,
    Traceback,
    _Budget,
    _dumps,
    _float_str,
    _int_str,
    _json_container,
    _json_value,
    _unrenderable,
    clip,
    limits,
)

#: A format turns an entry into one line (trailing newline included).
Format = Callable[[Entry], "str | bytes"]

SEVERITY_CODES = {"debug": "DEBG", "info": "INFO", "warn": "WARN", "error": "ERRO"}
_COLORS = {"debug": "\x1b[37m", "info": "\x1b[34m", "warn": "\x1b[33m", "error": "\x1b[31m"}
_RESET = "\x1b[0m"
_START = time.monotonic()
_START_NS = time.time_ns()

# Characters that force a logfmt value into quotes (whitespace, quotes, '=', backslash,
# controls, lone surrogates).
_NEEDS_QUOTES = _keys.LOGFMT_UNSAFE
# Characters a logfmt key may not hold; they are replaced with '_'.
_BAD_KEY = _NEEDS_QUOTES


def _escape_table() -> dict[int, str]:
    table = {
        c: f"\\u{c:04x}"
        for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0xD800, 0xE000))
    }
    table.update({ord("\\"): "\\\\", ord('"'): '\\"', 10: "\\n", 13: "\\r", 9: "\\t"})
    return table


_ESCAPES = _escape_table()
# What orjson leaves raw but must not be: DEL, the C1 controls (U+0085 is a line break
# for str.splitlines) and U+2028/U+2029. In UTF-8 these byte sequences only ever encode
# those characters, so they can be replaced in the rendered bytes.
_JSON_RAW = re.compile(b"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")


def _json_escape(m: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(m.group().decode())


def format_text(entry: Entry) -> str:
    r"""Render an entry as logfmt: ``time=2024-01-15T10:30:00Z level=info msg=hello``.

    Example:
        >>> from clue import log
        >>> log.format_text(log.Entry(0, "info", [("msg", "hi there"), ("n", 1)]))
        'time=1970-01-01T00:00:00Z level=info msg="hi there" n=1\n'

    .. versionadded:: 0.1.0
    """
    try:
        time_key, level_key = _keys.FORMAT_KEYS
        parts = [
            f"{time_key}={_quote(_timestamp(entry.time_ns))}",
            f"{level_key}={_severity(entry.severity)}",
        ]
        _logfmt_pairs(_capped(entry.key_vals), parts)
        return " ".join(parts) + "\n"
    except Exception as exc:
        return _fallback_text(entry, exc)


def format_terminal(entry: Entry) -> str:
    r"""Render an entry for a terminal: ``INFO[0042] user=alice action=login``.

    The severity is colored and followed by the seconds elapsed since the process
    imported clue.log.

    Example:
        >>> from clue import log
        >>> line = log.format_terminal(log.Entry(0, "warn", [("msg", "careful")]))
        >>> line.endswith("] msg=careful\n")
        True

    .. versionadded:: 0.1.0
    """
    try:
        secs = max(0, (entry.time_ns - _START_NS) // 1_000_000_000)
        code = SEVERITY_CODES.get(entry.severity, "INFO")
        color = _COLORS.get(entry.severity, "")
        head = f"{color}{code}{_RESET}[{secs:04d}]"
        parts = [head]
        _logfmt_pairs(_capped(entry.key_vals), parts)
        return " ".join(parts) + "\n"
    except Exception as exc:
        return _fallback_text(entry, exc)


def format_json(entry: Entry) -> bytes:
    r"""Render an entry as one line of strict JSON (no NaN, every separator escaped).

    Example:
        >>> from clue import log
        >>> log.format_json(log.Entry(0, "info", [("msg", "hi")]))
        b'{"time":"1970-01-01T00:00:00Z","level":"info","msg":"hi"}\n'

    .. versionadded:: 0.1.0
    """
    try:
        return _json_line(json_doc(entry))
    except Exception as exc:
        return _fallback_json(entry, exc)


def json_doc(entry: Entry) -> dict[str, Any]:
    """The object ``format_json`` writes for ``entry``, before serialization.

    The format's keys, then every key/value converted within the entry's budget (strings cut,
    containers capped, no NaN, markers for what cannot be rendered). May raise; ``format_json`` then
    writes its fallback line. ``otlp_output`` converts entries with it too, so both outputs carry
    the same values.
    """
    pairs = _capped(entry.key_vals)
    n = len(pairs)
    time_key, level_key = _keys.FORMAT_KEYS
    doc: dict[str, Any] = {time_key: _timestamp(entry.time_ns), level_key: entry.severity}
    if type(entry.severity) is not str:
        doc[level_key] = safe_str(entry.severity)
    small = _small()
    b: _Budget | None = None
    for i, (k, v) in enumerate(pairs):
        # Written for speed: short str keys and short strings/numbers skip the budget.
        if type(k) is str and len(k) <= _FLOOR:
            key = k
        else:
            b = (b or _Budget(n)).at(n - i - 1)
            key = _json_key(k, b)
        if key in (time_key, level_key):  # the format's own keys
            key = "_" + key
        t = type(v)
        if (t is str and len(v) <= small) or t is bool or v is None or _small_int(v, t):
            doc[key] = v
        else:
            b = (b or _Budget(n)).at(n - i - 1)
            doc[key] = _json_value(v, b, 0, None)
    return doc


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


def _severity(severity: object) -> str:
    if severity in SEVERITY_CODES:
        return severity
    return _quote(clip(safe_str(severity)))


def _small() -> int:
    # Strings this short are never cut, nor charged to the budget.
    cap = limits.max_size
    return min(_FLOOR, cap)


def _small_int(v: Any, t: type) -> bool:
    return t is int and -(2**63) <= v < 2**64


def _logfmt_pairs(pairs: list[tuple[str, Any]], parts: list[str]) -> None:
    n = len(pairs)
    small = _small()
    time_key, level_key = _keys.FORMAT_KEYS
    b: _Budget | None = None
    for i, (k, v) in enumerate(pairs):
        # Written for speed: short plain keys and short strings/numbers skip the budget.
        if (
            type(k) is str
            and 0 < len(k) <= _FLOOR
            and k not in (time_key, level_key)
            and not _BAD_KEY.search(k)
        ):
            key = k
        else:
            b = (b or _Budget(n)).at(n - i - 1)
            key = _key(k, b)
        t = type(v)
        if t is str and len(v) <= small:
            val = _quote(v)
        elif t is int and -(2**63) <= v < 2**64:
            val = str(v)
        elif t is bool:
            val = "true" if v else "false"
        elif v is None:
            val = "null"
        else:
            b = (b or _Budget(n)).at(n - i - 1)
            val = _logfmt_value(v, b)
        parts.append(f"{key}={val}")


def _capped(key_vals: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """At most ``max_size`` keys of the application; past that they are cut and counted.

    Clue's own keys (an application's key of the same name is escaped when the entry is built) and
    tracebacks are kept, so the cut never costs the message, the error or the request id.
    """
    cap = limits.max_size
    if len(key_vals) <= cap:
        return key_vals
    reserved = _keys.RESERVED
    kept = [
        kv
        for kv in key_vals[cap:]
        if (isinstance(kv[0], str) and kv[0] in reserved) or type(kv[1]) is Traceback
    ]
    cut = len(key_vals) - cap - len(kept)
    if not cut:
        return key_vals
    return [*key_vals[:cap], *kept, (_keys.TRUNCATED_KEYS_KEY, cut)]


# Keys are cut at max_size, but never shorter than this.
_KEY_CAP = 64


def _json_key(k: object, b: _Budget) -> str:
    t = type(k)
    if t is _keys.Own:  # a marker key the format adds itself (clue.truncated_keys)
        return str.__str__(k)
    return b.text(k if t is str else safe_str(k), max(b.cap, _KEY_CAP))  # type: ignore[arg-type]


def _key(k: object, b: _Budget) -> str:
    t = type(k)
    if t is _keys.Own:
        return str.__str__(k)
    s: str = k if t is str else safe_str(k)  # type: ignore[assignment]
    if not s:
        return "_"
    if len(s) <= _FLOOR:
        b.chars -= len(s)
    else:
        s = b.text(s, max(b.cap, _KEY_CAP))
    if _BAD_KEY.search(s):
        s = _BAD_KEY.sub("_", s)
        if s.lstrip("_") in _keys.RESERVED:  # sanitizing must not make one of clue's keys
            s = "_" + s
    elif s in (_keys.TIMESTAMP_KEY, _keys.SEVERITY_KEY):  # the format's own keys
        s = "_" + s
    return s


def _quote(s: str) -> str:
    if s and not _NEEDS_QUOTES.search(s):
        return s
    return '"' + s.translate(_ESCAPES) + '"'


def _logfmt_value(v: object, b: _Budget) -> str:
    b.nodes -= 1
    t = type(v)
    if t is str:
        return _quote(b.text(v))  # type: ignore[arg-type]
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
    try:
        rendered = _json_container(v, b, 0, None)
    except Exception as exc:  # a value whose own methods raise: a marker in its place
        return _quote(_unrenderable(v, exc))
    if type(rendered) is str:  # a scalar's text, or a marker
        return _quote(rendered)
    return _quote(_dumps(rendered).decode())  # a container, as JSON


def json_text(value: object) -> str:
    """A value of ``json_doc`` as the JSON text ``format_json`` writes for it."""
    out = _dumps(value)
    if b"\x7f" in out or not out.isascii():
        out = _JSON_RAW.sub(_json_escape, out)
    return out.decode("utf-8")


def json_line(doc: dict[str, Any]) -> bytes:
    """``doc`` (a ``json_doc``) as the line ``format_json`` writes."""
    return _json_line(doc)


def _json_line(doc: dict[str, Any]) -> bytes:
    out = _dumps(doc, orjson.OPT_APPEND_NEWLINE)
    if b"\x7f" in out or not out.isascii():
        out = _JSON_RAW.sub(_json_escape, out)
    return out


def _fallback_text(entry: Entry, exc: BaseException) -> str:
    msg = _quote(f"clue/log: entry could not be rendered: {safe_str(exc)}")
    try:
        head = f"time={_timestamp(entry.time_ns)} "
    except Exception:  # a hand-built entry with a bad time
        head = ""
    return f"{head}level={_severity(entry.severity)} msg={msg}\n"


def _fallback_json(entry: Entry, exc: BaseException) -> bytes:
    doc = {"level": safe_str(entry.severity), "msg": "clue/log: entry could not be rendered"}
    with contextlib.suppress(Exception):  # a hand-built entry with a bad time
        doc = {"time": _timestamp(entry.time_ns), **doc}
    doc["error"] = safe_str(exc)
    return _json_line(doc)
