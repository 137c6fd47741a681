"""Formats: one line per entry whatever the input, strict JSON, logfmt that parses back."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import log
from clue.log._render import limits

from .hostile import parse_logfmt, text_key

# Everything str.splitlines() treats as a line boundary.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


class Hostile:
    """An object whose __repr__ and __str__ raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


def recursive_list() -> list[Any]:
    x: list[Any] = [1]
    x.append(x)
    return x


def recursive_dict() -> dict[str, Any]:
    d: dict[str, Any] = {}
    d["self"] = d
    return d


scalars = st.one_of(
    st.text(),
    st.integers(),
    st.integers(min_value=10**5000, max_value=10**5000 + 10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.binary(max_size=20),
    st.builds(Hostile),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=5), children, max_size=4),
        st.tuples(children, children),
    ),
    max_leaves=10,
)
keys = st.one_of(st.text(), st.integers(), st.builds(Hostile))
key_vals = st.lists(st.tuples(keys, values), max_size=8)


def entry_of(kvs: list[tuple[Any, Any]], severity: str = "info") -> log.Entry:
    return log.Entry(1_700_000_000_000_000_000, severity, kvs)


@settings(max_examples=300, deadline=None)
@given(key_vals, st.sampled_from(["debug", "info", "warn", "error"]))
def test_every_format_renders_exactly_one_line(kvs: list[tuple[Any, Any]], sev: str) -> None:
    """Any key/values render as exactly one line in every format, and never raise."""
    entry = entry_of(kvs, sev)
    for fmt in (log.format_text, log.format_terminal, log.format_json):
        out = fmt(entry)
        text = out.decode() if isinstance(out, bytes) else out
        assert text.endswith("\n")
        assert len(text.splitlines()) == 1, (fmt.__name__, text)
        assert not any(c in text[:-1] for c in LINE_BREAKS)


@settings(max_examples=300, deadline=None)
@given(key_vals)
def test_json_is_strict_and_complete(kvs: list[tuple[Any, Any]]) -> None:
    """JSON output parses strictly (no NaN/Infinity) and holds every key."""
    doc = json.loads(log.format_json(entry_of(kvs)), parse_constant=_reject_constant)
    assert doc["time"] == "2023-11-14T22:13:20Z"
    assert doc["level"] == "info"
    for k, _ in kvs:
        key = k if isinstance(k, str) else _safe(k)
        assert key in doc


def _reject_constant(name: str) -> None:
    raise AssertionError(f"non-strict JSON constant {name}")


def _safe(k: Any) -> str:
    from clue.log._entry import safe_str

    return safe_str(k)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=0, max_size=30), st.text(max_size=60)), max_size=8))
def test_logfmt_parses_back_to_same_keys_and_values(kvs: list[tuple[str, str]]) -> None:
    """logfmt output parses back to the (sanitized) keys and the exact string values."""
    line = log.format_text(entry_of(kvs))
    pairs = parse_logfmt(line)
    assert pairs[0] == ("time", "2023-11-14T22:13:20Z")
    assert pairs[1] == ("level", "info")
    got = pairs[2:]
    assert len(got) == len(kvs)
    for (k, v), (gk, gv) in zip(kvs, got, strict=True):
        assert gv == v
        assert gk == text_key(k)


@given(st.text(), st.text())
def test_no_value_or_key_forges_a_field(k: str, v: str) -> None:
    """Whatever a key or value holds, logfmt yields exactly one field for it."""
    pairs = parse_logfmt(log.format_text(entry_of([(k, v)])))
    assert len(pairs) == 3
    assert [p[0] for p in pairs[:2]] == ["time", "level"]
    assert pairs[2][0] not in ("time", "level")
    doc = json.loads(log.format_json(entry_of([(k, v)])))
    assert len(doc) == 3
    assert (doc["time"], doc["level"]) == ("2023-11-14T22:13:20Z", "info")


