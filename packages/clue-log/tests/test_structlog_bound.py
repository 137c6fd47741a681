"""structlog's bound logger under ``log.configure()``: bound key/values kept apart until written.

A buffered call of a bound logger keeps the logger's key/values apart from the call's own
keywords and merges them only when the entry is written. The oracle: the same calls made
through ``log.info`` / ``log.warn`` / ``log.error`` with the key/values merged at the call
(``{**bound, **kw}``, what structlog's ``bind()`` means), in a sibling log context with the
same clock, must write the same bytes in every format and count the same estimated sizes
in the context's buffer.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue import log
from clue.log import _api, _budget, _structlog
from clue.log._context import current

from . import hostile

# Names that mean something to structlog or clue, or that clue escapes, and ordinary ones.
KEYS = st.one_of(
    st.sampled_from(
        sorted(
            hostile.CLUE_KEYS
            | {"event", "exc_info", "err", "self", "level", "_time", "__msg", "user", "a", "b"}
        )
    ),
    st.text(max_size=4),
)
PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.tuples(st.integers(), st.text(max_size=3)),
    st.frozensets(st.integers(), max_size=2),
)
# Values that are not plain: merged at the call, as before, and copied or resolved there.
OTHER = st.one_of(
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.builds(ValueError, st.text(max_size=4)),
)
VALUES = st.one_of(PLAIN, PLAIN, PLAIN, OTHER)
EXC_INFO = st.one_of(
    st.booleans(), st.none(), st.builds(KeyError, st.text(max_size=3)), st.just("exc_info")
)
KWARGS = st.dictionaries(KEYS, VALUES, max_size=4)

LEVEL_OF = {"info": "info", "msg": "info", "warning": "warn", "warn": "warn", "debug": "debug"}
LEVEL_OF["error"] = LEVEL_OF["critical"] = "error"

# One step: ("bind" | "new" | "unbind" | "try_unbind", logger index, key/values or keys)
# makes a new logger; ("call", logger index, (method, event or None, %-args, keywords)).
STEP = st.one_of(
    st.tuples(st.sampled_from(["bind", "new"]), st.integers(0, 7), KWARGS),
    st.tuples(
        st.sampled_from(["unbind", "try_unbind"]), st.integers(0, 7), st.lists(KEYS, max_size=2)
    ),
    st.tuples(
        st.just("call"),
        st.integers(0, 7),
        st.tuples(
            st.sampled_from(["info", "info", "msg", "warning", "warn", "debug"]),
            st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["n=%s", "%s %s"])),
            st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
            KWARGS,
            st.one_of(st.none(), EXC_INFO),
        ),
    ),
)


#: The estimated sizes each ``run`` found buffered before its flush.
sizes: list[list[int]] = []


@contextlib.contextmanager
def frozen_clock() -> Iterator[Callable[[], None]]:
    """``time.time_ns`` of every buffered path, counting from one instant (``restart``)."""
    ticks: list[Iterator[int]] = []

    def restart() -> None:
        ticks[:] = [itertools.count(1_767_225_600 * 10**9, 1_000_000)]

    restart()
    with pytest.MonkeyPatch.context() as mp:
        for module in (_api, _structlog):
            mp.setattr(module, "_time_ns", lambda: next(ticks[0]))
        yield restart


def outputs(bounds: tuple[int, int]) -> list[io.StringIO]:
    streams = [io.StringIO() for _ in range(3)]
    log.configure(
        outputs=[
            (streams[0], log.format_json),
            (streams[1], log.format_text),
            (streams[2], log.format_terminal),
        ],
        max_buffered=bounds[0],
        max_buffered_bytes=bounds[1],
    )
    return streams


def buffered_sizes() -> list[int]:
    ctx = current.get()
    assert ctx is not None
    return [_budget.record_size(r) for r in ctx.req.buf or ()]


def run(steps: list[tuple[str, int, Any]], call: Callable[[int, tuple[Any, ...]], None]) -> None:
    """The calls of ``steps`` inside a log context and an ``except`` block, then a flush."""
    with log.context():
        try:
            raise ValueError("handled")  # the same line, so the same traceback, in both runs
        except ValueError:
            for i, (kind, _, payload) in enumerate(steps):
                if kind == "call":
                    call(i, payload)
        sizes.append(buffered_sizes())
        log.flush()


def reference_call(bound: dict[str, Any], payload: tuple[Any, ...]) -> None:
    # What structlog's bound logger means, merged at the call, through clue's functions.
    method, event, args, kw, exc_info = payload
    kw = dict(kw)
    if exc_info is not None:
        kw["exc_info"] = exc_info
    if event is None:
        event = kw.pop("event", None)
    elif args:
        event = _structlog._interpolate(event, tuple(args))
    _api.BY_LEVEL[LEVEL_OF[method]](event, **{**bound, **kw})


def logger_call(logger: Any, payload: tuple[Any, ...]) -> None:
    method, event, args, kw, exc_info = payload
    kw = dict(kw)
    if exc_info is not None:
        kw["exc_info"] = exc_info
    if event is None:
        getattr(logger, method)(**kw)
    else:
        getattr(logger, method)(event, *args, **kw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=KWARGS,
    steps=st.lists(STEP, max_size=12),
    bounds=st.one_of(st.just((1000, 1 << 20)), st.tuples(st.integers(1, 4), st.integers(1, 1200))),
)
def test_bound_logger_writes_what_merging_at_the_call_writes(
    first: dict[str, Any], steps: list[tuple[str, int, Any]], bounds: tuple[int, int]
) -> None:
    """Bound key/values merged at the write give the bytes and sizes of merging at the call.

    Any keyword overriding a bound key, ``event``, ``err``, ``exc_info``, clue's own key
    names, key order, non-plain values, loggers bound from loggers: every format alike,
    and within any buffer bounds (the same entries dropped and said dropped).
    """
    sizes.clear()
    streams = outputs(bounds)
    with frozen_clock() as restart:
        # The loggers under test, and the model of each one's key/values.
        # (The proxy's own ``bind(self, ...)`` takes no ``self`` key; its logger's does.)
        loggers = [structlog.get_logger().bind().bind(**first)]
        model = [dict(first)]
        by_step: dict[int, int] = {}
        for i, (kind, which, payload) in enumerate(steps):
            parent = which % len(loggers)
            by_step[i] = parent
            if kind == "bind":
                loggers.append(loggers[parent].bind(**payload))
                model.append({**model[parent], **payload})
            elif kind == "new":
                loggers.append(loggers[parent].new(**payload))
                model.append(dict(payload))
            elif kind == "try_unbind":
                loggers.append(loggers[parent].try_unbind(*payload))
                model.append({k: v for k, v in model[parent].items() if k not in payload})
            elif kind == "unbind":
                present = [k for k in dict.fromkeys(payload) if k in model[parent]]
                loggers.append(loggers[parent].unbind(*present))
                model.append({k: v for k, v in model[parent].items() if k not in present})
        run(steps, lambda i, payload: logger_call(loggers[by_step[i]], payload))
        written = [s.getvalue() for s in streams]
        restart()
        streams = outputs(bounds)
        run(steps, lambda i, payload: reference_call(model[by_step[i]], payload))
        expected = [s.getvalue() for s in streams]
    assert written == expected
    assert sizes[0] == sizes[1]


def test_bound_values_are_sized_once_per_logger() -> None:
    """A bound logger's plain values are looked at once, not on every buffered call."""
    looked = []

    class Plain:
        """A plain (immutable) value whose size estimate is counted."""

        def __sizeof__(self) -> int:
            looked.append(1)
            return 40

    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    each = _budget.ENTRY_BYTES + len("step") + len("alice") + _budget.size_of(Plain())
    looked.clear()
    logger = structlog.get_logger().bind(user="alice", thing=Plain())
    with log.context():
        for i in range(10):
            logger.info("step", i=i)
        assert buffered_sizes() == [each] * 10
    assert len(looked) == 1
    assert out.getvalue() == ""


