"""A corpus of hostile values and keys, shared by the tests that attack rendering.

``values()`` returns fresh ``(name, value)`` pairs (several are mutable or cyclic, so each
test gets its own); ``keys()`` returns hostile key names. ``Counting`` containers count how
often their contents are walked, so a test can assert that rendering did bounded work by a
counter, never by wall-clock time. ``parse_logfmt`` is a strict logfmt reader and
``loads_strict`` a JSON reader that refuses ``NaN``/``Infinity``.
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

__all__ = [
    "ALL_KEY_NAMES",
    "CLUE_KEYS",
    "Counting",
    "CountingList",
    "LINE_BREAKS",
    "escaped",
    "keys",
    "loads_strict",
    "parse_logfmt",
    "shared_graph",
    "text_key",
    "values",
]

# Everything str.splitlines() treats as a line boundary.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

#: The keys the README says only clue writes.
CLUE_KEYS = frozenset(
    {
        "time",
        "level",
        "msg",
        "err",
        "exception",
        "trace_id",
        "span_id",
        "request_id",
        "file",
        "clue.dropped",
        "clue.truncated_keys",
        "http.method",
        "http.url",
        "http.remote_addr",
        "http.status",
        "http.time_ms",
        "http.bytes",
        "http.body",
        "grpc.service",
        "grpc.method",
        "grpc.code",
        "grpc.status",
        "grpc.time_ms",
    }
)


#: Every key-name constant of clue.log: sanitizing a key for logfmt never yields one.
ALL_KEY_NAMES = CLUE_KEYS | {"service", "method", "logger"}
_BAD = re.compile('[\\s"=\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]')


def text_key(key: str) -> str:
    """The name a key is written under in logfmt: characters a logfmt key cannot hold
    become ``_``, and if that makes one of clue's names, one more ``_`` goes in front."""
    if not key:
        return "_"
    if _BAD.search(key):
        key = _BAD.sub("_", key)
        if key.lstrip("_") in ALL_KEY_NAMES:
            key = "_" + key
    return key


def escaped(key: str, written: frozenset[str] | set[str] = CLUE_KEYS) -> str:
    """The README's rule: a key of the application whose name, less any leading
    underscores, is a key clue ``written`` in the same entry gets one more underscore."""
    return "_" + key if key.lstrip("_") in written else key


# --- hostile objects ---------------------------------------------------------------------


class RaisingItemsDict(dict[Any, Any]):
    def items(self) -> Any:
        raise RuntimeError("items() refused")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("__iter__ refused")


class RaisingLenDict(dict[Any, Any]):
    def __len__(self) -> int:
        raise RuntimeError("__len__ refused")


class RaisingIterList(list[Any]):
    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("__iter__ refused")

    def __len__(self) -> int:
        raise RuntimeError("__len__ refused")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ refused")


class HalfwayList(list[Any]):
    """Yields two items, then raises."""

    def __iter__(self) -> Iterator[Any]:
        yield 1
        yield 2
        raise RuntimeError("stopped halfway")


class BadPairsDict(dict[Any, Any]):
    """items() yields things that are not pairs."""

    def items(self) -> Any:
        return [1, 2, 3]


class RaisingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class NonStrRepr:
    def __repr__(self) -> Any:
        return 42

    def __str__(self) -> Any:
        return b"bytes"  # noqa: PLE0307 - a __str__ that breaks its contract


class HostileStr(str):
    __slots__ = ()

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class RaisingClass:
    """Even isinstance() on it raises."""

    @property  # type: ignore[misc]
    def __class__(self) -> Any:
        raise RuntimeError("no __class__")


class RaisingValueEnum(enum.Enum):
    A = 1


class HugeStr:
    """str() returns a long multi-line string."""

    def __str__(self) -> str:
        return "line\n" * 50_000


class Color(enum.Enum):
    RED = "r\nd"


class Counting(dict[Any, Any]):
    """A dict that counts how often its items are walked (shared by the whole graph)."""

    walks: ClassVar[list[int]] = [0]

    def items(self) -> Any:
        self.walks[0] += 1
        return super().items()

    def __iter__(self) -> Iterator[Any]:
        self.walks[0] += 1
        return super().__iter__()


class CountingList(list[Any]):
    """A list that counts how often it is iterated."""

    walks: ClassVar[list[int]] = [0]

    def __iter__(self) -> Iterator[Any]:
        self.walks[0] += 1
        return super().__iter__()


def shared_graph(width: int = 10, depth: int = 8) -> Counting:
    """``width ** depth`` paths to one leaf: each level's values are all the same dict."""
    node = Counting(leaf="x")
    for _ in range(depth):
        node = Counting({f"k{i}": node for i in range(width)})
    return node


def _cycles() -> list[tuple[str, Any]]:
    a: list[Any] = [1]
    a.append(a)
    a.append(a)  # reaches itself by two paths
    d: dict[str, Any] = {}
    d["self"] = d
    d["again"] = d
    b: list[Any] = []
    c: dict[str, Any] = {"b": b}
    b.append(c)
    b.append(c)
    t: list[Any] = []
    tup = (t, t)
    t.append(tup)
    cl = CountingList()
    cl.append(cl)
    cl.append(cl)
    return [
        ("cycle_list", a),
        ("cycle_dict", d),
        ("cycle_mutual", b),
        ("cycle_tuple", tup),
        ("cycle_counting", cl),
    ]


def _deep(n: int) -> list[Any]:
    x: list[Any] = []
    for _ in range(n):
        x = [x]
    return x


