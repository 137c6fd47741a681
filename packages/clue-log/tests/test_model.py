"""A model-based test of clue-log: a small reference model predicts exactly which entries
are written, in which order, with which key/values, while the rules drive the real library
through every entry point (clue's functions, structlog's configured bound logger, sync and
async, the stdlib bridge), nested contexts, binds, flushes, sampled and unsampled spans,
debug switched on and off, child tasks and copied contexts that bind and log."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
from dataclasses import dataclass, field
from typing import Any

import structlog
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from clue import log
from clue.log._control import LOG_CONTROL
from clue.log._entry import Entry
from clue.log.testing import reset

Pair = tuple[str, Any]
Expected = tuple[str, list[Pair]]

SAMPLED = TracerProvider(sampler=ALWAYS_ON).get_tracer("model")
UNSAMPLED = TracerProvider(sampler=ALWAYS_OFF).get_tracer("model")
STD = log.as_std_logger("model")

VIAS = ("clue", "structlog", "structlog-async", "stdlib")
# Weighted towards what buffers, so that buffers fill before something writes them.
LEVELS = ("debug", "info", "info", "warn", "warn", "error", "print")
SEVERITY = {"debug": "debug", "info": "info", "warn": "warn", "error": "error", "print": "info"}
STRUCTLOG_NAMES = {"debug": "debug", "info": "info", "warn": "warning", "error": "error"}

values = st.one_of(st.integers(-3, 3), st.sampled_from(["x", "y", ""]))
call_kv = st.dictionaries(st.sampled_from(["k0", "k1"]), values, max_size=2)
bind_kv = st.dictionaries(st.sampled_from(["b0", "b1", "b2"]), values, min_size=1, max_size=2)
sl_bound = st.dictionaries(st.sampled_from(["s0", "s1"]), values, max_size=2)
switch = st.sampled_from([None, True, False])


@dataclass
class MContext:
    """The model of one log context: its switches and its buffer (None: unbuffered)."""

    debug: bool | None
    disable: bool | None
    buf: list[Expected] | None = field(default_factory=list)
    dropped: int = 0  # entries pushed out of the buffer by ``max_buffered``


@dataclass
class Frame:
    """One open ``with`` block: a log context, or a debug scope."""

    cm: contextlib.AbstractContextManager[Any]
    ctx: MContext
    saved_bound: tuple[Pair, ...] | None  # bound key/values to restore on exit (contexts)
    saved_debug: bool | None = None  # debug scope on an existing context: value to restore


@settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
class LogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        reset()
        self.written: list[Entry] = []
        self.expected: list[Expected] = []
        self.global_debug = False
        self.frames: list[Frame] = []
        self.spans: list[tuple[contextlib.AbstractContextManager[Any], bool]] = []
        self.bound: tuple[Pair, ...] = ()  # the test thread's current bound key/values
        self.n = 0
        self.max_buffered = 1000
        self._configure()

    def _configure(self) -> None:
        def record(entry: Entry) -> str:
            self.written.append(entry)
            return ""

        log.configure(
            outputs=[(io.StringIO(), record)],
            debug=self.global_debug,
            max_buffered=self.max_buffered,
        )

    def teardown(self) -> None:
        while self.frames:
            self.frames.pop().cm.__exit__(None, None, None)
        while self.spans:
            self.spans.pop()[0].__exit__(None, None, None)
        reset()

    # --- the reference model --------------------------------------------------------

    def ctx(self) -> MContext | None:
        return self.frames[-1].ctx if self.frames else None

    def debug_on(self, ctx: MContext | None) -> bool:
        if ctx is None or ctx.debug is None:
            return self.global_debug
        return ctx.debug

    def sampled(self) -> bool:
        return bool(self.spans) and self.spans[-1][1]

    def write_buffer(self, ctx: MContext) -> None:
        if ctx.buf:
            if ctx.dropped:
                text = f"clue/log: {ctx.dropped} earlier entries dropped (buffer bounds)"
                self.expected.append(("warn", [("msg", text), ("clue.dropped", ctx.dropped)]))
            self.expected.extend(ctx.buf)
            ctx.buf.clear()
        ctx.dropped = 0

    def model_log(
        self,
        level: str,
        msg: str,
        bound: tuple[Pair, ...],
        kv: list[Pair],
        err: str | None,
        outside: bool = False,
    ) -> None:
        ctx = None if outside else self.ctx()
        pairs = ([("err", err)] if err is not None else []) + [*bound, ("msg", msg), *kv]
        entry = (SEVERITY[level], _once(pairs))
        if level == "debug" and not self.debug_on(ctx):
            return
        if ctx is None or level == "print":
            self.expected.append(entry)
        elif level == "error":
            self.write_buffer(ctx)
            ctx.buf = None
            self.expected.append(entry)
        elif ctx.buf is None:
            self.expected.append(entry)
        elif self.debug_on(ctx) or (ctx.disable is None and self.sampled() and not outside):
            self.write_buffer(ctx)
            self.expected.append(entry)
        else:
            ctx.buf.append(entry)
            if len(ctx.buf) > self.max_buffered:
                del ctx.buf[0]
                ctx.dropped += 1

    def next_msg(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    # --- driving the library --------------------------------------------------------

    @staticmethod
    def call(via: str, level: str, msg: str, kv: dict[str, Any], err: str | None, sb: Any) -> None:
        """Log through one entry point; ``sb`` is what a structlog logger has bound."""
        if via == "clue" or level == "print":
            fn = getattr(log, level)
            if err is not None:
                fn(msg, err=err, **kv)
            else:
                fn(msg, **kv)
        elif via.startswith("structlog"):
            logger = structlog.get_logger().bind(**sb)
            extra = {"err": err} if err is not None else {}
            if via == "structlog":
                getattr(logger, STRUCTLOG_NAMES[level])(msg, **extra, **kv)
            else:
                asyncio.run(getattr(logger, "a" + STRUCTLOG_NAMES[level])(msg, **extra, **kv))
        else:
            std_level = {"debug": 10, "info": 20, "warn": 30, "error": 40}[level]
            extra = {"err": err} if err is not None else {}
            STD.log(std_level, msg, extra={**extra, **kv})

    @staticmethod
    def model_kv(via: str, level: str, kv: dict[str, Any], sb: dict[str, Any]) -> list[Pair]:
        if via == "clue" or level == "print":
            return list(kv.items())
        if via.startswith("structlog"):
            return [*sb.items(), *kv.items()]
        return [("logger", "model"), *kv.items()]

    @rule(
        via=st.sampled_from(VIAS),
        level=st.sampled_from(LEVELS),
        kv=call_kv,
        sb=sl_bound,
        with_err=st.booleans(),
    )
    def log_entry(
        self, via: str, level: str, kv: dict[str, Any], sb: dict[str, Any], with_err: bool
    ) -> None:
        msg = self.next_msg(via + "-")
        err = f"E{self.n}" if with_err and level == "error" else None
        self.call(via, level, msg, kv, err, sb)
        self.model_log(level, msg, self.bound, self.model_kv(via, level, kv, sb), err)

    @rule(
        via=st.sampled_from(VIAS),
        level=st.sampled_from(LEVELS),
        kv=call_kv,
        sb=sl_bound,
    )
    def log_outside(self, via: str, level: str, kv: dict[str, Any], sb: dict[str, Any]) -> None:
        """Outside any log context (a fresh ``contextvars.Context``) entries are written."""
        msg = self.next_msg("outside-")
        contextvars.Context().run(self.call, via, level, msg, kv, None, sb)
        self.model_log(level, msg, (), self.model_kv(via, level, kv, sb), None, outside=True)

    @rule(kv=bind_kv)
    def bind(self, kv: dict[str, Any]) -> None:
        log.bind(**kv)
        self.bound = (*self.bound, *kv.items())

    @initialize(max_buffered=st.sampled_from([1, 2, 3, 1000]))
    def request(self, max_buffered: int) -> None:
        """Every run starts inside a log context, as a request does, with a small
        ``max_buffered`` in most runs so the oldest entries are dropped and counted."""
        self.max_buffered = max_buffered
        self._configure()
        self.open_context(None, None)

    @rule(debug=switch, disable=switch)
    def nested_context(self, debug: bool | None, disable: bool | None) -> None:
        self.open_context(debug, disable)

    def open_context(self, debug: bool | None, disable: bool | None) -> None:
        cm = log.context(debug=debug, disable_buffering=disable)
        cm.__enter__()
        parent = self.ctx()
        if parent is not None:
            debug = parent.debug if debug is None else debug
            disable = parent.disable if disable is None else disable
        ctx = MContext(debug, disable)
        if self.debug_on(ctx) or disable is True:
            ctx.buf = None
        self.frames.append(Frame(cm, ctx, self.bound))

    @rule(action=st.sampled_from(["debug-scope", "flush", "global-debug-on", "global-debug-off"]))
    def switch(self, action: str) -> None:
        """Something that writes or unbuffers: debug switched on, a flush, global debug."""
        if action == "debug-scope":
            self.debug_scope_on()
        elif action == "flush":
            self.flush()
        else:
            self.global_debug = action == "global-debug-on"
            self._configure()

    def debug_scope_on(self) -> None:
        cm = LOG_CONTROL.debug_scope()
        cm.__enter__()
        ctx = self.ctx()
        if ctx is None:
            self.frames.append(Frame(cm, MContext(True, None, None), self.bound))
            return
        self.write_buffer(ctx)
        ctx.buf = None
        self.frames.append(Frame(cm, ctx, None, ctx.debug))
        ctx.debug = True

    @precondition(lambda self: len(self.frames) > 1)
    @rule()
    def close(self) -> None:
        frame = self.frames.pop()
        frame.cm.__exit__(None, None, None)
        if frame.saved_bound is not None:
            self.bound = frame.saved_bound
        else:
            frame.ctx.debug = frame.saved_debug

    def flush(self) -> None:
        log.flush()
        ctx = self.ctx()
        if ctx is not None:
            self.write_buffer(ctx)
            ctx.buf = None

    @rule(sampled=st.booleans())
    def span_on(self, sampled: bool) -> None:
        cm = (SAMPLED if sampled else UNSAMPLED).start_as_current_span("s")
        cm.__enter__()
        self.spans.append((cm, sampled))

    @precondition(lambda self: bool(self.spans))
    @rule()
    def span_off(self) -> None:
        self.spans.pop()[0].__exit__(None, None, None)

    @rule(
        children=st.lists(
            st.tuples(bind_kv, st.sampled_from(["info", "warn", "error"]), st.booleans()),
            min_size=1,
            max_size=3,
        )
    )
    def child_tasks(self, children: list[tuple[dict[str, Any], str, bool]]) -> None:
        """Children bind, yield to each other, then log; the parent logs after them."""
        msgs = [self.next_msg("child-") for _ in children]
        after = self.next_msg("parent-")

        async def child(i: int, kv: dict[str, Any], level: str) -> None:
            log.bind(**kv)
            await asyncio.sleep(0)
            getattr(log, level)(msgs[i])

        async def main() -> None:
            calls = []
            for i, (kv, level, endpoint) in enumerate(children):
                fn = log.endpoint("svc", f"m{i}")(child) if endpoint else child
                calls.append(fn(i, kv, level))
            await asyncio.gather(*calls)
            log.info(after)

        asyncio.run(main())
        for i, (kv, level, endpoint) in enumerate(children):
            names = [("service", "svc"), ("method", f"m{i}")] if endpoint else []
            self.model_log(level, msgs[i], (*self.bound, *names, *kv.items()), [], None)
        self.model_log("info", after, self.bound, [], None)

    @rule(kv=bind_kv, level=st.sampled_from(["debug", "info", "error"]))
    def copied_context(self, kv: dict[str, Any], level: str) -> None:
        msg = self.next_msg("copied-")

        def run() -> None:
            log.bind(**kv)
            getattr(log, level)(msg)

        contextvars.copy_context().run(run)
        self.model_log(level, msg, (*self.bound, *kv.items()), [], None)

    @invariant()
    def written_as_predicted(self) -> None:
        got = [(e.severity, list(e.key_vals)) for e in self.written]
        assert got == self.expected


TestLogModel = LogModel.TestCase


def _once(pairs: list[Pair]) -> list[Pair]:
    """A key given twice is written once, where it first appears, with its last value."""
    last = dict(pairs)
    seen: set[str] = set()
    out: list[Pair] = []
    for key, _ in pairs:
        if key not in seen:
            seen.add(key)
            out.append((key, last[key]))
    return out
