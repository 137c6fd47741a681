"""The hostile corpus against every format, every kind of output, buffered and immediate:
every entry of every batch is written, exactly one line each, bounded in size; JSON parses
strictly, logfmt reads back; rendering does bounded work (counted, not timed)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import log
from clue.log import _format
from clue.log._render import CHARS_PER_MAX_SIZE, NODES_PER_MAX_SIZE

from . import hostile
from .hostile import LINE_BREAKS, Counting, CountingList, loads_strict, parse_logfmt


def custom(entry: log.Entry) -> str:
    """A naive custom format: keys as given (surrogates and all), the values' types."""
    body = " ".join(f"{_one_line(k)}:{type(v).__name__}" for k, v in entry.key_vals)
    return f"[{entry.severity}] {body}\n"


def _one_line(s: str) -> str:
    return "".join("?" if c in LINE_BREAKS else c for c in s)


FORMATS: dict[str, Callable[[log.Entry], str | bytes]] = {
    "text": log.format_text,
    "terminal": log.format_terminal,
    "json": log.format_json,
    "custom": custom,
}


class Outputs:
    """One format written to three kinds of stream: strict UTF-8 text, binary, and text
    with ``surrogateescape``."""

    def __init__(self, fmt: Callable[[log.Entry], str | bytes]) -> None:
        self.strict = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
        self.binary = io.BytesIO()
        self.escape = io.TextIOWrapper(
            io.BytesIO(), encoding="utf-8", errors="surrogateescape", newline=""
        )
        # The corpus's huge values together pass the default 1 MiB a context keeps.
        log.configure(
            outputs=[(self.strict, fmt), (self.binary, fmt), (self.escape, fmt)],
            max_buffered_bytes=1 << 28,
        )

    def raw(self) -> dict[str, bytes]:
        self.strict.flush()
        self.escape.flush()
        return {
            "strict": self.strict.buffer.getvalue(),  # type: ignore[attr-defined]
            "binary": self.binary.getvalue(),
            "surrogateescape": self.escape.buffer.getvalue(),  # type: ignore[attr-defined]
        }


def line_bound(max_size: int) -> int:
    """The most a line may hold: the budget's characters, plus for each key/value its floor
    and what is never charged (a key and a string of up to 64 characters, a number), times 6
    for escapes such as ``\\u0001``."""
    per_entry = CHARS_PER_MAX_SIZE * max_size + (max_size + 1) * 3 * 64
    return 6 * per_entry + 200


def check_lines(fmt_name: str, data: bytes, msgs: list[str], max_size: int = 1024) -> None:
    """One line per entry, in order, each readable by a strict reader of its format."""
    assert data.endswith(b"\n")
    lines = data[:-1].split(b"\n")
    assert len(lines) == len(msgs), (fmt_name, len(lines), len(msgs))
    for raw, msg in zip(lines, msgs, strict=True):
        assert len(raw) <= line_bound(max_size), (fmt_name, msg, len(raw))
        if fmt_name == "custom":
            assert raw.startswith(b"[")
            continue
        text = raw.decode("utf-8")  # strict: built-in formats never write invalid UTF-8
        assert not any(c in text for c in LINE_BREAKS), (fmt_name, msg)
        if fmt_name == "json":
            doc = loads_strict(text)
            assert doc["msg"] == msg
            assert {"time", "level"} <= set(doc)
            continue
        if fmt_name == "terminal":
            assert text.startswith("\x1b[")
            text = text.split("] ", 1)[1] if "] " in text else ""
        fields = dict(parse_logfmt(text + "\n"))
        assert fields["msg"] == msg, (fmt_name, text[:200])
        if fmt_name == "text":
            assert fields["level"] in {"info", "error", "warn"}


