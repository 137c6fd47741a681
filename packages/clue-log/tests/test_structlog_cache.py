"""``log.configure()`` turns on structlog's logger cache; reconfiguring still takes effect.

The oracle: a logger obtained before any number of reconfigurations (a module-level
``structlog.get_logger()`` proxy, cached on first use, or a logger bound from it) must send
each call exactly where a logger built fresh, right now, without any cache, sends it.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import structlog
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from clue import log
from clue.log.testing import reset


class Recorder:
    """A user's processor: records each event and drops it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        self.events.append(dict(event_dict))
        raise structlog.DropEvent


class Reconfiguring(RuleBasedStateMachine):
    """Loggers made at any point, configuration changed at any point, calls checked.

    Each logger is modelled by the chain it is held to: ``None`` when it follows the
    configuration in force (a proxy, or a logger bound while clue's chain was in force),
    else the recorder of the user's chain it was bound under (structlog's own semantics:
    a bound logger keeps the chain it was built with).
    """

    def __init__(self) -> None:
        super().__init__()
        reset()
        self.clue_out = io.StringIO()
        self.recorder = Recorder()
        self.loggers: list[tuple[Any, dict[str, Any], Recorder | None]] = []
        self.n = 0

    def teardown(self) -> None:
        reset()

    def in_force(self) -> Recorder | None:
        chain = structlog.get_config()["processors"]
        return self.recorder if self.recorder in chain else None

    @initialize()
    def clue_first(self) -> None:
        self.configure_clue()
        self.get_logger()

    @rule()
    def configure_clue(self) -> None:
        self.clue_out = io.StringIO()
        log.configure(output=self.clue_out, format=log.format_json)

    @rule(whole=st.booleans())
    def configure_user_chain(self, whole: bool) -> None:
        # ``whole``: the user's own wrapper class too, or only the processors (clue's
        # wrapper class stays configured).
        self.recorder = Recorder()
        extra: dict[str, Any] = {"cache_logger_on_first_use": False}
        if whole:
            extra["wrapper_class"] = structlog.make_filtering_bound_logger(logging.DEBUG)
            extra["logger_factory"] = structlog.ReturnLoggerFactory()
        structlog.configure(processors=[self.recorder], **extra)

    @rule()
    def reset_structlog_then_user_chain(self) -> None:
        structlog.reset_defaults()
        self.recorder = Recorder()
        structlog.configure(
            processors=[self.recorder], logger_factory=structlog.ReturnLoggerFactory()
        )

    @rule()
    def get_logger(self) -> None:
        self.loggers.append((structlog.get_logger(), {}, None))

    @rule(data=st.data(), key=st.sampled_from(["component", "user", "request_id"]))
    def bind(self, data: st.DataObject, key: str) -> None:
        logger, bound, held = data.draw(st.sampled_from(self.loggers))
        self.n += 1
        held = held or self.in_force()
        self.loggers.append((logger.bind(**{key: self.n}), {**bound, key: self.n}, held))

    def expect(
        self, logger: Any, bound: dict[str, Any], held: Recorder | None, method: str
    ) -> None:
        self.n += 1
        msg = f"m{self.n}"
        target = held or self.in_force()
        before_clue = self.clue_out.getvalue()
        before_user = len(target.events) if target else 0
        getattr(logger, method)(msg)
        if target is None:
            # clue's chain in force: outside a context every call is written at once.
            after = self.clue_out.getvalue()
            assert after.startswith(before_clue)
            written = json.loads(after[len(before_clue) :])
            assert written["msg"] == msg
            assert {k: written[k] for k in bound} == bound
        else:
            assert self.clue_out.getvalue() == before_clue
            assert len(target.events) == before_user + 1
            event = target.events[-1]
            assert event["event"] == msg
            assert {k: event[k] for k in bound} == bound

    @rule(
        data=st.data(),
        method=st.sampled_from(["info", "warning", "error", "critical", "msg", "exception"]),
    )
    def call(self, data: st.DataObject, method: str) -> None:
        self.expect(*data.draw(st.sampled_from(self.loggers)), method)

    @rule(data=st.data())
    def call_inside_capture_logs(self, data: st.DataObject) -> None:
        logger, bound, held = data.draw(st.sampled_from(self.loggers))
        if held is not None:
            return
        self.n += 1
        with structlog.testing.capture_logs() as captured:
            logger.warning(f"c{self.n}")
        assert [e["event"] for e in captured] == [f"c{self.n}"]
        assert {k: captured[0][k] for k in bound} == bound

    @invariant()
    def fresh_logger_agrees(self) -> None:
        # A logger built now, uncached, goes where the configuration says: the reference
        # the cached ones are held to.
        self.expect(structlog.wrap_logger(None, cache_logger_on_first_use=False), {}, None, "info")


Reconfiguring.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_reconfiguring_reaches_cached_loggers = Reconfiguring.TestCase


def test_configure_caches_the_module_level_proxy() -> None:
    """After ``log.configure()``, a proxy builds its bound logger once, not on every call."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    proxy = structlog.get_logger()
    first = proxy.bind()
    proxy.info("a")
    assert proxy.bind() is first
    # The proxy's methods are the cached logger's own: no per-call resolution left.
    assert vars(proxy)["info"].__self__ is first
    assert [json.loads(x)["msg"] for x in out.getvalue().splitlines()] == ["a"]


def test_capture_logs_sees_a_cached_logger() -> None:
    """structlog's ``capture_logs`` still captures a logger cached under clue's chain."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    logger = structlog.get_logger()
    logger.info("before")
    with structlog.testing.capture_logs() as captured:
        logger.bind(user="alice").warning("captured")
    logger.info("after")
    assert captured == [{"event": "captured", "user": "alice", "log_level": "warning"}]
    assert [json.loads(x)["msg"] for x in out.getvalue().splitlines()] == ["before", "after"]