def test_known_hostile_inputs() -> None:
    """CR, LF, U+2028, U+0085, ESC, NaN, inf, huge ints, cycles and bad repr are all safe."""
    kvs = [
        ("crlf", "a\r\nb"),
        ("ls", "a\u2028b"),
        ("nel", "a\x85b"),
        ("esc", "\x1b[31mred"),
        ("nan", math.nan),
        ("inf", -math.inf),
        ("huge", 10**10000),
        ("cycle", recursive_list()),
        ("dcycle", recursive_dict()),
        ("bad", Hostile()),
        (Hostile(), 1),
        (42, "int key"),
        ("forged", 'x" level=error msg="pwned'),
    ]
    entry = entry_of(kvs)
    text = log.format_text(entry)
    assert len(text.splitlines()) == 1
    assert "\x1b" not in text
    fields = dict(parse_logfmt(text))
    assert fields["level"] == "info"
    assert fields["forged"] == 'x" level=error msg="pwned'
    assert fields["nan"] == "NaN"
    assert fields["inf"] == "-Inf"
    assert fields["huge"] == "<int of 33220 bits>"
    assert fields["bad"] == "<unprintable Hostile>"
    doc = json.loads(log.format_json(entry), parse_constant=_reject_constant)
    assert doc["nan"] == "NaN"
    assert doc["ls"] == "a\u2028b"
    assert doc["level"] == "info"
    assert doc["forged"] == 'x" level=error msg="pwned'
    assert doc["cycle"][0] == 1
    assert b"\xe2\x80\xa8" not in log.format_json(entry)


def test_text_format_example_from_spec() -> None:
    """The text format matches the SPEC's example line."""
    entry = log.Entry(1705314600_000_000_000, "info", [("user", "alice"), ("action", "login")])
    assert (
        log.format_text(entry) == "time=2024-01-15T10:30:00Z level=info user=alice action=login\n"
    )


def test_json_format_example_from_spec() -> None:
    """The JSON format matches the SPEC's example document."""
    entry = log.Entry(1705314600_000_000_000, "info", [("user", "alice")])
    assert (
        log.format_json(entry) == b'{"time":"2024-01-15T10:30:00Z","level":"info","user":"alice"}\n'
    )


@pytest.mark.parametrize(
    ("severity", "code", "color"),
    [
        ("debug", "DEBG", "37"),
        ("info", "INFO", "34"),
        ("warn", "WARN", "33"),
        ("error", "ERRO", "31"),
    ],
)
def test_terminal_format(severity: str, code: str, color: str) -> None:
    """The terminal format shows a colored 4-letter code and seconds since start."""
    from clue.log import _format

    entry = log.Entry(_format._START_NS + 42_000_000_000, severity, [("user", "alice")])
    assert log.format_terminal(entry) == f"\x1b[{color}m{code}\x1b[0m[0042] user=alice\n"


def test_string_truncation_never_mid_code_point() -> None:
    """Strings over max_size are cut at a code point and end with the marker."""
    limits.max_size = 5
    try:
        entry = entry_of([("s", "ééééééé😀😀"), ("list", list(range(10)))])
        doc = json.loads(log.format_json(entry))
        assert doc["s"] == "ééééé ... <clue/log.truncated>"
        assert doc["list"] == [0, 1, 2, 3, 4, "... <clue/log.truncated>"]
        text = log.format_text(entry)
        assert 's="ééééé ... <clue/log.truncated>"' in text
    finally:
        limits.max_size = 1024


def test_too_many_keys_are_cut_with_marker() -> None:
    """An entry with more than max_size keys is cut and says how many were dropped."""
    limits.max_size = 3
    try:
        doc = json.loads(log.format_json(entry_of([(f"k{i}", i) for i in range(10)])))
        assert [k for k in doc if k.startswith("k")] == ["k0", "k1", "k2"]
        assert doc["clue.truncated_keys"] == 7
    finally:
        limits.max_size = 1024


def test_timestamp_format_override() -> None:
    """TIMESTAMP_FORMAT can be changed at run time."""
    log.TIMESTAMP_FORMAT = "%Y-%m-%d"
    try:
        assert log.format_text(entry_of([])).startswith("time=2023-11-14 ")
    finally:
        log.TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def test_key_names_overridable_at_run_time(clue_logs: Any) -> None:
    """Setting clue.log.MESSAGE_KEY changes the key of later entries."""
    log.MESSAGE_KEY = "message"
    log.SEVERITY_KEY = "severity"
    try:
        log.print("hello")
        assert clue_logs.entries[0].key_vals == [("message", "hello")]
        assert log.format_json(clue_logs.entries[0]).startswith(b'{"time":"')
        assert b'"severity":"info"' in log.format_json(clue_logs.entries[0])
    finally:
        log.MESSAGE_KEY = "msg"
        log.SEVERITY_KEY = "level"


