"""structlog's own loggers go through clue's processor (configure mode and hand-written)."""

from __future__ import annotations

import io
import json

import structlog

from clue import log

from .conftest import JsonOut


def test_structlog_logger_is_buffered(out: JsonOut) -> None:
    """debug/info/warning are buffered; error flushes them first."""
    logger = structlog.get_logger()
    with log.context():
        logger.info("sl info", a=1)
        logger.warning("sl warn")
        logger.debug("sl debug")
        assert out.getvalue() == ""
        logger.error("sl error", b=2)
    docs = out.docs()
    assert [d["msg"] for d in docs] == ["sl info", "sl warn", "sl error"]
    assert [d["level"] for d in docs] == ["info", "warn", "error"]
    assert docs[0]["a"] == 1


def test_structlog_and_clue_calls_share_one_buffer(out: JsonOut) -> None:
    """structlog and clue calls in one context flush in call order."""
    logger = structlog.get_logger().bind(component="db")
    with log.context():
        log.info("clue 1")
        logger.info("structlog 2")
        log.info("clue 3")
        logger.exception("structlog fails")
    docs = out.docs()
    assert [d["msg"] for d in docs] == ["clue 1", "structlog 2", "clue 3", "structlog fails"]
    assert docs[1]["component"] == "db"


def test_structlog_exception_captures_traceback(out: JsonOut) -> None:
    """logger.exception() records the active exception's traceback."""
    try:
        raise ValueError("bad value")
    except ValueError:
        structlog.get_logger().exception("failed")
    doc = out.docs()[0]
    assert doc["err"] == "bad value"
    assert "ValueError: bad value" in doc["exception"]


def test_structlog_critical_flushes(out: JsonOut) -> None:
    """critical flushes like error."""
    with log.context():
        structlog.get_logger().info("before")
        structlog.get_logger().critical("down")
    assert out.msgs() == ["before", "down"]


def test_hand_written_chain_defers_later_processors() -> None:
    """In a hand-written chain, processors after clue's run only for written entries."""
    stream = io.StringIO()
    calls: list[str] = []

    def counting(_: object, __: str, ev: dict[str, object]) -> dict[str, object]:
        calls.append(str(ev["event"]))
        return ev

    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            log.BufferingProcessor(),
            counting,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(stream),
    )
    logger = structlog.get_logger()
    with log.context():
        logger.info("kept")
    assert calls == []
    assert stream.getvalue() == ""
    with log.context():
        logger.info("one", n=[1])
        logger.warning("two")
        logger.debug("dropped")
        logger.error("three")
        logger.info("four")
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["one", "two", "three", "four"]
    assert [x["level"] for x in lines] == ["info", "warning", "error", "info"]
    assert calls == ["one", "two", "three", "four"]
    logger.info("outside")
    assert json.loads(stream.getvalue().splitlines()[-1])["event"] == "outside"


def test_hand_written_chain_snapshot_of_containers() -> None:
    """Hand-written chain events keep a snapshot of container values."""
    stream = io.StringIO()
    structlog.configure(
        processors=[log.BufferingProcessor(), structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(stream),
    )
    items = [1]
    with log.context():
        structlog.get_logger().info("x", items=items)
        items.append(2)
        log.flush()
    assert json.loads(stream.getvalue())["items"] == [1]


def test_bound_logger_methods_and_positional_args(out: JsonOut) -> None:
    """bind(), %-args, log(level) and the async methods all reach clue."""
    import logging

    logger = structlog.get_logger().bind(svc="x")
    with log.context():
        logger.info("hello %s", "world", k=1)
        logger.log(logging.WARNING, "via log")
        logger.msg("via msg")
        logger.log(logging.ERROR, "failed")
    docs = out.docs()
    assert [d["msg"] for d in docs] == ["hello world", "via log", "via msg", "failed"]
    assert [d["level"] for d in docs] == ["info", "warn", "info", "error"]
    assert all(d["svc"] == "x" for d in docs)


async def test_async_methods_reach_clue(out: JsonOut) -> None:
    """structlog's async methods (ainfo, aerror) go through clue's processor."""
    logger = structlog.get_logger()
    with log.context():
        await logger.ainfo("async info")
        await logger.aerror("async error")
    assert out.msgs() == ["async info", "async error"]


def test_hostile_positional_arguments_never_raise(out: JsonOut) -> None:
    """A hostile ``%`` argument (its ``str``/``repr`` raising, a hostile ``__class__``,
    nested past the recursion limit) never makes a call of the bound logger raise, at any
    level, sync or async, buffered or not; its entry is written."""
    import asyncio

    from . import hostile

    # ``shared``: a graph whose ``str`` takes exponential time; ``%`` formats at the call,
    # as structlog's own interpolation does (README).
    skip = {"huge_str", "huge_bytes", "wide_list", "wide_dict", "wide_set", "wide_frozenset"}
    corpus = [(n, v) for n, v in hostile.values() if n not in skip | {"shared"}]
    logger = structlog.get_logger().bind(user="alice")
    written = 0
    for switch in (None, True):  # buffered, then unbuffered
        for name, value in corpus:
            with log.context(disable_buffering=switch):
                logger.info("%s", value)
                logger.warning("a %s and %s", name, value)
                logger.info("%(k)s", value)
                logger.log(20, "%s", value)
                asyncio.run(logger.ainfo("%s", value))
                logger.error("%d", value)
            written += 6
    docs = out.docs()
    assert len(docs) == written
    assert {d["level"] for d in docs} == {"info", "warn", "error"}


def test_buffering_processor_never_raises_on_hostile_exc_info_or_err() -> None:
    """``log.BufferingProcessor`` in a hand-built chain: a hostile ``exc_info`` or ``err``
    (its truth value, ``len`` or ``__class__`` raising) makes no call raise, at any level."""
    from . import hostile

    class BoolRaises:
        def __bool__(self) -> bool:
            raise RuntimeError("no truth value")

    out = io.StringIO()
    log.configure(output=io.StringIO())
    structlog.configure(
        processors=[log.BufferingProcessor(), lambda _l, _m, event_dict: "line"],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    logger = structlog.get_logger()
    skip = {"huge_str", "huge_bytes", "wide_list", "wide_dict", "wide_set", "wide_frozenset"}
    corpus = [(n, v) for n, v in hostile.values() if n not in skip]
    corpus.append(("bool_raises", BoolRaises()))
    calls = 0
    for _, value in corpus:
        for key in ("exc_info", "err"):
            with log.context():
                logger.info("buffered", **{key: value})
                logger.bind(**{key: value}).warning("bound")
                logger.error("failed", **{key: value})
            calls += 3
    assert out.getvalue().splitlines() == ["line"] * calls
