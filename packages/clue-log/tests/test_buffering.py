"""The buffering model: SPEC §3.3 semantics 1-5."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry import trace

from clue import log
from clue.log.testing import CapturedLogs

from .conftest import JsonOut


def test_successful_context_writes_nothing(out: JsonOut) -> None:
    """A context that ends without an error discards its buffered entries."""
    with log.context():
        log.info("one")
        log.warn("two")
        log.debug("three")
    assert out.getvalue() == ""


def test_outside_context_writes_immediately(out: JsonOut) -> None:
    """Outside any log context every call writes at once."""
    log.info("startup", port=8080)
    log.warn("careful")
    assert out.msgs() == ["startup", "careful"]
    assert out.docs()[0]["level"] == "info"
    assert out.docs()[1]["level"] == "warn"


def test_error_flushes_buffer_first_in_order(out: JsonOut) -> None:
    """error writes the buffered entries first, in order, then the error entry."""
    with log.context():
        log.info("a")
        log.warn("b")
        log.info("c")
        assert out.getvalue() == ""
        log.error("boom")
    assert out.msgs() == ["a", "b", "c", "boom"]
    assert [d["level"] for d in out.docs()] == ["info", "warn", "info", "error"]


def test_after_error_context_is_unbuffered(out: JsonOut) -> None:
    """Once an error was logged, later calls in that context write immediately."""
    with log.context():
        log.error("boom")
        log.info("after")
        assert out.msgs() == ["boom", "after"]


def test_buffered_entries_keep_call_timestamps(
    out: JsonOut, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A buffered entry keeps the time of its call, not the time of the flush."""
    from clue.log import _api

    clock = iter([1_700_000_000_000_000_000, 1_700_000_042_500_000_000])
    monkeypatch.setattr(_api, "_time_ns", lambda: next(clock))
    captured: list[log.Entry] = []

    def fmt(entry: log.Entry) -> str:
        captured.append(entry)
        return "x\n"

    log.configure(output=out, format=fmt)
    with log.context():
        log.info("early")
        log.error("late")
    early, late = captured
    assert early.time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert early.time.tzinfo is UTC
    assert late.time_ns - early.time_ns == 42_500_000_000


def test_flush_twice_never_duplicates(out: JsonOut) -> None:
    """Flushing twice (flush then error) writes each entry exactly once."""
    with log.context():
        log.info("a")
        log.flush()
        log.flush()
        log.error("b")
        log.flush()
    assert out.msgs() == ["a", "b"]


def test_flush_only_writes_own_context(out: JsonOut) -> None:
    """A flush in one context never writes another context's entries."""
    with log.context():
        log.info("outer")
        with log.context():
            log.info("inner")
            log.error("inner failed")
        assert out.msgs() == ["inner", "inner failed"]
    assert "outer" not in out.msgs()


def test_nested_context_inherits_bound_values_but_not_buffer(out: JsonOut) -> None:
    """A nested context starts with the parent's bound key/values and a fresh buffer."""
    with log.context():
        log.bind(request_id="r1")
        log.info("parent entry")
        with log.context():
            log.bind(step="inner")
            log.error("inner error")
        docs = out.docs()
        assert [d["msg"] for d in docs] == ["inner error"]
        assert docs[0]["request_id"] == "r1"
        assert docs[0]["step"] == "inner"
        log.error("outer error")
    docs = out.docs()
    assert [d["msg"] for d in docs] == ["inner error", "parent entry", "outer error"]
    assert "step" not in docs[2]


def test_context_reset_on_exit() -> None:
    """Leaving a context restores the previous one (None at top level)."""
    from clue.log._context import current

    assert current.get() is None
    with log.context() as outer:
        with log.context() as inner:
            assert current.get() is inner
        assert current.get() is outer
    assert current.get() is None


def test_context_reset_on_exception() -> None:
    """An exception leaving the block still resets the context."""
    from clue.log._context import current

    with pytest.raises(RuntimeError), log.context():
        raise RuntimeError("x")
    assert current.get() is None


def test_bound_values_snapshot_at_call_time(out: JsonOut) -> None:
    """A buffered entry carries what was bound when it was logged, not at flush."""
    with log.context():
        log.bind(step=1)
        log.info("first")
        log.bind(step=2)
        log.error("second")
    docs = out.docs()
    assert [d.get("step") for d in docs] == [1, 2]  # bind appends: last value wins in JSON


