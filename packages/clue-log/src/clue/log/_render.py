"""The value walk and its budget: any value rendered in bounded time, never raising.

Rendering is bounded for any value graph: each entry has a budget of characters and of
values visited (``_Budget``, derived from ``max_size``), a container that reaches itself is
written as a marker, and a value whose own methods raise becomes a marker in its own place.
The formats (``_format``) spend this budget; ``text_of`` renders a message argument or a
non-str ``err`` with it.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

import orjson

from clue.log import _keys
from clue.log._entry import safe_str


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
        """Render the key/value followed by ``later`` others.

        It gets at least its floor, whatever came before.
        """
        self.later = later
        pairs = later + 1  # this one and the ones after it
        self.chars = max(self.chars, _FLOOR * pairs)
        self.nodes = max(self.nodes, _NODE_FLOOR * pairs)
        return self

    def exhausted(self) -> bool:
        return self.nodes <= _NODE_FLOOR * self.later or self.chars <= _FLOOR * self.later

    def text(self, s: str, cap: int = 0) -> str:
        """``s`` cut to ``max_size`` (or ``cap``) and to the room left, and charged.

        It is marked where cut.
        """
        cap = cap or self.cap
        room = self.chars - _FLOOR * self.later
        lim = cap if cap < room else max(room, _MIN)
        if len(s) > lim:
            s = s[:lim] + _keys.TRUNCATED_SUFFIX
        self.chars -= len(s)
        return s


def clip(s: str) -> str:
    """Cut a string longer than ``max_size`` characters, marking the cut."""
    cap = limits.max_size
    if len(s) <= cap:
        return s
    return s[:cap] + _keys.TRUNCATED_SUFFIX


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
    """A JSON-safe copy of ``v`` within the entry's budget.

    Strings cut, containers capped, no NaN, cycles and hostile containers replaced by markers in
    their own place.
    """
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
    r"""Serialize with orjson, or with the stdlib for strings holding lone surrogates.

    Strings holding lone surrogates are not UTF-8: the stdlib writes each one as a ``\udcxx``
    escape: valid JSON, and nothing else of the entry is lost.
    """
    try:
        return orjson.dumps(obj, option=option)
    except TypeError:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        if option & orjson.OPT_APPEND_NEWLINE:
            text += "\n"
        return text.encode("utf-8", "backslashreplace")


# Containers whose str() walks every element: a graph of shared references can make that
# walk astronomically long.
_CONTAINERS = (Mapping, list, tuple, set, frozenset, deque)
_PLAIN_ITEMS = (str, int, float, bool, type(None))


def text_of(v: object) -> str:
    """Text of a message argument or a non-str ``err``, in bounded time.

    A small container of plain items is its ``str()``; any other container is rendered within one
    entry's budget (as JSON text, cut where the budget ends); anything else is ``safe_str(v)``.
    """
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
