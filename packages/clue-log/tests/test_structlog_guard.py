"""clue's bound logger knows, from one flag, whether clue's chain is still the one in force.

structlog's configuration may change in two ways: the configured list is replaced
(``structlog.configure``, ``reset_defaults``, an assignment to the configuration object),
or a list is changed in place (``capture_logs`` does that to whatever list is configured,
and an application may ``append``, ``insert``, slice-assign...). Any sequence of either,
made while loggers cached under ``log.configure()`` are held: the flag must equal the
check it replaces after every step, and every call must run exactly the chain in force,
as a logger built at that moment would.
"""

from __future__ import annotations

import io
import json
from typing import Any

import structlog
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from structlog import _config as structlog_config

from clue import log
from clue.log import _structlog
from clue.log.testing import reset


class Recorder:
    """A user's processor: records each event dict it is given and passes it on."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        if isinstance(event_dict, dict):
            self.events.append(dict(event_dict))
        return event_dict


class ChainChanges(RuleBasedStateMachine):
    """The configured list replaced or changed in place, in any order; calls checked."""

    def __init__(self) -> None:
        super().__init__()
        reset()
        self.out = io.StringIO()
        self.recorders = [Recorder(), Recorder()]
        self.n = 0

    def teardown(self) -> None:
        # The module's list itself may have been changed: clue's processor alone again.
        _structlog.CHAIN[:] = [_structlog.processor]
        reset()

    def items(self) -> st.SearchStrategy[Any]:
        return st.sampled_from([_structlog.processor, *self.recorders])

    @property
    def configured(self) -> list[Any]:
        return structlog.get_config()["processors"]  # type: ignore[no-any-return]

    @initialize()
    def clue_configured(self) -> None:
        log.configure(output=self.out, format=log.format_json)
        self.proxy = structlog.get_logger()
        self.proxy.info("first")  # built and cached here, under clue's chain
        self.bound = self.proxy.bind(user="u")
        self.out.seek(0)
        self.out.truncate()

    @rule()
    def configure_clue_again(self) -> None:
        log.configure(output=self.out, format=log.format_json)

    @rule(data=st.data(), n=st.integers(0, 3))
    def configure_a_new_list(self, data: st.DataObject, n: int) -> None:
        structlog.configure(processors=[data.draw(self.items()) for _ in range(n)])

    @rule()
    def configure_clues_list(self) -> None:
        structlog.configure(processors=_structlog.CHAIN)

    @rule(data=st.data(), n=st.integers(0, 2))
    def assign_the_configuration(self, data: st.DataObject, n: int) -> None:
        structlog_config._CONFIG.default_processors = [data.draw(self.items()) for _ in range(n)]

    @rule()
    def reset_then_user_chain(self) -> None:
        structlog.reset_defaults()
        structlog.configure(
            processors=[self.recorders[0]], logger_factory=structlog.ReturnLoggerFactory()
        )

    @rule(data=st.data())
    def change_in_place(self, data: st.DataObject) -> None:
        lst = self.configured
        item = data.draw(self.items())
        how = data.draw(
            st.sampled_from(
                [
                    "append", "insert", "setitem", "setslice", "delitem", "delslice",
                    "iadd", "imul", "extend", "pop", "remove", "clear", "sort", "reverse",
                ]
            )
        )  # fmt: skip
        i = data.draw(st.integers(-2, 2))
        if how == "append":
            lst.append(item)
        elif how == "insert":
            lst.insert(i, item)
        elif how == "setitem" and lst:
            lst[i % len(lst)] = item
        elif how == "setslice":
            lst[: abs(i)] = [item]
        elif how == "delitem" and lst:
            del lst[i % len(lst)]
        elif how == "delslice":
            del lst[abs(i) :]
        elif how == "iadd":
            lst += [item]
        elif how == "imul":
            lst *= abs(i)
        elif how == "extend":
            lst.extend([item, item])
        elif how == "pop" and lst:
            lst.pop()
        elif how == "remove" and item in lst:
            lst.remove(item)
        elif how == "clear":
            lst.clear()
        elif how == "sort":
            lst.sort(key=id)
        elif how == "reverse":
            lst.reverse()

    @rule(logger=st.sampled_from(["proxy", "bound"]))
    def call_inside_capture_logs(self, logger: str) -> None:
        self.n += 1
        with structlog.testing.capture_logs() as captured:
            assert not _structlog._ours
            getattr(self, logger).warning(f"c{self.n}")
        assert [e["event"] for e in captured] == [f"c{self.n}"]

    @invariant()
    def the_flag_is_the_check(self) -> None:
        chain = self.configured
        assert _structlog._ours == (
            chain is _structlog.CHAIN and list(chain) == [_structlog.processor]
        )

    @invariant()
    def calls_run_the_chain_in_force(self) -> None:
        for logger, bound in ((self.proxy, {}), (self.bound, {"user": "u"})):
            self.n += 1
            msg = f"m{self.n}"
            # What the chain in force does: recorders see the event dict until clue's
            # processor writes it and hands on an empty string.
            expect_clue = False
            expect = [len(r.events) for r in self.recorders]
            for p in list(self.configured):
                if p is _structlog.processor:
                    expect_clue = True
                    break
                expect[self.recorders.index(p)] += 1
            before = self.out.getvalue()
            logger.info(msg, n=self.n)
            written = self.out.getvalue()[len(before) :]
            if expect_clue:
                doc = json.loads(written)
                assert doc["msg"] == msg
                assert {k: doc[k] for k in bound} == bound
            else:
                assert written == ""
            assert [len(r.events) for r in self.recorders] == expect
            for r, count in zip(self.recorders, expect, strict=True):
                if count and r.events[-1].get("event") == msg:
                    assert {k: r.events[-1][k] for k in bound} == bound


ChainChanges.TestCase.settings = settings(max_examples=80, stateful_step_count=25, deadline=None)
test_any_change_of_the_chain_is_seen = ChainChanges.TestCase


def test_clues_processor_after_a_renderer_or_given_odd_keys_never_raises() -> None:
    """A rendered line reaching clue's processor is the message; a non-string key is text."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    _structlog.CHAIN.insert(0, structlog.processors.KeyValueRenderer(key_order=["event"]))
    logger = structlog.get_logger()
    logger.info("rendered", a=1)
    del _structlog.CHAIN[0]
    _structlog.CHAIN.insert(0, lambda _, __, event_dict: {**event_dict, 7: "seven"})
    logger.info("odd key")
    del _structlog.CHAIN[0]
    logger.info("alone again")
    docs = [json.loads(x) for x in out.getvalue().splitlines()]
    assert docs[0]["msg"] == "event='rendered' a=1"
    assert (docs[1]["msg"], docs[1]["7"]) == ("odd key", "seven")
    assert docs[2]["msg"] == "alone again"
