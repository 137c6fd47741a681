"""The memory bounds of buffering, against a reference model: per-context entries and
estimated bytes, the process-wide budget, exact dropped counts, and everything given back."""

from __future__ import annotations

import contextvars
import gc
import io
import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from clue import log
from clue.log import _budget, _metrics
from clue.log._context import current
from clue.log.testing import reset

CAP = 6  # max_buffered
PER = 3 * _budget.GRANT  # max_buffered_bytes
TOTAL = 5 * _budget.GRANT  # max_total_buffered_bytes


def estimate(msg: str | None, values: list[Any]) -> int:
    """The README's rule, written plainly: 256 bytes for the entry, the message and every
    string or bytes value by its length, a list or tuple by 56 bytes and 8 an item,
    numbers, booleans and None nothing more."""
    total = _budget.ENTRY_BYTES + (len(msg) if msg is not None else 0)
    for v in values:
        if isinstance(v, (str, bytes)):
            total += len(v)
        elif isinstance(v, (list, tuple)):
            total += 56 + 8 * len(v)
    return total


# What a call may carry besides its payload: the values the buffered call tells apart, and
# a list (a mutable value: the call's other path, which copies it).
VALUE = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.tuples(st.integers(), st.integers()),
    st.lists(st.integers(), max_size=5),
)
MESSAGE = st.none() | st.text(max_size=300)
# The payload's length: large enough, often, to pass the byte bounds.
PAYLOAD = st.integers(0, 2 * _budget.GRANT) | st.integers(0, 300)

G = _budget.GRANT


@dataclass
class ModelContext:
    """What one open context holds in the model: its entries' sizes and its tokens."""

    sizes: list[int] = field(default_factory=list)
    units: int = 0
    dropped: int = 0

    @property
    def quota(self) -> int:
        return min(self.units * G, PER)