def test_container_values_are_snapshotted(out: JsonOut) -> None:
    """A list or dict mutated after the call shows what it held when logged."""
    items = [1, 2]
    meta = {"a": 1}
    with log.context():
        log.info("logged", items=items, meta=meta)
        log.info("positional", log.KV("items", items), log.Fields({"meta": meta}))
        items.append(3)
        meta["b"] = 2
        log.error("done")
    first, second, _ = out.docs()
    assert first["items"] == [1, 2]
    assert first["meta"] == {"a": 1}
    assert second["items"] == [1, 2]
    assert second["meta"] == {"a": 1}


def test_exc_info_captured_at_call_time(out: JsonOut) -> None:
    """exc_info=True in a buffered call captures the exception being handled then."""
    with log.context():
        try:
            raise ValueError("the original")
        except ValueError:
            log.warn("handled", exc_info=True)
        log.error("later")
    doc = out.docs()[0]
    assert "ValueError: the original" in doc["exception"]
    assert "Traceback" in doc["exception"]


def test_sampled_span_disables_buffering(out: JsonOut, sampled_tracer: trace.Tracer) -> None:
    """With a sampled current span nothing is buffered."""
    with log.context(), sampled_tracer.start_as_current_span("req"):
        assert log.is_tracing()
        log.info("traced")
        assert out.msgs() == ["traced"]


def test_unsampled_span_keeps_buffering(out: JsonOut, unsampled_tracer: trace.Tracer) -> None:
    """An unsampled span does not disable buffering."""
    with log.context(), unsampled_tracer.start_as_current_span("req"):
        assert not log.is_tracing()
        log.info("not traced")
    assert out.getvalue() == ""


def test_span_becoming_current_mid_request_counts(
    out: JsonOut, sampled_tracer: trace.Tracer
) -> None:
    """The tracing check is per entry: a span made current mid-request applies at once,
    and what was buffered before it is written first, in order."""
    with log.context():
        log.info("before span")
        with sampled_tracer.start_as_current_span("late"):
            log.info("inside span")
        log.info("after span")
    assert out.msgs() == ["before span", "inside span"]


def test_custom_disable_buffering_predicate(out: JsonOut) -> None:
    """A custom disable_buffering predicate is consulted on every call."""
    flag = {"on": False}
    log.configure(output=out, format=log.format_json, disable_buffering=lambda: flag["on"])
    with log.context():
        log.info("buffered")
        flag["on"] = True
        log.info("written")
    assert out.msgs() == ["buffered", "written"]


def test_raising_predicate_keeps_buffering(out: JsonOut) -> None:
    """A predicate that raises is treated as false and never raises into the app."""

    def broken() -> bool:
        raise RuntimeError("predicate bug")

    log.configure(output=out, format=log.format_json, disable_buffering=broken)
    with log.context():
        log.info("kept")
    assert out.getvalue() == ""


def test_debug_dropped_unless_enabled(out: JsonOut) -> None:
    """debug entries are dropped (not even buffered) unless debug is on."""
    with log.context():
        log.debug("hidden")
        assert not log.debug_enabled()
        log.error("boom")
    assert out.msgs() == ["boom"]


def test_debug_context_writes_and_unbuffers(out: JsonOut) -> None:
    """Debug on for a context writes debug entries and disables buffering for it only."""
    with log.context(debug=True):
        assert log.debug_enabled()
        log.debug("dbg")
        log.info("info")
        with log.context(debug=False):
            log.info("other request")
    assert out.msgs() == ["dbg", "info"]
    with log.context():
        log.debug("not this one")
    assert out.msgs() == ["dbg", "info"]


def test_nested_context_inherits_debug(out: JsonOut) -> None:
    """A context opened inside a debug context has debug on unless told otherwise."""
    with log.context(debug=True), log.context():
        assert log.debug_enabled()
        log.debug("inherited")
    assert out.msgs() == ["inherited"]


def test_global_debug(out: JsonOut) -> None:
    """configure(debug=True) writes debug entries everywhere, unbuffered."""
    log.configure(output=out, format=log.format_json, debug=True)
    with log.context():
        log.debug("d")
        log.info("i")
    log.debug("outside")
    assert out.msgs() == ["d", "i", "outside"]


