"""``log.buffering_wrapper_class``: the user's own structlog chain, run only for the entries
that are written, with the call's time and context.

The same sequence of calls goes through the same chain twice, once with structlog's own
filtering bound logger and ``TimeStamper`` and once with clue's wrapper class and
``log.TimeStamper`` inside a log context that ends in an error; the clock is frozen per
call in both runs, so the written lines must be equal byte for byte.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import datetime
import io
import logging
import string
import types
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue import log
from clue.log import _structlog_wrapper

from . import hostile

KEYS = st.text(string.ascii_lowercase + "_", min_size=1, max_size=6).filter(
    lambda k: k not in {"event", "timestamp", "level", "self"}
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.floats(allow_nan=False)
)
VALUES = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(KEYS, SCALARS, max_size=2)
)
KWARGS = st.dictionaries(KEYS, VALUES, max_size=4)
# 2000-01-01 .. 2100-01-01, nanoseconds
INSTANTS = st.integers(946_684_800 * 10**9, 4_102_444_800 * 10**9)

CALL = st.one_of(
    st.tuples(
        st.sampled_from(["info", "msg", "warning", "warn", "debug"]),
        st.text(max_size=10),
        KWARGS,
    ),
    st.tuples(st.just("bind"), st.just(""), KWARGS),
    st.tuples(st.just("contextvars"), st.just(""), st.dictionaries(KEYS, SCALARS, max_size=2)),
    st.tuples(st.just("mutate"), st.just(""), st.just({})),
    st.tuples(st.just("exc_info"), st.text(max_size=10), KWARGS),
    # The logger's context changed in place, and ``exc_info=True`` bound while an
    # exception is handled (what a later call renders is the exception it handles).
    st.tuples(st.just("change"), st.just(""), KWARGS),
    st.tuples(st.just("bind exc_info"), st.text(max_size=10), st.just({})),
)


class Counter:
    """A processor that counts the events it sees."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, logger: Any, name: str, event_dict: Any) -> Any:
        self.seen.append(event_dict.get("event"))
        return event_dict