def values() -> list[tuple[str, Any]]:
    """Fresh hostile values, each with a name (usable as a message)."""
    surrogate = os.fsdecode(b"report-\xff\xfe.csv")  # what a non-UTF-8 filename decodes to
    out: list[tuple[str, Any]] = [
        ("surrogate", surrogate),
        ("lone_high_surrogate", "a\ud800b"),
        ("surrogate_in_list", [surrogate, {"f": surrogate}]),
        ("surrogate_dict_key", {surrogate: 1}),
        ("controls", "".join(chr(c) for c in range(0x20)) + "\x7f"),
        ("c1", "".join(chr(c) for c in range(0x80, 0xA0))),
        ("separators", "a\u2028b\u2029c\x85d\r\ne"),
        ("escape_sequence", "\x1b[31mred\x1b[0m"),
        ("forge_text", 'x" level=error msg="pwned'),
        ("forge_json", '","level":"error'),
        ("huge_str", "x" * 1_000_000),
        ("huge_int", 10**5000),
        ("huge_neg_int", -(2**70_000)),
        ("big_int", 2**64),
        ("nan", math.nan),
        ("inf", math.inf),
        ("neg_inf", -math.inf),
        ("nan_in_list", [math.nan, math.inf]),
        ("bytes", b"\x00\xff\n\xc3\xa9"),
        ("huge_bytes", b"\xff" * 1_000_000),
        ("bytearray", bytearray(b"ab\ncd")),
        ("wide_list", list(range(200_000))),
        ("wide_dict", {str(i): i for i in range(200_000)}),
        ("wide_set", set(range(200_000))),
        ("wide_frozenset", frozenset(range(200_000))),
        ("deep", _deep(10_000)),
        ("shared", shared_graph()),
        ("raising_items", RaisingItemsDict(a=1)),
        ("raising_len", RaisingLenDict({str(i): i for i in range(5000)})),
        ("raising_iter", RaisingIterList([1, 2])),
        ("halfway", HalfwayList([1, 2, 3])),
        ("bad_pairs", BadPairsDict(a=1)),
        ("raising_repr", RaisingRepr()),
        ("non_str_repr", NonStrRepr()),
        ("hostile_str", HostileStr("plain text")),
        ("raising_class", RaisingClass()),
        ("nested_hostile", {"ok": 1, "bad": RaisingItemsDict(a=1), "after": "kept"}),
        ("huge_str_method", HugeStr()),
        ("enum_multiline", Color.RED),
        ("exception", ValueError("bad\nvalue \udcff")),
        ("datetime", datetime(2024, 1, 15, tzinfo=UTC)),
        ("non_str_keys", {(1, 2): "tuple", None: "none", RaisingRepr(): "hostile key"}),
        ("empty", ""),
        ("none", None),
        ("bool", True),
    ]
    out.extend(_cycles())
    return out


def keys() -> list[Any]:
    """Hostile key names: clue's own, escaped-looking, separators, controls, surrogates."""
    return [
        *sorted(CLUE_KEYS),
        "_level",
        "__time",
        "_request_id",
        "trace id",
        "span\nid",
        "a=b",
        "a b",
        'q"uote',
        "back\\slash",
        "",
        "ctl\x7f\x85",
        "nl\u2028",
        "sur\udcff",
        "k" * 5000,
        "exc_info_not",
    ]


# --- readers -----------------------------------------------------------------------------

_KEY = re.compile(r'[^\s="\\]+')
_BARE = re.compile(r'[^\s"\\=]*')


def parse_logfmt(line: str) -> list[tuple[str, str]]:
    """A strict logfmt reader: ``key=value`` pairs separated by one space; values bare or
    double-quoted with ``\\n \\r \\t \\" \\\\ \\uXXXX`` escapes (a surrogate pair of
    escapes is one character, as in JSON). Anything else fails."""
    assert line.endswith("\n"), line[-50:]
    body = line[:-1]
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(body)
    while i < n:
        m = _KEY.match(body, i)
        assert m, f"no key at {i}: {body[i : i + 40]!r}"
        key = m.group()
        i = m.end()
        assert body[i] == "=", f"expected '=' after {key!r}"
        i += 1
        if i < n and body[i] == '"':
            i += 1
            out: list[str] = []
            while body[i] != '"':
                c = body[i]
                if c == "\\":
                    nxt = body[i + 1]
                    if nxt == "u":
                        out.append(chr(int(body[i + 2 : i + 6], 16)))
                        i += 6
                        continue
                    out.append({"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}[nxt])
                    i += 2
                    continue
                assert c >= " ", f"raw control {c!r} in a value"
                assert c not in LINE_BREAKS, f"raw line break {c!r} in a value"
                out.append(c)
                i += 1
            # A surrogate pair of escapes reads back as one character, as in JSON.
            value = "".join(out).encode("utf-16", "surrogatepass")
            value = value.decode("utf-16", "surrogatepass")
            i += 1
        else:
            m = _BARE.match(body, i)
            assert m
            value = m.group()
            i = m.end()
        pairs.append((key, value))
        if i < n:
            assert body[i] == " ", f"expected a space at {i}: {body[i - 10 : i + 10]!r}"
            i += 1
    return pairs


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-strict JSON constant {name}")


def loads_strict(line: str | bytes) -> Any:
    """``json.loads`` that refuses NaN/Infinity and anything that is not one object."""
    doc = json.loads(line, parse_constant=_reject_constant)
    assert isinstance(doc, dict)
    return doc
