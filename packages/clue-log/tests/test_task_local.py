"""Bound key/values are the task's, the buffer is the request's; explicit per-context
switches win over the global defaults; the buffer is written first when buffering stops."""

from __future__ import annotations

import asyncio
import contextvars

from opentelemetry import trace

from clue import log
from clue.log._control import LOG_CONTROL

from .conftest import JsonOut


async def test_gather_children_bind_only_for_themselves(out: JsonOut) -> None:
    """Two gathered children that bind see only their own keys, and the parent sees
    neither afterwards; all entries share the request's buffer and are flushed together."""

    async def child(name: str) -> None:
        log.bind(child=name)
        await asyncio.sleep(0)  # let the sibling bind in between
        log.info("in child")

    with log.context():
        log.bind(request="r1")
        await asyncio.gather(child("a"), child("b"))
        log.info("parent after")
        assert out.getvalue() == ""
        log.error("failed")
    docs = out.docs()
    assert [(d["msg"], d.get("child")) for d in docs] == [
        ("in child", "a"),
        ("in child", "b"),
        ("parent after", None),
        ("failed", None),
    ]
    assert all(d["request"] == "r1" for d in docs)


async def test_endpoint_on_concurrent_coroutines_keeps_names_apart(out: JsonOut) -> None:
    """``@log.endpoint`` on concurrently awaited coroutines: each entry carries its own
    coroutine's service and method."""

    @log.endpoint("orders", "create")
    async def create() -> None:
        await asyncio.sleep(0)
        log.info("creating")

    @log.endpoint("billing", "charge")
    async def charge() -> None:
        await asyncio.sleep(0)
        log.info("charging")

    with log.context():
        await asyncio.gather(create(), charge())
        log.flush()
    names = {d["msg"]: (d["service"], d["method"]) for d in out.docs()}
    assert names == {"creating": ("orders", "create"), "charging": ("billing", "charge")}


def test_bind_in_copied_context_does_not_leak_back(out: JsonOut) -> None:
    """A bind inside ``copy_context().run`` stays there; its entry joins the buffer."""
    with log.context():
        contextvars.copy_context().run(lambda: (log.bind(job="j1"), log.info("copied")))
        log.info("after")
        log.flush()
    assert [(d["msg"], d.get("job")) for d in out.docs()] == [("copied", "j1"), ("after", None)]


def test_explicit_debug_false_wins_over_global_debug(out: JsonOut) -> None:
    """``log.context(debug=False)`` under ``configure(debug=True)`` drops debug entries and
    buffers."""
    log.configure(output=out, format=log.format_json, debug=True)
    with log.context(debug=False):
        assert not log.debug_enabled()
        log.debug("dropped")
        log.info("buffered")
    assert out.getvalue() == ""


def test_explicit_disable_buffering_false_wins_over_predicate(out: JsonOut) -> None:
    """``log.context(disable_buffering=False)`` buffers even when the configured predicate
    says not to."""
    log.configure(output=out, format=log.format_json, disable_buffering=lambda: True)
    with log.context(disable_buffering=False):
        log.info("buffered")
    assert out.getvalue() == ""
    with log.context():
        log.info("written")
    assert out.msgs() == ["written"]


def test_debug_switched_on_mid_request_writes_buffer_first(out: JsonOut) -> None:
    """Debug switched on mid-request (clue-debug's scope) writes the buffer first, in
    order, then every later entry."""
    with log.context():
        log.info("one")
        log.info("two")
        with LOG_CONTROL.debug_scope():
            log.debug("three")
        log.info("four")
    assert out.msgs() == ["one", "two", "three", "four"]


def test_global_debug_on_mid_request_writes_buffer_first(out: JsonOut) -> None:
    """``configure(debug=True)`` mid-request: the buffered entries come out first."""
    with log.context():
        log.info("one")
        log.configure(output=out, format=log.format_json, debug=True)
        log.debug("two")
    assert out.msgs() == ["one", "two"]


def test_sampled_span_mid_request_through_structlog_chain(
    sampled_tracer: trace.Tracer,
) -> None:
    """In a hand-built chain, an event under a sampled span follows the buffered ones."""
    import io
    import json

    import structlog

    out = io.StringIO()
    structlog.configure(
        processors=[log.BufferingProcessor(), structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    logger = structlog.get_logger()
    with log.context():
        logger.info("one")
        with sampled_tracer.start_as_current_span("late"):
            logger.info("two")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["one", "two"]


async def test_debug_scope_stays_in_its_own_task(out: JsonOut) -> None:
    """A debug scope (one debugged stream message) never turns debug on for a sibling
    task logging in the same context at the same time, nor outlives its block."""
    entered = asyncio.Event()
    sibling_done = asyncio.Event()

    async def debugged() -> None:
        with LOG_CONTROL.debug_scope():
            entered.set()
            log.debug("debugged")
            assert LOG_CONTROL.debug_enabled()
            await sibling_done.wait()
        assert not LOG_CONTROL.debug_enabled()
        log.debug("after the scope")

    async def sibling() -> None:
        await entered.wait()
        assert not LOG_CONTROL.debug_enabled()
        log.debug("sibling")
        sibling_done.set()

    with log.context():
        await asyncio.gather(debugged(), sibling())
        log.debug("parent")
    assert out.msgs() == ["debugged"]