def hostile_calls(emit: Callable[..., None]) -> list[str]:
    """Log the whole corpus (values, then keys) with ``emit``; return the messages."""
    msgs = []
    for name, value in hostile.values():
        emit(name, value=value, after="kept")
        msgs.append(name)
    for i, key in enumerate(hostile.keys()):
        emit(f"key-{i}", log.Fields({key: "v", "after": "kept"}))
        msgs.append(f"key-{i}")
    return msgs


@pytest.fixture(params=list(FORMATS))
def fmt_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_buffered_batch_every_entry_written_once(fmt_name: str) -> None:
    """A flushed batch of hostile entries: every entry is written, one line each, in every
    kind of output."""
    outs = Outputs(FORMATS[fmt_name])
    with log.context():
        msgs = hostile_calls(log.info)
        log.error("flush")
    for kind, data in outs.raw().items():
        check_lines(fmt_name, data, [*msgs, "flush"])
        if kind == "strict" or fmt_name != "custom":
            data.decode("utf-8")  # what reached a strict UTF-8 stream is UTF-8


def test_immediate_every_entry_written_once(fmt_name: str) -> None:
    """Hostile entries written at once: one line each, in every kind of output."""
    outs = Outputs(FORMATS[fmt_name])
    msgs = hostile_calls(log.print)
    for data in outs.raw().values():
        check_lines(fmt_name, data, msgs)


def test_one_bad_value_costs_nothing_else() -> None:
    """A value whose methods raise, or a lone surrogate, becomes a marker or an escape in
    its own place; time, message, request id and the other values survive."""
    outs = Outputs(log.format_json)
    surrogate = "report-\udcff.csv"
    with log.context():
        log.bind(request_id="r-1")
        log.info(
            "upload",
            file_name=surrogate,
            bad=hostile.RaisingItemsDict(a=1),
            nested={"ok": 1, "bad": hostile.RaisingIterList([1]), "after": "kept"},
            after="kept",
        )
        log.error("failed")
    for data in outs.raw().values():
        first = loads_strict(data.splitlines()[0])
        assert first["msg"] == "upload"
        assert first["request_id"] == "r-1"
        assert first["file_name"] == surrogate  # \udcff escape: the same str read back
        assert first["bad"] == "<clue/log.unrenderable RaisingItemsDict: RuntimeError>"
        assert first["nested"] == {
            "ok": 1,
            "bad": "<clue/log.unrenderable RaisingIterList: RuntimeError>",
            "after": "kept",
        }
        assert first["after"] == "kept"
        assert "time" in first


def test_surrogate_text_entry_does_not_lose_the_batch() -> None:
    """On a strict UTF-8 stream, a lone surrogate in one entry costs neither that entry nor
    its neighbours, in text and terminal formats."""
    for fmt in (log.format_text, log.format_terminal):
        outs = Outputs(fmt)
        with log.context():
            log.info("before")
            log.info("bad", path="\udcff")
            log.error("after")
        data = outs.raw()["strict"].decode()
        assert len(data.splitlines()) == 3
        assert 'path="\\udcff"' in data


