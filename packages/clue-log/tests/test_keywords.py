"""Every entry point accepts every keyword clue gives meaning to: the matrix of clue's
functions, structlog's configured bound logger (every method, sync and async), a
hand-built structlog chain with ``BufferingProcessor`` and the stdlib bridge, at every
level, with ``err``, ``exc_info`` (True, a tuple, an exception), ``event``, ``msg`` and the
other reserved names. Nothing raises, exactly one entry is written, and an exception's
traceback survives buffering."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue import log
from clue.log.testing import capture, reset

LEVELS = ("debug", "info", "warn", "error")
# Names clue (or Python, for a parameter) gives a meaning to.
RESERVED = (
    "err",
    "exc_info",
    "event",
    "msg",
    "level",
    "time",
    "exception",
    "logger",
    "self",
    "args",
    "kw",
    "kv",
    "fielders",
    "method_name",
    "event_dict",
    "trace_id",
    "span_id",
    "request_id",
    "file",
    "service",
    "method",
    "stack_info",
    "stacklevel",
)
# What a LogRecord already has: stdlib itself refuses these in ``extra``.
RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}

# A keyword value: "exc" / "tuple" / True stand for the exception being handled.
exc_info_values = st.sampled_from([True, False, None, "exc", "tuple"])
err_values = st.sampled_from(["exc", "a string error"])
keywords = st.fixed_dictionaries(
    {},
    optional={
        "err": err_values,
        "exc_info": exc_info_values,
        **{name: st.sampled_from(["v", 1]) for name in RESERVED if name not in ("err", "exc_info")},
    },
)


def boom() -> None:
    raise ValueError("boom-marker")


def materialize(kw: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    out = dict(kw)
    for key in ("err", "exc_info"):
        if out.get(key) == "exc":
            out[key] = exc
        elif out.get(key) == "tuple":
            out[key] = sys.exc_info()
    return out


def expects_traceback(kw: dict[str, Any]) -> bool:
    return kw.get("err") == "exc" or kw.get("exc_info") in (True, "exc", "tuple")


def structlog_name(level: str) -> str:
    return {"warn": "warning"}.get(level, level)


def call_clue(level: str, kw: dict[str, Any]) -> None:
    getattr(log, level)("the-msg", **kw)


def call_structlog(level: str, kw: dict[str, Any]) -> None:
    getattr(structlog.get_logger(), structlog_name(level))("the-msg", **kw)


def call_structlog_async(level: str, kw: dict[str, Any]) -> None:
    logger = structlog.get_logger()
    asyncio.run(getattr(logger, "a" + structlog_name(level))("the-msg", **kw))


def call_structlog_log(level: str, kw: dict[str, Any]) -> None:
    number = {"debug": 10, "info": 20, "warn": 30, "error": 40}[level]
    structlog.get_logger().bind(bound="b").log(number, "the-msg", **kw)


def call_stdlib(level: str, kw: dict[str, Any]) -> None:
    kw = dict(kw)
    exc_info = kw.pop("exc_info", None)
    extra = {k: v for k, v in kw.items() if k not in RECORD_ATTRS}
    getattr(log.as_std_logger("matrix"), structlog_name(level))(
        "the-msg", exc_info=exc_info, extra=extra
    )


CLUE_ENTRY_POINTS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "clue": call_clue,
    "structlog": call_structlog,
    "structlog-async": call_structlog_async,
    "structlog-log": call_structlog_log,
    "stdlib": call_stdlib,
}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("via", sorted(CLUE_ENTRY_POINTS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kw=keywords)
def test_every_keyword_at_every_entry_point(via: str, level: str, kw: dict[str, Any]) -> None:
    """Any reserved keyword at any entry point and level: nothing raises, one entry is
    written, ``err`` is the first key, and an exception's traceback survives buffering."""
    reset()
    if via == "stdlib" and kw.get("exc_info") in ("exc", "tuple", True):
        kw = {**kw, "exc_info": "tuple"}  # what logging itself accepts and stores
    with capture() as logs:
        with log.context(debug=level == "debug" or None):
            try:
                boom()
            except ValueError as exc:
                CLUE_ENTRY_POINTS[via](level, materialize(kw, exc))
            log.flush()  # buffered entries are written after the ``except`` block
        entries = [e for e in logs.entries if ("msg", "the-msg") in e.key_vals]
    assert len(entries) == 1, logs.entries
    entry = entries[0]
    assert entry.severity == level
    if kw.get("err") == "a string error":
        assert entry.key_vals[0] == ("err", "a string error")
    if expects_traceback(kw) and not (via == "stdlib" and kw.get("exc_info") is None):
        rendered = [str(v) for _, v in entry.key_vals]
        assert any("Traceback" in v and "in boom" in v and "boom-marker" in v for v in rendered)


@pytest.mark.parametrize("level", [*LEVELS, "exception", "critical"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kw=keywords)
def test_hand_built_chain_accepts_every_keyword(level: str, kw: dict[str, Any]) -> None:
    """A hand-built chain with ``BufferingProcessor``: reserved keywords never raise, the
    entry is written once, and an ``exc_info`` traceback survives buffering."""
    reset()
    # ``event``, ``self`` and ``method_name`` are parameters of structlog's own wrapper
    # class (which a hand-built chain keeps), not of clue's processor.
    kw = {k: v for k, v in kw.items() if k not in ("event", "self", "method_name")}
    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            log.BufferingProcessor(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=repr),
        ],
        logger_factory=structlog.PrintLoggerFactory(out),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    with log.context(debug=level == "debug" or None):
        try:
            boom()
        except ValueError as exc:
            method = getattr(structlog.get_logger(), structlog_name(level))
            method("the-msg", **materialize(kw, exc))
        log.flush()
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["event"] for d in docs] == ["the-msg"]
    # ``exception()`` defaults ``exc_info`` to True.
    if kw.get("exc_info") in (True, "exc", "tuple") or (
        level == "exception" and "exc_info" not in kw
    ):
        assert "Traceback" in docs[0]["exception"]
        assert "in boom" in docs[0]["exception"]
    reset()


def test_structlog_error_with_err_under_configure() -> None:
    """The issue's example: ``structlog.get_logger().error("x", err=exc)`` under
    ``log.configure()`` writes the error with its traceback instead of raising."""
    with capture() as logs:
        try:
            boom()
        except ValueError as exc:
            structlog.get_logger().error("x", err=exc)
    (entry,) = logs.entries
    assert entry.key_vals[0][0] == "err"
    assert "in boom" in dict(entry.key_vals)["exception"]
