"""The buffered hot path keeps plain values as they are and still resolves
``exc_info=True`` at the call: a buffered entry equals the entry written at once."""

from __future__ import annotations

import io
import json
import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clue import log

KEYS = st.text(string.ascii_lowercase, min_size=1, max_size=5).filter(
    lambda k: k not in {"err", "exc_info", "time", "level", "msg"}
)
VALUES = st.one_of(st.booleans(), st.integers(), st.text(max_size=5), st.none())


def written(kw: dict[str, Any], exc_info: bool, buffered: bool) -> dict[str, Any]:
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    extra: dict[str, Any] = {"exc_info": True} if exc_info else {}
    if buffered:
        with log.context():
            try:
                raise ValueError("at the call")
            except ValueError:
                log.info("step", **kw, **extra)
            log.flush()  # outside the except block: nothing is being handled now
    else:
        try:
            raise ValueError("at the call")
        except ValueError:
            log.info("step", **kw, **extra)
    (entry,) = (json.loads(line) for line in out.getvalue().splitlines())
    entry.pop("time")
    if "exception" in entry:
        # The traceback's frames: the same exception, raised on a different line.
        entry["exception"] = entry["exception"].splitlines()[-1]
    return entry


@settings(max_examples=80, deadline=None)
@given(kw=st.dictionaries(KEYS, VALUES, max_size=4), exc_info=st.booleans())
def test_buffered_entry_equals_the_entry_written_at_once(
    kw: dict[str, Any], exc_info: bool
) -> None:
    """Booleans and other plain values, with or without ``exc_info=True``, are written the
    same whether the entry was buffered or not."""
    buffered = written(kw, exc_info, buffered=True)
    assert buffered == written(kw, exc_info, buffered=False)
    assert ("exception" in buffered) == exc_info


EXC_INFOS = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.binary(max_size=3),
    st.tuples(st.integers()),
    st.frozensets(st.integers(), max_size=2),
)


def written_with(exc_info: Any, buffered: bool) -> dict[str, Any]:
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    with log.context(disable_buffering=not buffered):
        try:
            raise ValueError("at the call")
        except ValueError:
            log.info("step", n=1, exc_info=exc_info)
        log.flush()  # outside the except block: nothing is being handled now
    (entry,) = (json.loads(line) for line in out.getvalue().splitlines())
    entry.pop("time")
    if "exception" in entry:
        entry["exception"] = entry["exception"].splitlines()[-1]
    return entry


@settings(max_examples=80, deadline=None)
@given(exc_info=EXC_INFOS)
def test_any_true_exc_info_is_resolved_at_the_call(exc_info: Any) -> None:
    """``exc_info`` of any plain type that is true (``1``, ``"yes"``...) means the exception
    being handled at the call, as ``True`` does, buffered or not; a false one means none."""
    buffered = written_with(exc_info, buffered=True)
    assert buffered == written_with(exc_info, buffered=False)
    assert ("exception" in buffered) == bool(exc_info)