class _Refuses:
    """A text stream that refuses any write holding ``poison`` (as a strict encoder
    would), whatever else the write holds."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, s: str) -> int:
        if "poison" in s:
            raise UnicodeEncodeError("utf-8", s, 0, 1, "refused")
        self.lines.extend(s.splitlines())
        return len(s)

    def flush(self) -> None:
        pass


def test_an_entry_the_stream_refuses_costs_only_itself() -> None:
    """When the stream refuses one entry of a batch even once escaped, the others are still
    written and the loss is counted."""
    stream = _Refuses()
    log.configure(output=stream, format=log.format_text)  # type: ignore[arg-type]
    with log.context():
        log.info("one")
        log.info("poison")
        log.info("three")
        log.error("four")
    assert [dict(parse_logfmt(x + "\n"))["msg"] for x in stream.lines] == ["one", "three", "four"]
    from clue.log._config import state

    assert state.sinks[0].failures == 1


def test_custom_format_surrogate_on_strict_stream_is_escaped() -> None:
    """A custom format's lone surrogate reaches a strict UTF-8 stream escaped, with its
    neighbours."""
    outs = Outputs(custom)
    with log.context():
        log.info("a", **{"k\udcff": 1})
        log.error("b")
    data = outs.raw()
    strict = data["strict"].decode("utf-8")
    assert strict.splitlines() == [
        "[info] msg:str k\\udcff:int",
        "[error] msg:str",
    ]
    assert data["binary"].decode("utf-8") == strict
    assert data["surrogateescape"] == b"[info] msg:str k\xff:int\n[error] msg:str\n"


@pytest.mark.parametrize("fmt", [log.format_text, log.format_terminal, log.format_json])
def test_shared_references_do_bounded_work(fmt: Callable[[log.Entry], Any]) -> None:
    """A dict whose values are all the same dict, eight levels deep (10**8 paths), is
    rendered by walking at most the budget's number of values."""
    graph = hostile.shared_graph(width=10, depth=8)
    Counting.walks[0] = 0
    line = fmt(log.Entry(0, "info", [("msg", "graph"), ("g", graph), ("tail", "kept")]))
    budget = NODES_PER_MAX_SIZE * _format.limits.max_size
    assert 0 < Counting.walks[0] <= budget
    text = line.decode() if isinstance(line, bytes) else line
    assert "kept" in text
    assert "clue.truncated_keys" in text  # where it was cut, it says so


@pytest.mark.parametrize("fmt", [log.format_text, log.format_terminal, log.format_json])
def test_container_reaching_itself_by_many_paths_is_marked(
    fmt: Callable[[log.Entry], Any],
) -> None:
    """A list that holds itself twice at every level is walked once per path up to the
    cycle, and each cycle is written as a marker."""
    x = CountingList()
    x.append(x)
    x.append(x)
    CountingList.walks[0] = 0
    line = fmt(log.Entry(0, "info", [("x", x), ("tail", "kept")]))
    assert CountingList.walks[0] == 1
    text = line.decode() if isinstance(line, bytes) else line
    assert text.count("<clue/log.cycle>") == 2
    assert "kept" in text


def test_budget_scales_with_max_size() -> None:
    """With a small max_size the whole entry stays small, and later keys keep their room."""
    log.configure(output=io.StringIO(), max_size=16)
    wide = [[["x" * 100] * 100] * 100] * 100
    for fmt in (log.format_text, log.format_json, log.format_terminal):
        line = fmt(log.Entry(0, "info", [("w", wide), ("trace_id", "a" * 32)]))
        text = line.decode() if isinstance(line, bytes) else line
        assert len(text) <= line_bound(16)
        assert "a" * 16 in text


def test_every_key_escape_is_identical_in_every_format() -> None:
    """A key of the application named like one of clue's is written under the same escaped
    name in text, terminal, JSON and a custom format."""
    seen: dict[str, list[str]] = {}

    def names(entry: log.Entry) -> str:
        seen.setdefault("custom", []).extend(k for k, _ in entry.key_vals)
        return "\n"

    outs = [io.StringIO(), io.StringIO(), io.BytesIO(), io.StringIO()]
    log.configure(
        outputs=[
            (outs[0], log.format_text),
            (outs[1], log.format_terminal),
            (outs[2], log.format_json),
            (outs[3], names),
        ]
    )
    user = {"level": "L", "time": "T", "msg": "M", "_msg": "M1", "__level": "L2", "x": "X"}
    log.print("hello", **user)
    text = dict(parse_logfmt(outs[0].getvalue()))
    term = dict(parse_logfmt(outs[1].getvalue().split("] ", 1)[1]))
    doc = loads_strict(outs[2].getvalue())
    expected = {"_level": "L", "_time": "T", "_msg": "M", "__msg": "M1", "___level": "L2", "x": "X"}
    for got in (text, term, doc):
        assert {k: got[k] for k in expected} == expected
        assert (got.get("msg"), got.get("level", "info")) == ("hello", "info")
    assert seen["custom"] == ["msg", *expected]