def test_key_override_validated() -> None:
    """A key name must be a non-empty string."""
    with pytest.raises(ValueError, match="MESSAGE_KEY"):
        log.MESSAGE_KEY = ""  # type: ignore[misc]


@given(pattern=st.text(min_size=1, max_size=30))
@settings(max_examples=150, deadline=None)
def test_any_timestamp_format_is_one_line_in_every_format(pattern: str) -> None:
    """Whatever ``TIMESTAMP_FORMAT`` renders (a newline, quotes, ``level=error``...), the
    time is one value of one line: it forges no field in any format. A pattern
    ``strftime`` refuses (a NUL) is a ``ValueError`` naming it."""
    from .hostile import loads_strict

    if "\x00" in pattern:
        with pytest.raises(ValueError, match="TIMESTAMP_FORMAT"):
            log.TIMESTAMP_FORMAT = pattern
        return
    log.TIMESTAMP_FORMAT = pattern
    try:
        entry = entry_of([("msg", "hi")])
        text = log.format_text(entry)
        assert [k for k, _ in parse_logfmt(text)] == ["time", "level", "msg"]
        assert dict(parse_logfmt(text))["level"] == "info"
        terminal = log.format_terminal(entry)
        assert len((terminal + "x").splitlines()) == 2
        doc = loads_strict(log.format_json(entry))
        assert list(doc) == ["time", "level", "msg"]
    finally:
        log.TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@pytest.mark.parametrize("name", ["TIMESTAMP_KEY", "SEVERITY_KEY", "MESSAGE_KEY"])
@pytest.mark.parametrize("value", ["t\nx level=error", "a b", 'q"', "a=b", "c\x85", "s\udcff"])
def test_key_name_a_logfmt_key_cannot_hold_is_refused(name: str, value: str) -> None:
    """A key name that a logfmt key cannot hold (it would forge fields or break the line
    where clue writes it as is) is a ``ValueError`` naming it; the name is unchanged."""
    before = getattr(log, name)
    try:
        with pytest.raises(ValueError, match=name):
            setattr(log, name, value)
    finally:
        unchanged = getattr(log, name) == before
        setattr(log, name, before)
    assert unchanged
    line = log.format_text(entry_of([("msg", "hi")]))
    assert len((line + "x").splitlines()) == 2


def test_time_and_level_under_one_name_is_refused() -> None:
    """Time and level are both written in every entry: one name for both would drop or
    repeat one of them, so it is a ``ValueError``."""
    try:
        with pytest.raises(ValueError, match="TIMESTAMP_KEY"):
            log.TIMESTAMP_KEY = "level"
        with pytest.raises(ValueError, match="SEVERITY_KEY"):
            log.SEVERITY_KEY = "time"
    finally:
        log.TIMESTAMP_KEY, log.SEVERITY_KEY = "time", "level"
    doc = json.loads(log.format_json(entry_of([("msg", "hi")])))
    assert list(doc) == ["time", "level", "msg"]


@pytest.mark.parametrize("max_size", [1, 2, 3, 8])
def test_cutting_keys_keeps_clues_keys_and_the_traceback(max_size: int) -> None:
    """Past ``max_size`` keys only the application's keys are cut: the message, ``err``,
    the request id and the traceback (never cut) are all written, in every format."""
    import traceback

    from .hostile import loads_strict

    outs = {"text": io.StringIO(), "json": io.StringIO()}
    log.configure(
        outputs=[(outs["text"], log.format_text), (outs["json"], log.format_json)],
        max_size=max_size,
    )
    fields = {f"k{i}": i for i in range(20)}
    with log.context():
        log.bind(log.KV(log.REQUEST_ID_KEY, "rid"))
        try:
            raise ValueError("boom")
        except ValueError as exc:
            tb = "".join(traceback.format_exception(exc))
            log.error("failed", log.Fields(fields), err=exc)
    doc = loads_strict(outs["json"].getvalue())
    text = dict(parse_logfmt(outs["text"].getvalue()))
    for got in (doc, text):
        assert got["exception"].rstrip("\n") == tb.rstrip("\n")
        assert "failed"[:max_size] in got["msg"]
        assert "boom"[:max_size] in got["err"]
        kept = [k for k in got if k.startswith("k")]
        assert len(kept) <= max_size
        assert int(got["clue.truncated_keys"]) == 20 - len(kept)