def test_disable_buffering_override(out: JsonOut) -> None:
    """log.context(disable_buffering=True) writes every entry at once."""
    with log.context(disable_buffering=True):
        log.info("now")
        assert out.msgs() == ["now"]


def test_max_buffered_caps_and_counts_drops(out: JsonOut) -> None:
    """Past max_buffered the oldest entries are dropped; the flush says exactly how many."""
    log.configure(output=out, format=log.format_json, max_buffered=5)
    with log.context():
        for i in range(12):
            log.info("n", i=i)
        log.error("boom")
    docs = out.docs()
    assert docs[0]["clue.dropped"] == 7
    assert "7 earlier entries dropped" in str(docs[0]["msg"])
    assert [d.get("i") for d in docs[1:6]] == [7, 8, 9, 10, 11]
    assert docs[-1]["msg"] == "boom"


def test_million_lines_stay_within_cap() -> None:
    """A context that logs many lines holds at most max_buffered entries."""
    with log.context() as ctx:
        for i in range(200_000):
            log.info("spam", i=i)
        assert ctx.req.buf is not None
        assert len(ctx.req.buf) == 1000
        assert ctx.req.appended == 200_000


def test_print_is_never_buffered(out: JsonOut) -> None:
    """print writes at once at info severity, even inside a buffering context."""
    with log.context():
        log.info("buffered")
        log.print("now")
        assert out.msgs() == ["now"]
        assert out.docs()[0]["level"] == "info"


def test_error_err_first_key_and_traceback(clue_logs: CapturedLogs) -> None:
    """err becomes the first key; an exception's traceback is captured and kept whole."""
    try:
        raise KeyError("missing-" + "x" * 50)
    except KeyError as exc:
        with log.context():
            log.error("lookup failed", err=exc, table="users")
    entry = clue_logs.entries[0]
    assert entry.key_vals[0][0] == log.ERROR_MESSAGE_KEY
    kv = dict(entry.key_vals)
    assert kv["msg"] == "lookup failed"
    assert "Traceback (most recent call last)" in kv["exception"]
    assert "test_buffering.py" in kv["exception"]


def test_traceback_not_truncated() -> None:
    """Exception tracebacks are not cut by max_size."""
    from clue.log.testing import capture

    with capture(max_size=10) as logs:
        try:
            raise ValueError("v" * 100)
        except ValueError as exc:
            log.error("x", err=exc)
    line = logs.lines[0]
    assert "v" * 100 in line


def test_error_with_string_err(out: JsonOut) -> None:
    """err may be a plain string."""
    log.error("failed", err="card declined")
    assert out.docs()[0]["err"] == "card declined"
    assert list(out.docs()[0])[:3] == ["time", "level", "err"]


def test_fatal_exits_with_status_1(out: JsonOut) -> None:
    """fatal writes the error (flushing) and exits with status 1."""
    with log.context():
        log.info("context")
        with pytest.raises(SystemExit) as info:
            log.fatal("cannot continue")
    assert info.value.code == 1
    assert out.msgs() == ["context", "cannot continue"]


def test_positional_kv_fields_and_percent_args(out: JsonOut) -> None:
    """Message functions accept %-args, KV and Fields mixed with keywords."""
    log.print("user %s did %d things", "alice", 3, log.KV("a", 1), log.Fields({"b": 2}), c=3)
    doc = out.docs()[0]
    assert doc["msg"] == "user alice did 3 things"
    assert [k for k in doc if k not in ("time", "level")] == ["msg", "a", "b", "c"]


def test_kv_message_like_seed(out: JsonOut) -> None:
    """A KV as the first argument is a key/value, as in the seed's log.Print(ctx, KV{...})."""
    log.print(log.KV("event", "startup"), log.KV("port", 8080))
    doc = out.docs()[0]
    assert doc["event"] == "startup"
    assert doc["port"] == 8080
    assert "msg" not in doc


def test_bad_percent_format_still_logs(out: JsonOut) -> None:
    """A %-format mismatch does not raise; the arguments are still written."""
    log.print("%d items", "not a number")
    assert out.docs()[0]["msg"] == "%d items not a number"