def _cyclic(x: Any) -> list[Any]:
    loop: list[Any] = [x]
    loop.append(loop)
    loop.append(loop)
    return loop


_text = st.text(
    alphabet=st.one_of(
        st.characters(codec=None),
        st.sampled_from(["\udcff", "\ud800", "\x7f", "\x85", "\u2028", "\x1b", '"', "=", "\\"]),
    ),
    max_size=40,
)
_scalars = st.one_of(
    _text,
    st.integers(),
    st.floats(),
    st.none(),
    st.booleans(),
    st.binary(max_size=10),
    st.sampled_from([hostile.RaisingRepr, hostile.NonStrRepr, lambda: hostile.HostileStr("s")]).map(
        lambda make: make()
    ),
)
_graphs = st.recursive(
    _scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=5),
        st.dictionaries(_text, kids, max_size=5),
        kids.map(lambda x: [x] * 4),  # shared references
        kids.map(lambda x: {"a": x, "b": x, "c": x}),
        kids.map(_cyclic),  # reaches itself by two paths
        kids.map(lambda x: hostile.RaisingItemsDict(a=x)),
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    value=_graphs,
    key=st.one_of(_text, st.sampled_from(sorted(hostile.CLUE_KEYS))),
    max_size=st.sampled_from([1, 4, 64, 1024]),
)
def test_any_value_is_one_valid_bounded_line(value: Any, key: str, max_size: int) -> None:
    """Any value under any key, logged through clue, is one line per format that a strict
    reader accepts, within the size the budget allows."""
    outs = {name: io.BytesIO() for name in ("text", "terminal", "json", "custom")}
    log.configure(outputs=[(outs[n], FORMATS[n]) for n in outs], max_size=max_size)
    log.print("m", log.Fields({key: value}), after="kept")
    for name, stream in outs.items():
        check_lines(name, stream.getvalue(), ["m"], max_size)
    doc = loads_strict(outs["json"].getvalue())
    assert doc["level"] == "info"
    assert "after" in doc or max_size < 3


_NARROW = ["ascii", "latin-1", "cp1252"]
_PRINTABLE = st.characters(blacklist_categories=("Cs",))


@pytest.mark.parametrize("encoding", _NARROW)
@given(
    keys=st.lists(st.text(_PRINTABLE, min_size=1, max_size=6), min_size=1, max_size=4),
    value=st.text(_PRINTABLE, max_size=12),
)
@settings(max_examples=60, deadline=None)
def test_a_narrow_stream_gets_lines_its_format_reads_back(
    encoding: str, keys: list[str], value: str
) -> None:
    """On a stream whose encoding cannot hold every character (``ascii``, ``latin-1``...),
    what it cannot encode is escaped the way the format escapes: each line still parses
    strictly as JSON or logfmt and reads back the same values as on a UTF-8 stream."""
    fields = {k: value + k for k in keys}
    narrow = {
        name: io.TextIOWrapper(io.BytesIO(), encoding=encoding, newline="")
        for name in ("text", "json")
    }
    wide = {name: io.StringIO() for name in ("text", "json")}
    log.configure(
        outputs=[
            (narrow["text"], log.format_text),
            (narrow["json"], log.format_json),
            (wide["text"], log.format_text),
            (wide["json"], log.format_json),
        ]
    )
    with log.context():
        log.info(value, log.Fields(fields))
        log.error("flush " + value)
    got = {}
    for name, stream in narrow.items():
        stream.flush()
        got[name] = stream.buffer.getvalue().decode(encoding)  # type: ignore[attr-defined]
    jsons = [loads_strict(x) for x in got["json"].splitlines()]
    assert jsons == [loads_strict(x) for x in wide["json"].getvalue().splitlines()]
    narrow_text = [parse_logfmt(x + "\n") for x in got["text"].splitlines()]
    wide_text = [parse_logfmt(x + "\n") for x in wide["text"].getvalue().splitlines()]
    assert len(narrow_text) == len(wide_text) == 2
    for n, w in zip(narrow_text, wide_text, strict=True):
        # The same values in the same order; a key character the stream cannot hold becomes
        # "_", as any character a logfmt key cannot hold does.
        assert [v for _, v in n] == [v for _, v in w]
        assert [k for k, _ in n] == [_narrow_key(k, encoding) for k, _ in w]