def test_a_buffered_call_keeps_the_loggers_own_key_values() -> None:
    """The buffered record holds the logger's key/values and the call's keywords as given.

    The key/values are the logger's one copy, made when they were sized, shared by every
    record of that logger.
    """
    log.configure(output=io.StringIO(), format=log.format_json)
    logger = structlog.get_logger().bind(user="alice")
    with log.context() as ctx:
        logger.info("step", i=1)
        logger.info("step", user="bob")  # a bound key given again: merged at the call
        logger.info("step", i=2)
        first, second, third = ctx.req.buf or ()
    assert first[3] == structlog.get_context(logger)
    assert first[3] is third[3]
    assert first[4] == {"i": 1}
    assert second[3] == ()
    assert second[4] == {"user": "bob"}


def test_a_context_changed_in_place_changes_no_buffered_entry() -> None:
    """A logger's context dict changed in place after a buffered call (through
    ``structlog.get_context()``) changes neither that call's entry nor what it counts:
    buffered entries are written with the key/values they were counted with."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json, max_buffered_bytes=64 * 1024)
    logger = structlog.get_logger().bind(user="alice")
    each = _budget.ENTRY_BYTES + len("step") + len("alice")
    with log.context():
        logger.info("step")
        changed = structlog.get_context(logger)
        changed["user"] = "bob"
        changed["body"] = "x" * 1_000_000  # more than the context may hold
        logger.info("step")
        assert buffered_sizes() == [each, each]
        log.error("failed")
    docs = [hostile.loads_strict(line) for line in out.getvalue().splitlines()]
    assert [(d["msg"], d.get("user"), "body" in d) for d in docs[:2]] == [
        ("step", "alice", False),
        ("step", "alice", False),
    ]


class _HashRaises(type):
    def __hash__(cls) -> int:
        raise RuntimeError("no hash")


class _Unhashable(metaclass=_HashRaises):
    pass


@pytest.mark.parametrize("exc_info", [1, "yes", 2.5, True])
@pytest.mark.parametrize("where", ["call", "bound"])
def test_any_true_exc_info_is_the_calls_through_configures_logger(
    exc_info: Any, where: str
) -> None:
    """A true ``exc_info`` of any type given to ``configure()``'s logger means the exception
    handled at the call, buffered as written at once: the flush, with no exception being
    handled, still shows the call's traceback."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    logger = structlog.get_logger()
    if where == "bound":
        logger = logger.bind(exc_info=exc_info)
    with log.context():
        try:
            raise ValueError("the call's")
        except ValueError:
            if where == "bound":
                logger.info("handled")
            else:
                logger.info("handled", exc_info=exc_info)
        log.flush()
    assert "ValueError: the call's" in out.getvalue()


@pytest.mark.parametrize("where", ["event", "call", "bound"])
def test_a_value_whose_class_cannot_be_hashed_never_raises_through_configures_logger(
    where: str,
) -> None:
    """A value whose class's hash raises, as the event, a keyword or a bound value of
    ``configure()``'s logger, never makes the buffered call raise; it is written."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    logger = structlog.get_logger()
    if where == "bound":
        logger = logger.bind(v=_Unhashable())
    with log.context():
        if where == "event":
            logger.info(_Unhashable())
        elif where == "call":
            logger.info("m", v=_Unhashable())
        else:
            logger.info("m")
        log.flush()
    assert len(out.getvalue().splitlines()) == 1
