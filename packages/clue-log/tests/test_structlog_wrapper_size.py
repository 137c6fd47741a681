"""``log.buffering_wrapper_class``: a buffered call counts what its context holds, exactly.

The buffered call of the wrapper class estimates its size inline; the estimate must be the
one every other path of the wrapper class makes (``_call_size``: ``ENTRY_BYTES``, the
event and every keyword value by ``_budget.size_of``), whatever the values.
"""

from __future__ import annotations

import io
import logging
from typing import Any

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