def _narrow_key(key: str, encoding: str) -> str:
    def fits(c: str) -> bool:
        try:
            c.encode(encoding)
        except UnicodeError:
            return False
        return True

    if all(fits(c) for c in key):
        return key
    key = "".join(c if fits(c) else "_" for c in key)
    return "_" + key if key.lstrip("_") in hostile.ALL_KEY_NAMES else key


def test_hostile_positional_values_never_raise_at_any_entry_point() -> None:
    """A hostile value passed positionally (a ``%`` argument, a mapping, in a ``KV``), to
    ``bind`` or as ``exc_info``, buffered or not, never makes the call raise; the entry is
    written."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    skip = {"huge_str", "huge_bytes", "wide_list", "wide_dict", "wide_set", "wide_frozenset"}
    corpus = [(n, v) for n, v in hostile.values() if n not in skip]
    corpus.append(("bool_raises", _BoolRaises()))
    written = 0
    for switch in (None, True):  # buffered, then unbuffered
        for name, value in corpus:
            with log.context(disable_buffering=switch):
                log.info(name, value)
                log.info(name, log.KV("k", value))
                log.warn(name, value, log.Fields(k=1))
                log.info(name, exc_info=value)
                log.info(name, err=value)
                log.bind(log.KV("bound", value))
                log.error(name, value)
            written += 6
    lines = out.getvalue().splitlines()
    assert len(lines) == written
    assert all(loads_strict(line)["level"] in {"info", "warn", "error"} for line in lines)


class _BoolRaises:
    def __bool__(self) -> bool:
        raise RuntimeError("no truth value")


class _UnhashableClass(type):
    """A metaclass whose classes cannot be hashed or compared: a lookup of the class in a
    set raises."""

    def __hash__(cls) -> int:
        raise RuntimeError("no hash for the class")

    def __eq__(cls, other: object) -> bool:
        raise RuntimeError("no equality for the class")


class _Opaque(metaclass=_UnhashableClass):
    pass


class _OpaqueStr(str, metaclass=_UnhashableClass):
    pass


class _OpaqueInt(int, metaclass=_UnhashableClass):
    pass


@pytest.mark.parametrize("make", [_Opaque, lambda: _OpaqueStr("text"), lambda: _OpaqueInt(7)])
def test_a_value_whose_class_cannot_be_hashed_never_raises(make: Any) -> None:
    """A value whose class cannot be looked up in a set (its metaclass's ``__hash__``
    raises), given as a keyword, ``err``, ``exc_info``, in a ``KV`` or ``Fields``, as a
    ``%`` argument or as the message, buffered or not, never makes the call raise; its entry
    is written."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    written = 0
    for switch in (None, True):  # buffered, then unbuffered
        with log.context(disable_buffering=switch):
            log.info("keyword", v=make())
            log.info("keywords", n=1, s="s", v=make())
            log.info("err", err=make())
            log.info("exc_info", exc_info=make())
            log.info("kv", log.KV("v", make()))
            log.info("fields", log.Fields(v=make()))
            log.info("argument %s", make())
            log.info(make())
            log.error("failed")
        written += 9
    lines = out.getvalue().splitlines()
    assert len(lines) == written
    assert all(loads_strict(line)["level"] in {"info", "error"} for line in lines)