def test_bind_outside_context_is_process_wide(out: JsonOut) -> None:
    """Key/values bound outside any context apply to later contexts too."""
    log.bind(service="orders")
    with log.context():
        log.error("x")
    assert out.docs()[0]["service"] == "orders"


def test_bind_kv_and_fields(out: JsonOut) -> None:
    """bind accepts KV and Fields positionally."""
    with log.context():
        log.bind(log.KV("a", 1), log.Fields({"b": 2}), c=3)
        log.error("x")
    doc = out.docs()[0]
    assert (doc["a"], doc["b"], doc["c"]) == (1, 2, 3)


def test_funcs_span_captured_at_call_time(out: JsonOut, unsampled_tracer: trace.Tracer) -> None:
    """log.span adds the ids of the span current at call time, even for buffered entries."""
    log.configure(output=out, format=log.format_json, funcs=[log.span])
    with log.context():
        with unsampled_tracer.start_as_current_span("first") as first:
            log.info("in first")
        with unsampled_tracer.start_as_current_span("second"):
            log.error("in second")
    docs = out.docs()
    sc = first.get_span_context()
    assert docs[0]["trace_id"] == format(sc.trace_id, "032x")
    assert docs[0]["span_id"] == format(sc.span_id, "016x")
    assert docs[1]["span_id"] != docs[0]["span_id"]


def test_failing_func_adds_nothing(out: JsonOut) -> None:
    """A key/value function that raises adds nothing and never raises."""

    def broken() -> list[tuple[str, object]]:
        raise RuntimeError("bug")

    log.configure(output=out, format=log.format_json, funcs=[broken, lambda: {"x": 1}])
    log.print("still logged")
    assert out.docs()[0]["x"] == 1


def test_file_location_of_user_call_site(out: JsonOut) -> None:
    """file_location adds <dir>/<file>.py:<line> of the caller, for buffered calls too."""
    log.configure(output=out, format=log.format_json, file_location=True)
    with log.context():
        line = _lineno() + 1
        log.info("here")
        log.error("boom")
    doc = out.docs()[0]
    assert doc["file"] == f"tests/test_buffering.py:{line}"


def _lineno() -> int:
    import sys

    return sys._getframe(1).f_lineno


def test_context_as_decorator(out: JsonOut) -> None:
    """log.context() decorates functions; each call gets its own context."""

    @log.context()
    def handler(fail: bool) -> None:
        log.info("working")
        if fail:
            log.error("failed")

    handler(False)
    handler(True)
    assert out.msgs() == ["working", "failed"]


async def test_context_as_async_decorator(out: JsonOut) -> None:
    """log.context() decorates coroutine functions too."""

    @log.context(debug=True)
    async def handler() -> bool:
        return log.debug_enabled()

    assert await handler()
    assert not log.debug_enabled()


def test_error_records_exception_event_on_span(sampled_tracer: trace.Tracer) -> None:
    """log.error adds an exception event to the current recording span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("req"):
        log.error("bad", err=ValueError("nope"))
    with tracer.start_as_current_span("req2"):
        log.error("bad string")
    spans = exporter.get_finished_spans()
    assert [e.name for e in spans[0].events] == ["exception"]
    assert spans[0].events[0].attributes["exception.type"] == "ValueError"
    assert spans[1].events[0].attributes["exception.message"] == "bad string"


def test_context_around_a_yield_closed_elsewhere_never_raises(out: JsonOut) -> None:
    """A generator whose ``with log.context()`` is closed in another thread, or an async
    generator finalized by the event loop, ends its context without raising."""

    def gen() -> Iterator[int]:
        with log.context():
            log.info("inside the generator")
            yield 1

    g = gen()
    next(g)
    raised: list[BaseException] = []

    def close() -> None:
        try:
            g.close()
        except BaseException as exc:  # the assertion below reports it
            raised.append(exc)

    closer = threading.Thread(target=close)
    closer.start()
    closer.join()
    assert raised == []

    async def agen() -> AsyncIterator[int]:
        with log.context():
            log.info("inside the async generator")
            yield 1

    loop_errors: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, c: loop_errors.append(c))
        async for _ in agen():
            break  # left suspended: the loop finalizes it in another task

    asyncio.run(main())
    assert loop_errors == []
    assert out.getvalue() == ""
