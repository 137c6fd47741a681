"""The three built-in formats: logfmt text, colored terminal, strict JSON.

Every format renders one entry as exactly one line, whatever the input: CR, LF, the other
line separators, control characters (C0, DEL, C1) and lone surrogates are escaped, keys are
sanitized so that no key or value can forge another field, and a format never raises.

Rendering is bounded for any value graph: each entry has a budget of characters and of
values visited (``_Budget``, derived from ``max_size``), a container that reaches itself is
written as a marker, and a value whose own methods raise becomes a marker in its own place.
Formats run only for entries that are written, so they favour correctness over raw speed;
the common cases (short strings, numbers) still take a fast path.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

import orjson

from clue.log import _keys
from clue.log._entry import Entry, safe_str

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


class Traceback(str):
    """A formatted exception traceback: exempt from ``max_size`` truncation and the budget."""

    __slots__ = ()


class _Limits:
    """Truncation limits; ``configure(max_size=...)`` sets them."""

    max_size = 1024


limits = _Limits()

#: Per entry, ``CHARS_PER_MAX_SIZE * max_size`` characters of keys and strings and
#: ``NODES_PER_MAX_SIZE * max_size`` values (top-level and nested) may be rendered.
CHARS_PER_MAX_SIZE = 64
NODES_PER_MAX_SIZE = 4
# Characters and values kept back for each key/value still to come, so that one
# large value never leaves the ones after it (span ids, the call site...) without room.
_FLOOR = 64
_NODE_FLOOR = 8
# Room a cut string keeps however exhausted the budget (keys stay readable).
_MIN = 8
_MAX_DEPTH = 32

CYCLE = "<clue/log.cycle>"
TOO_DEEP = "<clue/log.too_deep>"
CUT = _keys.TRUNCATED_SUFFIX.strip()


class _Budget:
    """What one entry may still spend on rendering: characters and values visited."""

    __slots__ = ("cap", "chars", "later", "nodes")

    def __init__(self, pairs: int) -> None:
        cap = limits.max_size
        self.cap = cap
        self.chars = CHARS_PER_MAX_SIZE * cap
        self.nodes = NODES_PER_MAX_SIZE * cap
        self.later = pairs  # key/values not yet started

    def at(self, later: int) -> _Budget:
        """Render the key/value followed by ``later`` others: it gets at least its floor,
        whatever came before."""
        self.later = later
        pairs = later + 1  # this one and the ones after it
        self.chars = max(self.chars, _FLOOR * pairs)
        self.nodes = max(self.nodes, _NODE_FLOOR * pairs)
        return self

    def exhausted(self) -> bool:
        return self.nodes <= _NODE_FLOOR * self.later or self.chars <= _FLOOR * self.later

    def text(self, s: str, cap: int = 0) -> str:
        """``s`` cut to ``max_size`` (or ``cap``) and to the room left, marked where cut,
        and charged."""
        cap = cap or self.cap
        room = self.chars - _FLOOR * self.later
        lim = cap if cap < room else max(room, _MIN)
        if len(s) > lim:
            s = s[:lim] + _keys.TRUNCATED_SUFFIX
        self.chars -= len(s)
        return s


def format_text(entry: Entry) -> str:
    """Render an entry as logfmt: ``time=2024-01-15T10:30:00Z level=info msg=hello``.

    Example:
        >>> from clue import log
        >>> log.format_text(log.Entry(0, "info", [("msg", "hi there"), ("n", 1)]))
        'time=1970-01-01T00:00:00Z level=info msg="hi there" n=1\\n'
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
        parts = [head]
        _logfmt_pairs(_capped(entry.key_vals), parts)
        return " ".join(parts) + "\n"
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
        return _json_line(doc)
    except Exception as exc:
        return _fallback_json(entry, exc)


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
    """At most ``max_size`` keys of the application: past that they are cut and counted,
    while clue's own keys (an application's key of the same name is escaped when the
    entry is built) and tracebacks are kept, so the cut never costs the message, the
    error or the request id."""
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


def clip(s: str) -> str:
    """Cut a string longer than ``max_size`` characters, marking the cut."""
    cap = limits.max_size
    if len(s) <= cap:
        return s
    return s[:cap] + _keys.TRUNCATED_SUFFIX


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


def _int_str(v: int) -> str:
    bits = v.bit_length()
    if bits > 4 * limits.max_size:  # more digits than max_size: not worth computing
        return f"<int of {bits} bits>"
    try:
        return str(v)
    except ValueError:  # more digits than sys.get_int_max_str_digits() allows
        return f"<int of {bits} bits>"


def _float_str(v: float) -> str:
    if math.isfinite(v):
        return repr(v)
    if math.isnan(v):
        return "NaN"
    return "+Inf" if v > 0 else "-Inf"


def _scalar_str(v: object, cap: int) -> str:
    if isinstance(v, str):  # a str subclass: its characters, whatever __str__ says
        return str.__str__(v)
    if isinstance(v, BaseException):
        text = safe_str(v)
        return text or type(v).__name__
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, Enum):
        return safe_str(v.value)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v[: 4 * cap]).decode("utf-8", "backslashreplace")
    if isinstance(v, int):  # int subclasses (IntEnum handled above)
        return _int_str(int(v))
    if isinstance(v, float):
        return _float_str(float(v))
    return safe_str(v)