class Model:
    """The budget's policy written plainly: a pool of TOTAL // G tokens; a context takes
    one as it opens, and when an entry would pass what it holds, enough for the entry and
    at least double what it had, up to its own bound and what the pool has left; past
    that it drops its own oldest (or the new entry alone when it could not fit alone)."""

    def __init__(self) -> None:
        self.contexts: dict[int, ModelContext] = {}

    def left(self) -> int:
        return TOTAL // G - sum(c.units for c in self.contexts.values())

    def reserved(self) -> int:
        return sum(c.units for c in self.contexts.values()) * G

    def open(self, cid: int) -> None:
        self.contexts[cid] = ModelContext(units=1 if self.left() else 0)

    def append(self, cid: int, s: int) -> None:
        c = self.contexts[cid]
        need = sum(c.sizes) + s
        if need > c.quota and c.units * G < PER:
            want = min(max(-(-need // G), 2 * c.units), -(-PER // G))
            c.units += min(want - c.units, self.left())
        if s > c.quota:
            c.dropped += 1
            return
        while sum(c.sizes) + s > c.quota or len(c.sizes) >= CAP:
            c.sizes.pop(0)
            c.dropped += 1
        c.sizes.append(s)


class Real:
    """One open log context in its own ``contextvars.Context``."""

    def __init__(self) -> None:
        self.ctx = contextvars.copy_context()
        self.cm = log.context()
        self.ctx.run(self.cm.__enter__)

    def info(self, msg: str | None, values: list[Any]) -> None:
        self.ctx.run(lambda: log.info(msg, **{f"v{i}": v for i, v in enumerate(values)}))

    def flush(self) -> None:
        self.ctx.run(log.flush)

    def close(self) -> None:
        self.ctx.run(self.cm.__exit__, None, None, None)


def written(out: io.StringIO) -> tuple[int, int]:
    """(entries, dropped count in markers) written so far, then forgotten."""
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    out.seek(0)
    out.truncate()
    dropped = sum(int(d.get("clue.dropped", 0)) for d in lines)
    return sum(1 for d in lines if "clue.dropped" not in d), dropped


def booked() -> tuple[int, int, int, int, int]:
    """What the metrics count so far: contexts written/discarded, entries
    written/discarded/dropped."""
    _metrics.fold()
    t = _metrics.totals
    return (
        t.contexts_written,
        t.contexts_discarded,
        t.entries_written,
        t.entries_discarded,
        t.entries_dropped,
    )


class BudgetMachine(RuleBasedStateMachine):
    """Open, append to and end several contexts, with calls of every kind of value: each
    entry's estimate is the README's, the real buffers agree with the model at every
    step, every drop is counted exactly, and the budget returns to zero."""

    contexts = Bundle("contexts")

    def __init__(self) -> None:
        super().__init__()
        reset()
        # A fresh pool and metrics epoch, as in a new process: a context that an earlier
        # failing example left referenced (by its traceback) neither holds tokens of this
        # pool nor counts in this example's metrics.
        _budget.reset_after_fork(None)
        self.out = io.StringIO()
        log.configure(
            output=self.out,
            format=log.format_json,
            max_buffered=CAP,
            max_buffered_bytes=PER,
            max_total_buffered_bytes=TOTAL,
        )
        self.model = Model()
        self.real: dict[int, Real] = {}
        self.next_id = 0
        self.start = booked()
        self.expected = [0, 0, 0, 0, 0]

    @rule(target=contexts)
    def open(self) -> int:
        cid = self.next_id
        self.next_id += 1
        self.real[cid] = Real()
        self.model.open(cid)
        return cid

    @rule(cid=contexts, msg=MESSAGE, values=st.lists(VALUE, max_size=3), n=PAYLOAD)
    def append(self, cid: int, msg: str | None, values: list[Any], n: int) -> None:
        if cid not in self.real:
            return
        values = [*values, "x" * n]
        self.real[cid].info(msg, values)
        self.model.append(cid, estimate(msg, values))

    @rule(cid=contexts, count=st.integers(1, 2 * CAP), msg=st.text(max_size=20))
    def burst(self, cid: int, count: int, msg: str) -> None:
        """Small calls in a row: the buffer fills by count before it fills by bytes."""
        if cid not in self.real:
            return
        for i in range(count):
            self.real[cid].info(msg, [i])
            self.model.append(cid, estimate(msg, [i]))

    @rule(cid=consumes(contexts), flush=st.booleans())
    def end(self, cid: int, flush: bool) -> None:
        if cid not in self.real:
            return
        real = self.real.pop(cid)
        c = self.model.contexts.pop(cid)
        if flush:
            real.flush()
            assert written(self.out) == (
                len(c.sizes),
                c.dropped,
            )  # the marker even when none was kept
            self.expected[0] += 1
            self.expected[2] += len(c.sizes)
        else:
            self.expected[1] += 1
            self.expected[3] += len(c.sizes)
        self.expected[4] += c.dropped
        real.close()
        del real  # the context's last reference: it has ended
        assert written(self.out) == (0, 0)  # a context that ends writes nothing more

    @invariant()
    def agrees(self) -> None:
        for cid, real in self.real.items():
            c = self.model.contexts[cid]
            req = real.ctx.run(current.get).req  # type: ignore[union-attr]
            assert req.buf is not None
            assert [_budget.record_size(r) for r in req.buf] == c.sizes
            assert req.lost == c.dropped  # every drop counted as it happens
            assert req.units == c.units
            # The hot path's counter stays exact: what the context may still buffer,
            # at most ENTRY_BYTES a free slot (so it runs out when full by count).
            assert req.limit - req.room - req.aside == sum(c.sizes)
            assert req.room < (CAP - len(c.sizes) + 1) * _budget.ENTRY_BYTES
        assert _budget.held() == self.model.reserved() <= TOTAL
        got = booked()
        assert [g - s for g, s in zip(got, self.start, strict=True)] == self.expected

    def teardown(self) -> None:
        # What ending gives back is checked after every ``end`` (``agrees``); here a
        # failing step's traceback may still hold a context, so nothing is asserted.
        for cid in list(self.real):
            self.real.pop(cid).close()
        gc.collect()
        reset()


TestBudgetMachine = BudgetMachine.TestCase
TestBudgetMachine.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)


def test_a_huge_value_is_dropped_alone_with_its_count() -> None:
    """An entry larger than a context may hold is dropped, counted in the marker, and the
    entries around it are kept."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json, max_buffered_bytes=64 * 1024)
    with log.context():
        log.info("before")
        log.info("payload", body=b"\0" * (10 * 1024 * 1024))
        log.info("after")
        log.error("failed")
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["msg"] for d in docs][1:] == ["before", "after", "failed"]
    assert docs[0]["clue.dropped"] == 1


HUGE = 10 * 1024 * 1024
CARRIERS: dict[str, Any] = {
    "keyword": lambda v: log.info("payload", body=v),
    "KV": lambda v: log.info("payload", log.KV("body", v)),
    "Fields": lambda v: log.info("payload", log.Fields({"body": v, "n": 1})),
    "mapping": lambda v: log.info("payload %s", 1, {"body": v}),
    "KV message": lambda v: log.info(log.KV("body", v)),
    "Fields message": lambda v: log.info(log.Fields({"body": v})),
    "message": lambda v: log.info(v),
    "argument": lambda v: log.info("payload %s", v),
}


class _Zero(str):
    def __len__(self) -> int:
        return 0


class _ZeroBytes(bytes):
    def __len__(self) -> int:
        return 0


class _ZeroList(list[Any]):
    def __len__(self) -> int:
        return 0


@pytest.mark.parametrize(
    "value",
    [
        "x" * HUGE,
        b"\0" * HUGE,
        _Zero("x" * HUGE),
        _ZeroBytes(b"\0" * HUGE),
        _ZeroList(range(HUGE // 8)),
    ],
    ids=["str", "bytes", "str whose len is 0", "bytes whose len is 0", "list whose len is 0"],
)
@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_a_huge_value_is_dropped_alone_however_it_is_given(carrier: str, value: Any) -> None:
    """A string or bytes value counts by its length (and a container by its items), whether
    it is a keyword, the value of a positional ``KV`` or ``Fields`` (or of one given as the
    message), the message itself or a ``%`` argument, and whatever its own ``__len__`` says:
    larger than the context may hold, it is dropped alone."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json, max_buffered_bytes=64 * 1024)
    with log.context():
        log.info("before")
        CARRIERS[carrier](value)
        log.info("after")
        log.error("failed")
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert docs[0]["clue.dropped"] == 1
    assert [d["msg"] for d in docs][1:] == ["before", "after", "failed"]


def test_every_path_out_of_a_context_gives_its_reservation_back() -> None:
    """Flush, discard, an exception, a generator closed early, a cancelled task: the
    process-wide total returns to zero."""
    import asyncio

    log.configure(output=io.StringIO())

    def fill() -> None:
        for _ in range(50):
            log.info("step", payload="y" * 500)

    with log.context():
        fill()
        assert _budget.held() > 0
        log.flush()
        assert _budget.held() == 0
    with log.context():
        fill()

    def fails() -> None:
        with log.context():
            fill()
            raise KeyError("x")

    with pytest.raises(KeyError):
        fails()

    @log.context()
    def gen() -> Any:
        fill()
        yield 1
        yield 2

    g = gen()
    next(g)
    assert _budget.held() > 0
    g.close()
    del g

    async def main() -> None:
        started = asyncio.Event()

        async def task() -> None:
            with log.context():
                fill()
                started.set()
                await asyncio.Event().wait()

        t = asyncio.ensure_future(task())
        await started.wait()
        assert _budget.held() > 0
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    asyncio.run(main())
    gc.collect()
    assert _budget.held() == 0


BOUNDS = ["max_buffered", "max_buffered_bytes", "max_total_buffered_bytes"]


@pytest.mark.parametrize("name", BOUNDS)
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "1", None])
def test_bad_bounds_are_refused_by_name(name: str, value: object) -> None:
    """A bound that is not a positive int is a ValueError naming the option."""
    with pytest.raises(ValueError, match=re.escape(name)):
        log.configure(**{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("entry_point", ["configure", "wrapper_class", "processor"])
def test_structlog_calls_keep_to_the_byte_bound(entry_point: str) -> None:
    """A buffered structlog call is bounded like ``log.info``: through ``configure()``'s
    logger, the wrapper class and ``BufferingProcessor``, a payload larger than the
    context may hold is dropped and counted, the entries around it kept."""
    import structlog

    out = io.StringIO()
    log.configure(output=out, format=log.format_json, max_buffered_bytes=64 * 1024)
    if entry_point == "wrapper_class":
        structlog.configure(
            processors=[structlog.processors.JSONRenderer()],
            wrapper_class=log.buffering_wrapper_class(),
            logger_factory=structlog.PrintLoggerFactory(out),
        )
    elif entry_point == "processor":
        structlog.configure(
            processors=[log.BufferingProcessor(), structlog.processors.JSONRenderer()],
            logger_factory=structlog.PrintLoggerFactory(out),
        )
    logger = structlog.get_logger()
    try:
        with log.context():
            logger.info("before")
            logger.info("payload", body="x" * (1024 * 1024))
            logger.info("after")
            logger.error("failed")
    finally:
        structlog.reset_defaults()
    text = out.getvalue()
    assert "x" * 1024 not in text
    for msg in ('"before"', '"after"', '"failed"'):
        assert msg in text
    assert "1 earlier entries dropped" in text
    assert _budget.held() == 0


class _ReprRaises(int):
    def __repr__(self) -> str:
        raise RuntimeError("repr")


@pytest.mark.parametrize("name", ["max_size", *BOUNDS])
@pytest.mark.parametrize(
    "value",
    [sys.maxsize + 1, 2**70, 10**5000, -(10**5000), _ReprRaises(0)],
    ids=["maxsize+1", "2**70", "10**5000", "-10**5000", "repr-raises"],
)
def test_a_bound_the_interpreter_cannot_hold_is_refused_by_name(name: str, value: int) -> None:
    """A bound too large for a count the interpreter holds (``max_buffered=2**63`` made every
    context fail to open), or one too large to be shown in a message, is a ValueError naming
    the option; the configuration before it stays, and logging goes on."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    with pytest.raises(ValueError, match=re.escape(name)):
        log.configure(output=out, **{name: value})  # type: ignore[arg-type]
    with log.context():
        log.info("kept")
        log.error("failed")
    assert [json.loads(line)["msg"] for line in out.getvalue().splitlines()] == ["kept", "failed"]
    assert _budget.held() == 0


def test_the_largest_accepted_entry_bound_opens_contexts() -> None:
    """``max_buffered=sys.maxsize`` is accepted and a context under it buffers as usual."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json, max_buffered=sys.maxsize)
    with log.context():
        log.info("kept")
        log.error("failed")
    assert len(out.getvalue().splitlines()) == 2


def test_a_large_total_bound_costs_no_memory_up_front(tmp_path: Path) -> None:
    """``max_total_buffered_bytes`` of 1 PiB (a bound meant never to bind) is accepted by
    ``configure()``, and configuring and logging under it fit in a 1 GiB address space."""
    script = tmp_path / "large_total.py"
    script.write_text(
        textwrap.dedent(
            """
            import io, resource
            resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
            from clue import log
            out = io.StringIO()
            log.configure(output=out, max_total_buffered_bytes=1 << 50)
            with log.context():
                log.info("kept", body="x" * 10_000)
                log.error("failed")
            assert len(out.getvalue().splitlines()) == 2
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("end", ["error", "flush"])
def test_a_context_that_kept_nothing_still_says_how_many_it_dropped(end: str) -> None:
    """When other open contexts hold the whole process-wide budget, a context drops every
    entry it buffers; written, it still starts with the ``warn`` marker and its exact count
    (it had none: the marker was dated by the first entry kept)."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json, max_total_buffered_bytes=2 * _budget.GRANT)
    hog = contextvars.copy_context()
    holder = log.context()

    def fill() -> None:
        holder.__enter__()
        for _ in range(30):
            log.info("hog", body="y" * 500)

    hog.run(fill)
    try:
        with log.context():
            for i in range(5):
                log.info("starved", i=i, body="y" * 500)
            if end == "error":
                log.error("failed")
            else:
                log.flush()
    finally:
        hog.run(holder.__exit__, None, None, None)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert docs[0]["level"] == "warn"
    assert docs[0]["clue.dropped"] == 5
    assert [d["msg"] for d in docs[1:]] == (["failed"] if end == "error" else [])
    assert _budget.held() == 0


@pytest.mark.parametrize("entry_point", ["wrapper_class", "processor"])
def test_the_dropped_marker_goes_where_a_chains_entries_go(entry_point: str) -> None:
    """With your own structlog chain, the ``warn`` marker of what a context dropped is
    written through that chain to its logger, before the entries kept — not to clue's
    output, where none of the entries it counts go."""
    import structlog

    clue_out, chain_out = io.StringIO(), io.StringIO()
    log.configure(output=clue_out, format=log.format_json, max_buffered=3)
    first: list[Any] = (
        [structlog.processors.add_log_level]
        if entry_point == "wrapper_class"
        else [structlog.processors.add_log_level, log.BufferingProcessor()]
    )
    structlog.configure(
        processors=[*first, structlog.processors.JSONRenderer()],
        wrapper_class=log.buffering_wrapper_class() if entry_point == "wrapper_class" else None,
        logger_factory=structlog.PrintLoggerFactory(chain_out),
    )
    logger = structlog.get_logger()
    try:
        with log.context():
            for i in range(10):
                logger.info("step", i=i)
            logger.error("failed")
    finally:
        structlog.reset_defaults()
    assert clue_out.getvalue() == ""
    docs = [json.loads(line) for line in chain_out.getvalue().splitlines()]
    assert (docs[0]["level"], docs[0]["clue.dropped"]) == ("warning", 7)
    assert [d.get("i") for d in docs[1:]] == [7, 8, 9, None]
    assert docs[-1]["event"] == "failed"


def test_a_new_total_bound_counts_what_open_contexts_hold() -> None:
    """Lowering ``max_total_buffered_bytes`` while contexts are open: they keep what they
    hold, ``clue.log.buffered.bytes`` still counts it, and all open contexts together stay
    within the new bound as soon as what they hold is given back."""
    log.configure(output=io.StringIO(), max_total_buffered_bytes=16 * _budget.GRANT)
    holders = [log.context() for _ in range(4)]

    def fill(holder: Any) -> None:
        holder.__enter__()
        for _ in range(8):
            log.info("held", body="x" * 1500)

    for holder in holders:
        contextvars.copy_context().run(fill, holder)
    held = _budget.held()
    assert held > 8 * _budget.GRANT
    log.configure(output=io.StringIO(), max_total_buffered_bytes=8 * _budget.GRANT)
    try:
        assert _budget.held() == held
        with log.context():
            for _ in range(40):
                log.info("new", body="x" * 1500)
            assert _budget.held() <= max(held, 8 * _budget.GRANT)
    finally:
        holders.clear()
        gc.collect()


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.text(), st.binary()),
        max_size=6,
    ),
    exc_info=st.booleans(),
)
def test_plain_values_are_estimated_inline(values: list[Any], exc_info: bool) -> None:
    """A buffered call whose values are numbers, booleans, None, strings or bytes is
    estimated and buffered inline, never through the call's slow path; ``exc_info=True``
    beside them takes the slow path (it is resolved at the call)."""
    from clue.log import _api

    slow: list[Any] = []
    real_slow = _api._buffer_slow

    def spy(*args: Any) -> bool:
        slow.append(args)
        return real_slow(*args)

    log.configure(output=io.StringIO())
    kv: dict[str, Any] = {f"v{i}": v for i, v in enumerate(values)}
    if exc_info:
        kv["exc_info"] = True
    _api._buffer_slow = spy  # type: ignore[assignment]
    try:
        with log.context() as ctx:
            log.info("m", **kv)
            assert ctx.req.buf is not None
            (rec,) = ctx.req.buf
    finally:
        _api._buffer_slow = real_slow  # type: ignore[assignment]
    assert len(slow) == (1 if exc_info else 0)
    if not exc_info:
        assert _budget.record_size(rec) == estimate("m", values)
