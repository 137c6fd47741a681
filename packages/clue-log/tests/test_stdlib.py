"""The standard logging bridge: records enter the same buffer."""

from __future__ import annotations

import logging

from clue import log

from .conftest import JsonOut


def test_stdlib_records_are_buffered_and_flushed_by_error(out: JsonOut) -> None:
    """INFO/WARNING/DEBUG are buffered; ERROR flushes them and writes itself."""
    logger = logging.getLogger("thirdparty")
    logger.addHandler(log.StdlibHandler())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        with log.context():
            logger.info("connecting to %s", "db")
            logger.warning("slow")
            logger.debug("hidden")
            assert out.getvalue() == ""
            logger.error("gave up")
        docs = out.docs()
        assert [d["msg"] for d in docs] == ["connecting to db", "slow", "gave up"]
        assert [d["level"] for d in docs] == ["info", "warn", "error"]
        assert all(d["logger"] == "thirdparty" for d in docs)
    finally:
        logger.handlers.clear()


def test_stdlib_exception_traceback(out: JsonOut) -> None:
    """logger.exception records the traceback and the error message."""
    logger = log.as_std_logger("lib")
    try:
        raise RuntimeError("kaput")
    except RuntimeError:
        logger.exception("broken")
    doc = out.docs()[0]
    assert doc["err"] == "kaput"
    assert "RuntimeError: kaput" in doc["exception"]


def test_as_std_logger_is_idempotent() -> None:
    """as_std_logger adds its handler once and does not propagate."""
    a = log.as_std_logger("x.y")
    b = log.as_std_logger("x.y")
    assert a is b
    assert sum(isinstance(h, log.StdlibHandler) for h in a.handlers) == 1
    assert not a.propagate
    a.handlers.clear()


def test_file_location_points_at_stdlib_caller(out: JsonOut) -> None:
    """file_location names the user's call site for stdlib records too."""
    log.configure(output=out, format=log.format_json, file_location=True)
    logger = log.as_std_logger("loc")
    logger.warning("here")
    assert out.docs()[0]["file"].startswith("tests/test_stdlib.py:")
    logger.handlers.clear()


def test_file_location_points_at_structlog_caller(out: JsonOut) -> None:
    """file_location names the user's call site for structlog calls too."""
    import structlog

    log.configure(output=out, format=log.format_json, file_location=True)
    structlog.get_logger().warning("here")
    assert out.docs()[0]["file"].startswith("tests/test_stdlib.py:")


def test_record_whose_message_cannot_be_formatted_is_kept_and_still_flushes(
    out: JsonOut,
) -> None:
    """A record whose ``%`` arguments do not fit its message is written with its arguments,
    and at ERROR it still writes the request's buffer first."""

    class NoStr:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    logger = log.as_std_logger("formats")
    with log.context():
        logger.info("count %d", "not a number")
        logger.warning("two %s %s", "only one")  # noqa: PLE1206 - the mismatch is the test
        logger.info(NoStr())
        logger.error("failed for %s", NoStr())
    docs = out.docs()
    assert [d["level"] for d in docs] == ["info", "warn", "info", "error"]
    assert docs[0]["msg"] == "count %d not a number"
    assert docs[1]["msg"] == "two %s %s only one"
    assert "NoStr" in str(docs[2]["msg"])
    assert str(docs[3]["msg"]).startswith("failed for %s <")
    assert "NoStr" in str(docs[3]["msg"])
