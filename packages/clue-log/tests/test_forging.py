"""No data forges a key clue writes: through clue's functions, structlog and ``bind``, under
the real WSGI middleware, every key clue writes keeps clue's value exactly once, and every
key of the application is written under the README's escaped name."""

from __future__ import annotations

import io
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from clue import log
from clue.log import _keys
from clue.log.testing import reset

from .hostile import CLUE_KEYS, escaped, keys, loads_strict, parse_logfmt, text_key

user_keys = st.one_of(
    st.sampled_from([*sorted(CLUE_KEYS), *[k for k in keys() if isinstance(k, str)]]),
    st.builds(lambda n, k: "_" * n + k, st.integers(1, 3), st.sampled_from(sorted(CLUE_KEYS))),
    st.text(max_size=12),
    # `err` and `exc_info` mean something at every entry point (tests/test_keywords.py).
).filter(lambda k: k not in {"event", "self", "exc_info", "err"} and len(k) < 100)


tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("forging")


def run_request(kv: dict[str, str], via: str) -> tuple[str, list[dict[str, Any]], str, str]:
    """One request under the WSGI middleware whose code logs ``kv`` through ``via``."""
    json_out, text_out = io.BytesIO(), io.StringIO()
    log.configure(
        outputs=[(json_out, log.format_json), (text_out, log.format_text)], funcs=[log.span]
    )
    ids: dict[str, str] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with tracer.start_as_current_span("handler") as span:
            ctx = span.get_span_context()
            ids["trace_id"] = format(ctx.trace_id, "032x")
            ids["span_id"] = format(ctx.span_id, "016x")
            if via == "clue":
                log.info("step", **kv)
            elif via == "structlog":
                structlog.get_logger().info("step", **kv)
            else:
                log.bind(**kv)
                log.info("step")
            log.error("boom", log.Fields(kv) if via != "bind" else log.Fields({}), err="E")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    headers: list[tuple[str, str]] = []
    mw = log.WSGIMiddleware(app)
    body = mw(_environ(), lambda status, h, exc_info=None: headers.extend(h))
    b"".join(body)
    getattr(body, "close", lambda: None)()
    rid = {k.lower(): v for k, v in headers}["x-request-id"]
    docs = [loads_strict(line) for line in json_out.getvalue().splitlines()]
    return rid, docs, text_out.getvalue(), ids["trace_id"] + ids["span_id"]


def _environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/orders",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kv=st.dictionaries(user_keys, st.text(max_size=20), max_size=8),
    via=st.sampled_from(["clue", "structlog", "bind"]),
)
def test_no_key_of_the_application_forges_one_of_clues(kv: dict[str, str], via: str) -> None:
    """For any key/values the application logs, every key clue writes has clue's value,
    once, and the application's values are under the escaped names, in JSON and logfmt."""
    reset()
    written = [set(doc) for doc in run_request({}, via)[1]]  # what clue writes itself
    reset()
    rid, docs, text, ids = run_request(kv, via)
    trace_id, span_id = ids[:32], ids[32:]
    assert [d["msg"] for d in docs] == ["start", "step", "boom", "end"]
    clue_values: list[dict[str, Any]] = [
        {"level": "info", "request_id": rid, "http.method": "GET", "http.url": "/orders"},
        {"level": "info", "request_id": rid, "trace_id": trace_id, "span_id": span_id},
        {"level": "error", "request_id": rid, "err": "E", "trace_id": trace_id},
        {"level": "info", "request_id": rid, "http.status": 200},
    ]
    user_lines = {"step", "boom"} | ({"end"} if via == "bind" else set())
    text_lines = [parse_logfmt(line + "\n") for line in text.splitlines()]
    assert len(text_lines) == 4
    for doc, pairs, clue, own in zip(docs, text_lines, clue_values, written, strict=True):
        for key, value in clue.items():
            assert doc[key] == value, (key, doc)
            assert [v for k, v in pairs if k == key] == [str(value)], (key, pairs)
        for key in ("time", "level", "msg"):
            assert [k for k, _ in pairs].count(key) == 1
        if doc["msg"] in user_lines:
            for key, value in kv.items():
                assert doc[escaped(key, own)] == value, (key, doc)
                assert (text_key(escaped(key, own)), value) in pairs, (key, pairs)