def _unrenderable(v: object, exc: BaseException) -> str:
    try:
        name = type(v).__name__
        return f"<clue/log.unrenderable {name}: {type(exc).__name__}>"
    except Exception:  # a metaclass whose __name__ raises
        return "<clue/log.unrenderable>"


def _json_value(v: object, b: _Budget, depth: int, path: set[int] | None) -> object:
    """A JSON-safe copy of ``v`` within the entry's budget: strings cut, containers capped,
    no NaN, cycles and hostile containers replaced by markers in their own place."""
    b.nodes -= 1
    t = type(v)
    if t is str:
        return b.text(v)  # type: ignore[arg-type]
    if t is bool or v is None:
        return v
    if t is int:
        n: int = v  # type: ignore[assignment]
        return n if -(2**63) <= n < 2**64 else _int_str(n)
    if t is float:
        return v if math.isfinite(v) else _float_str(v)  # type: ignore[arg-type]
    if t is Traceback:
        return str.__str__(v)
    try:
        return _json_container(v, b, depth, path)
    except Exception as exc:  # its own items()/__iter__/__len__/... raised
        return _unrenderable(v, exc)


def _json_container(v: object, b: _Budget, depth: int, path: set[int] | None) -> object:
    is_map = isinstance(v, Mapping)
    if not is_map and not isinstance(v, (list, tuple, set, frozenset)):
        return b.text(_scalar_str(v, b.cap))
    if depth >= _MAX_DEPTH:
        return TOO_DEEP
    if path is None:
        path = set()
    ident = id(v)
    if ident in path:  # reached from inside itself
        return CYCLE
    path.add(ident)
    try:
        if is_map:
            return _json_mapping(v, b, depth, path)  # type: ignore[arg-type]
        return _json_sequence(v, b, depth, path)
    finally:
        path.discard(ident)


def _json_mapping(v: Mapping[Any, Any], b: _Budget, depth: int, path: set[int]) -> object:
    out: dict[str, object] = {}
    for written, (k, item) in enumerate(v.items()):
        if written >= b.cap or b.exhausted():
            out[str(_keys.TRUNCATED_KEYS_KEY)] = _remaining(v, written)
            break
        key = b.text(k if type(k) is str else safe_str(k))
        out[key] = _json_value(item, b, depth + 1, path)
    return out


def _json_sequence(v: Any, b: _Budget, depth: int, path: set[int]) -> object:
    vals: list[object] = []
    for item in v:
        if len(vals) >= b.cap or b.exhausted():
            vals.append(CUT)
            break
        vals.append(_json_value(item, b, depth + 1, path))
    return vals


def _remaining(v: Mapping[Any, Any], written: int) -> object:
    try:
        return max(len(v) - written, 1)
    except Exception:  # a hostile __len__: the count is unknown
        return "?"


def _dumps(obj: object, option: int = 0) -> bytes:
    """orjson, or for strings holding lone surrogates (not UTF-8) the stdlib with each one
    written as a ``\\udcxx`` escape: valid JSON, and nothing else of the entry is lost."""
    try:
        return orjson.dumps(obj, option=option)
    except TypeError:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        if option & orjson.OPT_APPEND_NEWLINE:
            text += "\n"
        return text.encode("utf-8", "backslashreplace")


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


# Containers whose str() walks every element: a graph of shared references can make that
# walk astronomically long.
_CONTAINERS = (Mapping, list, tuple, set, frozenset, deque)
_PLAIN_ITEMS = (str, int, float, bool, type(None))


def text_of(v: object) -> str:
    """Text of a message argument or a non-str ``err``, in bounded time: a small container
    of plain items is its ``str()``; any other container is rendered within one entry's
    budget (as JSON text, cut where the budget ends); anything else is ``safe_str(v)``."""
    if type(v) is str:
        return v
    try:
        if not isinstance(v, _CONTAINERS):
            return safe_str(v)
        if type(v) in (list, tuple, set, frozenset) and _plain_and_small(v):  # type: ignore[arg-type]
            return str(v)
        if isinstance(v, deque):
            v = list(v)[: limits.max_size + 1]
        rendered = _json_container(v, _Budget(1), 0, None)
        if isinstance(rendered, str):
            return rendered
        return _dumps(rendered).decode()
    except Exception as exc:  # a container whose own methods raise
        return _unrenderable(v, exc)


def _plain_and_small(v: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]) -> bool:
    # What str() shows quickly and as Python writes it: a few short plain items.
    return len(v) <= 16 and all(
        type(x) in _PLAIN_ITEMS and (type(x) is not str or len(x) <= 64) for x in v
    )


class Bounded:
    """A ``%`` argument that is a container, standing in with its bounded text."""

    __slots__ = ("text",)

    def __init__(self, v: object) -> None:
        self.text = text_of(v)

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__