@contextlib.contextmanager
def frozen(clock: list[int]) -> Iterator[None]:
    """structlog's clocks and clue's call time all read ``clock[0]`` (nanoseconds)."""

    class FrozenDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return datetime.datetime.fromtimestamp(clock[0] // 1000 / 1e6, tz)

    fake_datetime = types.SimpleNamespace(
        datetime=FrozenDatetime, timezone=datetime.timezone, timedelta=datetime.timedelta
    )
    fake_time = types.SimpleNamespace(time=lambda: clock[0] / 1e9)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(structlog.processors, "datetime", fake_datetime)
        mp.setattr(structlog.processors, "time", fake_time)
        mp.setattr(_structlog_wrapper, "_time_ns", lambda: clock[0])
        yield


def run(
    calls: list[tuple[str, str, dict[str, Any]]],
    instants: list[int],
    stamper: dict[str, Any],
    base: Any,
    with_clue: bool,
) -> tuple[str, list[str]]:
    """The calls through the chain; returns what was written and what the counter saw."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    out = io.StringIO()
    counter = Counter()
    stamp = (log.TimeStamper if with_clue else structlog.processors.TimeStamper)(**stamper)
    wrapper = (
        base
        if not with_clue
        else log.buffering_wrapper_class(logging.INFO if base is None else base)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            counter,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False, default=repr),
        ],
        wrapper_class=wrapper or structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    clock = [instants[0]]
    logger = structlog.get_logger()
    scope = log.context() if with_clue else contextlib.nullcontext()
    with frozen(clock), scope:
        mutable: list[Any] = []
        for i, (kind, event, kw) in enumerate(calls):
            clock[0] = instants[i % len(instants)]
            if kind == "bind":
                logger = logger.bind(**kw)
            elif kind == "contextvars":
                structlog.contextvars.bind_contextvars(**kw)
            elif kind == "mutate":
                mutable.append(i)
            elif kind == "exc_info":
                try:
                    raise ValueError(i)
                except ValueError:
                    logger.warning(event, exc_info=True, **kw)
            elif kind == "change":
                structlog.get_context(logger).update(kw)
            elif kind == "bind exc_info":
                try:
                    raise KeyError(i)
                except KeyError:
                    logger.bind(exc_info=True).info(event)
            elif base is not None and kind == "debug":
                continue  # a plain BoundLogger does not filter by level
            else:
                getattr(logger, kind)(event, held=mutable, **kw)
        clock[0] += 1000
        logger.error("failed", code=500)
        logger.info("after the error")
    structlog.contextvars.clear_contextvars()
    return out.getvalue(), counter.seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=st.lists(CALL, max_size=8),
    instants=st.lists(INSTANTS, min_size=1, max_size=8),
    stamper=st.sampled_from(
        [
            {"fmt": "iso", "utc": True},
            {"fmt": "iso", "utc": False},
            {"fmt": None},
            {"fmt": "%Y-%m-%d %H:%M:%S.%f", "utc": True},
            {"fmt": "%d/%m/%Y %H:%M", "utc": False, "key": "ts"},
        ]
    ),
    base=st.sampled_from([None, structlog.BoundLogger]),
)
def test_flushed_entries_are_the_chains_own_bytes(
    calls: list[tuple[str, str, dict[str, Any]]],
    instants: list[int],
    stamper: dict[str, Any],
    base: Any,
) -> None:
    """Every written line equals, byte for byte, what the same chain writes without clue
    (bound key/values, context variables, mutable values and timestamps as at the call),
    and every processor of the chain ran once per written line."""
    plain, plain_seen = run(calls, instants, stamper, base, with_clue=False)
    clued, clued_seen = run(calls, instants, stamper, base, with_clue=True)
    assert clued == plain
    assert clued_seen == plain_seen
    assert len(clued_seen) == len(clued.splitlines())


def test_a_successful_context_runs_no_processor() -> None:
    """Inside a log context that ends well, no processor runs and nothing is written."""
    out = io.StringIO()
    counter = Counter()
    structlog.configure(
        processors=[counter, structlog.processors.JSONRenderer()],
        wrapper_class=log.buffering_wrapper_class(),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    logger = structlog.get_logger()
    with log.context():
        for i in range(5):
            logger.info("step %d", i, user="alice")
            logger.bind(i=i).warning("bound")
    assert counter.seen == []
    assert out.getvalue() == ""
    logger.info("outside")  # outside a log context: written at once
    assert counter.seen == ["outside"]


def test_reconfiguration_is_followed() -> None:
    """A logger from ``get_logger()`` runs the chain in force at each call, as without
    clue: calls made before and after ``structlog.configure(processors=...)`` are written
    through their own chains."""

    def chain(tag: str) -> list[Any]:
        def add_tag(logger: Any, name: str, ev: Any) -> Any:
            ev["chain"] = tag
            return ev

        return [add_tag, structlog.processors.JSONRenderer()]

    def scenario(with_clue: bool) -> str:
        structlog.reset_defaults()
        out = io.StringIO()
        wrapper = log.buffering_wrapper_class() if with_clue else None
        kw: dict[str, Any] = {"logger_factory": structlog.PrintLoggerFactory(out)}
        if wrapper is not None:
            kw["wrapper_class"] = wrapper
        structlog.configure(processors=chain("a"), **kw)
        logger = structlog.get_logger()
        scope = log.context() if with_clue else contextlib.nullcontext()
        with scope:
            logger.info("one")
            structlog.configure(processors=chain("b"))
            logger.info("two")
            logger.error("three")
        return out.getvalue()

    assert scenario(with_clue=True) == scenario(with_clue=False)
    assert '"chain": "a"' in scenario(with_clue=True)


def test_capture_logs_sees_every_call() -> None:
    """``structlog.testing.capture_logs()`` captures calls made inside a log context."""
    structlog.configure(wrapper_class=log.buffering_wrapper_class())
    logger = structlog.get_logger()
    with structlog.testing.capture_logs() as captured, log.context():
        logger.info("seen", a=1)
    assert captured == [{"event": "seen", "a": 1, "log_level": "info"}]


def test_shares_the_buffer_with_clue_calls() -> None:
    """structlog calls and ``log.info`` in one context are written in call order."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_text)
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
        wrapper_class=log.buffering_wrapper_class(),
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    logger = structlog.get_logger()
    with log.context():
        logger.info("one")
        log.info("two")
        logger.warning("three")
        log.error("four")
    lines = out.getvalue().splitlines()
    assert [line.split()[0] if line.startswith("event") else "clue" for line in lines] == [
        "event='one'",
        "clue",
        "event='three'",
        "clue",
    ]


@pytest.mark.parametrize("base", ["info", 1.5, True, int, None])
def test_a_bad_base_is_a_value_error(base: Any) -> None:
    """Anything but a level or a structlog bound logger class is a ``ValueError`` naming
    the option."""
    with pytest.raises(ValueError, match="base="):
        log.buffering_wrapper_class(base)


def differential(body: Any, base: Any, processors: list[Any] | None = None) -> tuple[str, str]:
    """What ``body(logger)`` then an error write through the same chain, without clue and
    with clue's wrapper class inside a log context."""
    written = []
    for with_clue in (False, True):
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        out = io.StringIO()
        plain = structlog.make_filtering_bound_logger(base) if isinstance(base, int) else base
        structlog.configure(
            processors=processors
            or [
                structlog.processors.add_log_level,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(default=repr),
            ],
            wrapper_class=log.buffering_wrapper_class(base) if with_clue else plain,
            logger_factory=structlog.PrintLoggerFactory(out),
        )
        logger = structlog.get_logger()
        with log.context() if with_clue else contextlib.nullcontext():
            body(logger)
            logger.error("failed")
        written.append(out.getvalue())
    return written[0], written[1]


STDLIB_CALLS = st.lists(
    st.tuples(
        st.sampled_from(["info", "warning", "warn", "log", "exception", "critical"]),
        st.lists(st.one_of(SCALARS, st.lists(SCALARS, max_size=2)), max_size=3),
        KWARGS,
    ),
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=STDLIB_CALLS)
def test_stdlib_bound_logger_keeps_positional_arguments(
    calls: list[tuple[str, list[Any], dict[str, Any]]],
) -> None:
    """With ``structlog.stdlib.BoundLogger`` as the base, ``%``-style positional arguments
    (kept by structlog as ``positional_args``) are accepted and written as without clue,
    mutable ones as they were at the call."""

    def body(logger: Any) -> None:
        for name, args, kw in copy.deepcopy(calls):
            held: list[Any] = []
            if name == "log":
                logger.log(logging.INFO, "log %s", *args, held=held, **kw)
            else:
                getattr(logger, name)("call %s", *args, held, **kw)
            held.append("later")
            for a in args:
                if isinstance(a, list):
                    a.append("later")

    plain, clued = differential(body, structlog.stdlib.BoundLogger)
    assert clued == plain


def test_stdlib_bound_logger_async_positional_arguments() -> None:
    """``await logger.ainfo("%s", x)`` on a stdlib base neither raises nor loses ``x``."""

    def body(logger: Any) -> None:
        async def calls() -> None:
            await logger.ainfo("a %s", 1, k=1)
            await logger.awarning("b %s %s", 2, 3)

        asyncio.run(calls())

    plain, clued = differential(body, structlog.stdlib.BoundLogger)
    assert clued == plain
    assert '"positional_args": [2, 3]' in clued


@pytest.mark.parametrize("base", [logging.INFO, structlog.BoundLogger])
def test_an_exception_given_as_exc_info_keeps_the_calls_traceback(base: Any) -> None:
    """``exc_info=exc`` renders the traceback the exception had at the call, not the
    longer one it has after being re-raised through more frames before the flush."""

    def body(logger: Any) -> None:
        def inner() -> None:
            raise ValueError("inner")

        def middle() -> None:
            try:
                inner()
            except ValueError as exc:
                logger.info("caught", exc_info=exc)
                raise

        with contextlib.suppress(ValueError):
            middle()

    plain, clued = differential(body, base)
    assert clued == plain
    assert "in body" not in clued.splitlines()[0]


@pytest.mark.parametrize("base", [logging.INFO, structlog.BoundLogger])
@pytest.mark.parametrize("given", ["True", "exception", "tuple", "the call's own"])
def test_exc_info_bound_with_bind_is_the_calls(base: Any, given: str) -> None:
    """``exc_info`` bound with ``bind()`` renders the exception of the call, as a keyword's.

    ``True`` means the exception being handled at the call, not at the flush (where
    another one is handled); an exception keeps the traceback it had then; a call that
    gives ``exc_info`` itself renders its own.
    """

    def body(logger: Any) -> None:
        def inner() -> None:
            raise ValueError("at the call")

        def middle() -> None:
            try:
                inner()
            except ValueError as exc:
                value: Any = {
                    "True": True,
                    "exception": exc,
                    "tuple": (ValueError, exc, exc.__traceback__),
                    "the call's own": True,
                }[given]
                bound = logger.bind(exc_info=value)
                if given == "the call's own":
                    bound.info("caught", exc_info=False)
                else:
                    bound.info("caught")
                raise

        with contextlib.suppress(ValueError):
            middle()

    def error_at_the_flush(logger: Any) -> None:
        body(logger)
        try:
            raise KeyError("at the flush")
        except KeyError:
            logger.error("failed", exc_info=True)

    plain, clued = differential(error_at_the_flush, base)
    assert clued == plain
    first = plain.splitlines()[0]
    assert ("at the call" in first) == (given != "the call's own")
    assert "at the flush" not in first


@pytest.mark.parametrize("base", [logging.INFO, structlog.BoundLogger])
def test_mutable_bound_values_are_the_calls(base: Any) -> None:
    """A mutable value bound with ``bind()`` is written as it was at the call."""

    def body(logger: Any) -> None:
        items: list[int] = []
        tags: dict[str, int] = {}
        bound = logger.bind(items=items, tags=tags, n=1)
        for i in range(3):
            items.append(i)
            tags[str(i)] = i
            bound.info("step")

    plain, clued = differential(body, base)
    assert clued == plain
    assert '"items": [0]' in clued


@pytest.mark.parametrize(
    "base", [logging.INFO, structlog.BoundLogger, structlog.stdlib.BoundLogger]
)
def test_a_context_changed_in_place_after_a_call_is_not_that_calls(base: Any) -> None:
    """A logger's context dict changed in place (``structlog.get_context()``) after a
    buffered call: that call is written with the key/values it had, the later one with
    the changed ones, as structlog writes them at each call."""

    def body(logger: Any) -> None:
        bound = logger.bind(user="alice")
        empty = logger.new()
        bound.info("one", mutable=[1])
        bound.info("two")
        empty.info("three")
        changed = structlog.get_context(bound)
        changed["user"] = "bob"
        structlog.get_context(empty)["user"] = "carol"
        bound.info("four")

    plain, clued = differential(body, base)
    assert clued == plain
    assert [line.count("alice") for line in plain.splitlines()] == [1, 1, 0, 0, 0]


class _Items(list):  # type: ignore[type-arg]
    """A list of the application's own kind."""

    def __repr__(self) -> str:
        return f"Items({list.__repr__(self)})"


class _Tags(dict):  # type: ignore[type-arg]
    """A dict of the application's own kind, with an attribute of its own."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.origin = "app"


SUBCLASSES = [
    collections.OrderedDict,
    lambda: collections.defaultdict(list),
    collections.Counter,
    _Items,
    _Tags,
]


@pytest.mark.parametrize(
    "base", [logging.INFO, structlog.BoundLogger, structlog.stdlib.BoundLogger]
)
@pytest.mark.parametrize(
    "make", SUBCLASSES, ids=["OrderedDict", "defaultdict", "Counter", "list", "dict"]
)
def test_subclasses_of_mutable_containers_are_the_calls(base: Any, make: Any) -> None:
    """A ``defaultdict``, an ``OrderedDict``, a ``Counter`` or a list or dict subclass
    is a list or dict: given as a keyword, bound, as the event or a positional argument,
    it is written as it was at the call, as its own type."""

    def body(logger: Any) -> None:
        value = make()
        logger.info("given", value=value)
        logger.bind(value=value).info("bound")
        logger.info(value)
        if base is not structlog.BoundLogger:  # structlog's generic one takes no arguments
            logger.info("positional %s", value)
        if isinstance(value, list):
            value.append(1)
        else:
            value["later"] = 1

    processors = [
        structlog.processors.add_log_level,
        structlog.dev.ConsoleRenderer(colors=False),
    ]
    plain, clued = differential(body, base, processors)
    assert clued == plain
    assert "later" not in plain
    assert "[1]" not in plain


def test_debug_outside_a_log_context_is_the_chains_own() -> None:
    """Outside a log context a debug call goes through the chain as without clue."""
    written = []
    for wrapper in (
        structlog.make_filtering_bound_logger(logging.DEBUG),
        log.buffering_wrapper_class(logging.DEBUG),
        structlog.stdlib.BoundLogger,
        log.buffering_wrapper_class(structlog.stdlib.BoundLogger),
    ):
        out = io.StringIO()
        structlog.configure(
            processors=[structlog.processors.JSONRenderer()],
            wrapper_class=wrapper,
            logger_factory=structlog.PrintLoggerFactory(out),
        )
        structlog.get_logger().debug("outside", n=1)
        written.append(out.getvalue())
    assert written == ['{"n": 1, "event": "outside"}\n'] * 4


CONTAINERS = st.one_of(
    st.lists(st.integers(), max_size=3).map(lambda xs: xs * 700),
    # A copy of a set iterates its members in an order of its own (README): members whose
    # order does not depend on the table's history.
    st.sets(st.integers(0, 2000), max_size=4).map(lambda xs: xs | set(range(1030))),
    st.dictionaries(KEYS, SCALARS, max_size=3),
    st.binary(max_size=5).map(bytearray),
    st.lists(SCALARS, max_size=3),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(CONTAINERS, min_size=1, max_size=4),
    where=st.sampled_from(["kw", "bound", "event", "arg"]),
    base=st.sampled_from([logging.INFO, structlog.BoundLogger, structlog.stdlib.BoundLogger]),
)
def test_mutable_values_of_any_size_and_type_are_written_whole(
    values: list[Any], where: str, base: Any
) -> None:
    """A list, dict, set or bytearray given to a buffered call (keyword, bound value,
    event, positional argument) is written whole, as its own type, as it was at the
    call, however long it is."""
    if where == "arg" and base is not structlog.stdlib.BoundLogger:
        where = "kw"

    def body(logger: Any) -> None:
        held = copy.deepcopy(values)
        for i, v in enumerate(held):
            if where == "kw":
                logger.info("call", v=v)
            elif where == "bound":
                logger.bind(v=v).info("call")
            elif where == "event":
                logger.info(v)
            else:
                logger.info("call %s", v)
            if isinstance(v, (list, bytearray)):
                v.append(i % 256)
            elif isinstance(v, set):
                v.add(-1)
            else:
                v["later"] = i

    plain, clued = differential(body, base)
    assert clued == plain


def _drop(logger: Any, name: str, event_dict: Any) -> Any:
    raise structlog.DropEvent


@pytest.mark.parametrize(
    "base", [logging.INFO, structlog.BoundLogger, structlog.stdlib.BoundLogger]
)
@pytest.mark.parametrize("in_context", [True, False])
def test_hostile_values_never_make_a_call_raise(base: Any, in_context: bool) -> None:
    """No hostile value, as the event, a keyword, ``err`` or ``exc_info``, makes a call of
    the wrapper class raise when the chain itself would not look at it (it drops every
    event), buffered or not, inside a log context or outside one."""
    structlog.configure(
        processors=[_drop],
        wrapper_class=log.buffering_wrapper_class(base),
        logger_factory=structlog.PrintLoggerFactory(io.StringIO()),
    )
    logger = structlog.get_logger()
    for _, value in hostile.values():
        with log.context() if in_context else contextlib.nullcontext():
            for method in ("info", "warning", "error"):
                getattr(logger, method)(value)
                getattr(logger, method)("event", value=value)
                getattr(logger, method)("event", err=value)
                getattr(logger, method)("event", exc_info=value)
            logger.bind(value=value).info("bound")


METHODS = [
    *("info", "warning", "warn", "msg", "error", "exception", "critical", "fatal"),
    *("log20", "log30", "log40", "ainfo", "awarning", "aerror", "alog20"),
    *("bind", "try_unbind", "new", "contextvars"),
]
EVERY_CALL = st.lists(
    st.tuples(
        st.sampled_from(METHODS),
        st.text("ab ", max_size=4),
        st.lists(st.integers(0, 9), max_size=2),
        st.dictionaries(
            st.sampled_from("xyz"),
            st.one_of(st.integers(), st.lists(st.integers(), max_size=2)),
            max_size=2,
        ),
    ),
    max_size=10,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=EVERY_CALL,
    base=st.sampled_from(
        [logging.INFO, logging.WARNING, logging.ERROR, structlog.stdlib.BoundLogger]
    ),
)
def test_every_method_writes_the_chains_own_bytes(
    calls: list[tuple[str, str, list[int], dict[str, Any]]], base: Any
) -> None:
    """Every method, sync and async (``log(level, ...)``, ``exception``, ``critical``...),
    with ``%`` arguments, flushes in the middle of the sequence, ``bind``/``try_unbind``/
    ``new`` and context variables changed between calls: the same lines as without clue."""
    structlog_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(default=repr),
    ]

    def body(logger: Any) -> None:
        async def calls_made() -> None:
            bound = logger
            for method, event, args, kw in copy.deepcopy(calls):
                fmt = event + " %s" * len(args)
                if method == "bind":
                    bound = bound.bind(**kw)
                elif method == "try_unbind":
                    bound = bound.try_unbind(*kw)
                elif method == "new":
                    bound = bound.new(**kw)
                elif method == "contextvars":
                    structlog.contextvars.bind_contextvars(**kw)
                elif method.startswith("alog"):
                    await bound.alog(int(method[4:]), fmt, *args, **kw)
                elif method.startswith("log"):
                    bound.log(int(method[3:]), fmt, *args, **kw)
                elif hasattr(bound, method):
                    result = getattr(bound, method)(fmt, *args, **kw)
                    if method.startswith("a"):
                        await result
                for v in kw.values():
                    if isinstance(v, list):
                        v.append(99)

        asyncio.run(calls_made())

    plain, clued = differential(body, base, structlog_processors)
    assert clued == plain


@pytest.mark.parametrize(
    "base", [logging.DEBUG, logging.INFO, structlog.stdlib.BoundLogger], ids=repr
)
@pytest.mark.parametrize("later", ["new", "new, then the old logger"])
def test_new_after_a_buffered_call_leaves_that_calls_key_values(base: Any, later: str) -> None:
    """``new()`` clears the logger's context in place in structlog; a call it buffered
    before is still written with the key/values it had at the call."""

    def body(logger: Any) -> None:
        bound = logger.bind(x=0, y="kept")
        bound.info("before new")
        renewed = bound.new(z=1)
        renewed.info("after new")
        if later == "new, then the old logger":
            bound.info("old logger, after new")  # structlog: its context is empty now

    plain, clued = differential(body, base)
    assert '"x": 0' in plain
    assert clued == plain