def test_readme_rule_examples() -> None:
    """``level`` is written ``_level``, ``_level`` is written ``__level``; a key clue did
    not write in the entry (no middleware, no request id) is kept."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_text)
    log.print("order", level="error", _level="x", time="t", request_id="mine")
    assert out.getvalue().split(" ", 2)[2] == (
        "msg=order _level=error __level=x _time=t request_id=mine\n"
    )


def test_hand_built_entry_cannot_shadow_time_or_level() -> None:
    """A format never writes ``time`` or ``level`` twice, even for an entry built by hand."""
    entry = log.Entry(0, "info", [("level", "error"), ("time", "later")])
    assert log.format_text(entry).endswith(" level=info _level=error _time=later\n")
    doc = loads_strict(log.format_json(entry))
    assert (doc["level"], doc["_level"], doc["_time"]) == ("info", "error", "later")


def test_public_key_constants_are_plain_strings() -> None:
    """The public key names are plain ``str``: using one does not make a key clue's."""
    assert type(log.REQUEST_ID_KEY) is str
    log.REQUEST_ID_KEY = "rid"
    try:
        assert type(log.REQUEST_ID_KEY) is str
        out = io.StringIO()
        log.configure(output=out, format=log.format_text)

        def ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [])
            return [b""]

        app = log.WSGIMiddleware(ok)
        body = app(_environ(), lambda *a: None)
        list(body)
        body.close()  # type: ignore[attr-defined]
        assert all(" rid=" in line for line in out.getvalue().splitlines())
    finally:
        log.REQUEST_ID_KEY = "request_id"


@given(
    names=st.lists(st.sampled_from(["user", "_user", "level", "1", "msg"]), max_size=8),
    via=st.lists(st.sampled_from(["bind", "kv", "fields", "int"]), min_size=8, max_size=8),
)
@settings(max_examples=80, deadline=None)
def test_a_key_given_twice_is_written_once_alike_in_every_format(
    names: list[str], via: list[str]
) -> None:
    """A key bound in the context and given again at the call (or given twice among
    ``KV``/``Fields``/keywords, or as ``1`` and ``"1"``) is written once, with its last
    value, and every format writes the same keys and values: JSON, which can hold a name
    once, loses nothing that logfmt writes."""
    outs = {"text": io.StringIO(), "json": io.StringIO()}
    log.configure(outputs=[(outs["text"], log.format_text), (outs["json"], log.format_json)])
    with log.context():
        call: list[Any] = []
        for i, (name, how) in enumerate(zip(names, via, strict=False)):
            value = f"v{i}"
            if how == "bind":
                log.bind(**{name: value})
            elif how == "kv":
                call.append(log.KV(name, value))
            elif how == "int" and name == "1":
                call.append(log.Fields({1: value}))
            else:
                call.append(log.Fields({name: value}))
        log.print("m", *call)
    text = parse_logfmt(outs["text"].getvalue())
    doc = loads_strict(outs["json"].getvalue())
    names_written = [k for k, _ in text]
    assert len(names_written) == len(set(names_written)), text
    assert text == [(k, str(v)) for k, v in doc.items()]


_NAMES = ["time", "level", "msg", "message", "err", "_time", "__level", "x", "logger"]
_DEFAULTS = {"TIMESTAMP_KEY": "time", "SEVERITY_KEY": "level", "MESSAGE_KEY": "msg"}


@given(
    renamed=st.fixed_dictionaries({name: st.sampled_from(_NAMES) for name in _DEFAULTS}),
    user=st.lists(st.tuples(st.sampled_from(_NAMES), st.text(max_size=3)), max_size=6),
    fails=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_renamed_keys_never_collide(renamed: dict[str, str], user: list[Any], fails: bool) -> None:
    """Whatever names ``TIMESTAMP_KEY``, ``SEVERITY_KEY`` and ``MESSAGE_KEY`` are given,
    each is accepted or refused with a ``ValueError`` (a name starting with ``_``, the
    escape of an application's key, or another key's name), and every entry then holds
    each name once, the same in logfmt and JSON."""
    try:
        for i, name in enumerate(_DEFAULTS):
            setattr(log, name, f"tmp{i}")
        for name, value in renamed.items():
            taken = {str(getattr(_keys, n)) for n in _keys.KEY_NAMES if n != name}
            if value[:1] == "_" or value in taken:
                with pytest.raises(ValueError, match=name):
                    setattr(log, name, value)
                return
            setattr(log, name, value)
        outs = [io.StringIO(), io.StringIO()]
        log.configure(outputs=[(outs[0], log.format_text), (outs[1], log.format_json)])
        pairs = [log.KV(k, v) for k, v in user]
        if fails:
            log.error("m", *pairs, err=ValueError("e"))
        else:
            log.print("m", *pairs)
        text = [k for k, _ in parse_logfmt(outs[0].getvalue())]
        doc = loads_strict(outs[1].getvalue())
        assert len(text) == len(set(text)), text
        assert text == list(doc)
        assert doc[renamed["SEVERITY_KEY"]] == ("error" if fails else "info")
        assert doc[renamed["MESSAGE_KEY"]] == "m"
    finally:
        for i, name in enumerate(_DEFAULTS):
            setattr(log, name, f"tmp{i}")
        for name, value in _DEFAULTS.items():
            setattr(log, name, value)
