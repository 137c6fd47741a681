"""``log.buffering_wrapper_class``: a buffered call counts what its context holds, exactly.

The buffered call of the wrapper class estimates its size inline; the estimate must be the
one every other path of the wrapper class makes (``_call_size``: ``ENTRY_BYTES``, the
event and every keyword value by ``_budget.size_of``), whatever the values; a bound
logger's key/values count as keywords.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import log
from clue.log import _structlog_wrapper

# ``self`` aside: structlog's own filtering logger takes it as its parameter and raises.
KEYS = st.text(min_size=1, max_size=4).filter(lambda k: k not in {"exc_info", "self"})
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.binary(max_size=8),
    st.tuples(st.integers()),
    st.frozensets(st.integers(), max_size=3),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.decimals(allow_nan=False),
    st.datetimes(),
    st.builds(ValueError, st.text(max_size=3)),
)
EVENTS = st.one_of(st.text(max_size=20), st.integers(), st.none(), st.binary(max_size=4))


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(st.tuples(EVENTS, st.dictionaries(KEYS, VALUES, max_size=4)), max_size=5))
def test_a_buffered_call_counts_the_estimate_of_every_path(
    calls: list[tuple[Any, dict[str, Any]]],
) -> None:
    """Each buffered call holds ``_call_size`` of its event and keywords as they were."""
    log.configure(output=io.StringIO(), format=log.format_json)
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        wrapper_class=log.buffering_wrapper_class(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(io.StringIO()),
        cache_logger_on_first_use=True,
    )
    logger = structlog.get_logger()
    expected = [_structlog_wrapper._call_size(event, dict(kw)) for event, kw in calls]
    with log.context() as ctx:
        for event, kw in calls:
            logger.info(event, **kw)
        held = [call.size for call in ctx.req.buf or ()]
        room = ctx.req.room + ctx.req.aside
    assert held == expected
    assert room == ctx.req.limit - sum(held)


def _wrapper_chain(out: io.StringIO) -> None:
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        wrapper_class=log.buffering_wrapper_class(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )


@settings(max_examples=200, deadline=None)
@given(
    bound=st.dictionaries(KEYS, VALUES, max_size=4),
    calls=st.lists(st.tuples(EVENTS, st.dictionaries(KEYS, VALUES, max_size=3)), max_size=4),
)
def test_a_buffered_call_counts_its_bound_values_as_keywords(
    bound: dict[str, Any], calls: list[tuple[Any, dict[str, Any]]]
) -> None:
    """A bound logger's call holds the estimate of its merged event dict.

    Its bound key/values count as keywords do (each one the call does not give again),
    whether they are copied at the call (a list, a dict) or kept as they are.
    """
    log.configure(output=io.StringIO(), format=log.format_json)
    _wrapper_chain(io.StringIO())
    logger = structlog.get_logger().bind(**bound)
    expected = [_structlog_wrapper._call_size(event, {**bound, **kw}) for event, kw in calls]
    with log.context() as ctx:
        for event, kw in calls:
            logger.info(event, **kw)
        held = [call.size for call in ctx.req.buf or ()]
        room = ctx.req.room + ctx.req.aside
    assert held == expected
    assert room == ctx.req.limit - sum(held)


@pytest.mark.parametrize("big", [list(range(10_000)), "x" * 10_000_000], ids=["list", "10MB"])
def test_a_large_bound_value_is_bounded_as_a_keyword_is(big: Any) -> None:
    """A value larger than the context may hold is dropped alone, bound or given.

    A bound list is copied at each buffered call (the call's own, as the chain would have
    rendered it then): without counting it, 50 calls would hold 50 copies past the bound.
    """
    written = {}
    for how in ("keyword", "bound"):
        clue_out, chain_out = io.StringIO(), io.StringIO()
        log.configure(output=clue_out, format=log.format_json, max_buffered_bytes=64 * 1024)
        _wrapper_chain(chain_out)
        logger = structlog.get_logger()
        if how == "bound":
            logger = logger.bind(items=big)
        with log.context() as ctx:
            for i in range(50):
                if how == "bound":
                    logger.info("step", i=i)
                else:
                    logger.info("step", items=big, i=i)
            assert list(ctx.req.buf or ()) == []
            structlog.get_logger().info("small")
            structlog.get_logger().error("failed")
        written[how] = chain_out.getvalue().splitlines()
    assert written["keyword"][0] == written["bound"][0] != ""
    assert '"clue.dropped": 50' in written["bound"][0]
    assert len(written["bound"]) == 3  # the marker, the small call, the error
