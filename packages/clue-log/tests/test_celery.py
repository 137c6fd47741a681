"""clue.log.celery in one process (eager tasks); the real worker and broker are exercised
by tests-integration."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from clue import log
from clue.log.testing import capture

FRAMEWORKS = ("celery", "django", "flask", "starlette", "fastapi", "uvicorn", "gunicorn")


def test_importing_clue_log_imports_no_framework() -> None:
    """`import clue.log` imports no web framework, server or task queue."""
    code = (
        "import sys, clue.log\n"
        f"loaded = sorted(set({FRAMEWORKS!r}) & set(sys.modules))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def app() -> Iterator[Any]:
    import celery

    import clue.log.celery

    app = celery.Celery("clue-test", set_as_current=False)
    app.conf.task_always_eager = True
    clue.log.celery.install(task_log_func=log.info)
    yield app
    clue.log.celery.uninstall()


def test_task_context_written_only_on_failure(app: Any) -> None:
    """A task's lines are buffered: a success writes nothing, a failure writes them all
    with the exception, under one request id."""

    @app.task(name="charge")
    def charge(amount: int) -> int:
        log.info("charging", amount=amount)
        if amount < 0:
            raise ValueError("negative amount")
        return amount

    with capture(log.format_json) as logs:
        assert charge.delay(3).get() == 3
        assert logs.entries == []
        result = charge.apply(args=(-1,))
        assert result.failed()
        dicts = logs.dicts()
    assert [d["msg"] for d in dicts] == ["start", "charging", "task failed", "end"]
    assert "negative amount" in str(dicts[2]["err"])
    assert "Traceback" in str(dicts[2].get("exception"))
    assert dicts[3]["level"] == "error"
    assert dicts[3]["celery.state"] == "FAILURE"
    assert {d["celery.task"] for d in dicts} == {"charge"}
    assert len({d["request_id"] for d in dicts}) == 1


def test_uninstall_stops_everything(app: Any) -> None:
    """After uninstall() a task opens no log context: its lines are written at once."""
    import clue.log.celery

    clue.log.celery.uninstall()

    @app.task(name="noisy")
    def noisy() -> None:
        log.info("inside")

    with capture(log.format_json) as logs:
        noisy.apply()
    assert [d["msg"] for d in logs.dicts()] == ["inside"]


def test_publish_headers_carry_trace_and_request_id(app: Any) -> None:
    """The enqueuing side puts the current traceparent and request id in the headers."""
    from celery import signals

    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("t")
    headers: dict[str, Any] = {}
    with log.context(), tracer.start_as_current_span("request") as span:
        log.bind(request_id="req-7")
        signals.before_task_publish.send(sender="x", headers=headers, body=None)
        trace_id = span.get_span_context().trace_id
    assert headers["x-request-id"] == "req-7"
    extracted = trace.get_current_span(propagate.extract(headers)).get_span_context()
    assert extracted.trace_id == trace_id


async def _async_log_func(msg: str, **kv: Any) -> None:
    log.info(msg, **kv)


@pytest.mark.parametrize(
    ("option", "value"),
    [("disable_task_logging", "yes"), ("task_log_func", 42), ("task_log_func", _async_log_func)],
)
def test_bad_options(option: str, value: object) -> None:
    """A malformed option is a ValueError naming it."""
    import clue.log.celery

    with pytest.raises(ValueError, match=option):
        clue.log.celery.install(**{option: value})


def test_task_of_a_sampled_request_is_traced(app: Any) -> None:
    """A task run within a sampled trace is traced: its lines are written as they come,
    with the caller's trace id (an eager task keeps its caller's trace context)."""

    @app.task(name="traced")
    def traced() -> None:
        log.info("inside")

    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("t")
    with capture(log.format_json, funcs=[log.span]) as logs:
        with tracer.start_as_current_span("request") as span:
            traced.delay()
        dicts = logs.dicts()
    assert [d["msg"] for d in dicts] == ["start", "inside", "end"]
    assert {d["trace_id"] for d in dicts} == {f"{span.get_span_context().trace_id:032x}"}


@pytest.mark.parametrize("call", ["apply", "delay", "autoretry"])
def test_eager_task_keeps_its_callers_request_id(app: Any, call: str) -> None:
    """A task run eagerly inside a request (``apply()``, or ``delay()`` with
    ``task_always_eager``) has no message headers: it carries the caller's request id, as
    its retries do; outside any request it gets a fresh one."""

    @app.task(
        name="charge", bind=True, autoretry_for=(KeyError,), max_retries=1, default_retry_delay=0
    )
    def charge(self: Any, fail: str) -> None:
        log.info("charging", attempt=self.request.retries)
        if fail == "key":
            raise KeyError("gateway")
        raise ValueError("declined")

    fail = "key" if call == "autoretry" else "value"
    with capture(log.format_json) as logs:
        with log.context():
            log.bind(request_id="req-11")
            if call == "delay":
                charge.delay(fail)
            else:
                charge.apply(args=(fail,))
        inside = logs.dicts()
        charge.apply(args=("value",))
        outside = logs.dicts()[len(inside) :]
    assert inside
    assert {d["request_id"] for d in inside} == {"req-11"}
    if call == "autoretry":
        assert [d["attempt"] for d in inside if d["msg"] == "charging"] == [0, 1]
    (fresh,) = {d["request_id"] for d in outside}
    assert fresh != "req-11"


@pytest.mark.parametrize("how", ["eager_propagates", "apply_throw"])
def test_failure_propagated_to_the_caller_writes_the_task_context(app: Any, how: str) -> None:
    """With ``task_eager_propagates`` (or ``apply(throw=True)``) Celery re-raises the task's
    exception to the caller without its failure signal: the task's context is written
    all the same, with the exception, and the caller's context is back in place."""

    @app.task(name="charge")
    def charge() -> None:
        log.info("charging")
        raise ValueError("declined")

    app.conf.task_eager_propagates = how == "eager_propagates"

    def run() -> None:
        if how == "eager_propagates":
            charge.delay()
        else:
            charge.apply(throw=True)

    with capture(log.format_json) as logs:
        with log.context():
            log.bind(request_id="req-12")
            with pytest.raises(ValueError, match="declined"):
                run()
            log.info("caller goes on")
        dicts = logs.dicts()
    assert [d["msg"] for d in dicts] == ["start", "charging", "task failed", "end"]
    assert "declined" in str(dicts[2]["err"])
    assert "Traceback" in str(dicts[2].get("exception"))
    assert (dicts[3]["level"], dicts[3]["celery.state"]) == ("error", "FAILURE")
    assert {d["request_id"] for d in dicts} == {"req-12"}


def test_same_task_id_on_two_threads_at_once(app: Any) -> None:
    """A message redelivered while its first delivery still runs (a broker's visibility
    timeout) runs the same task id twice at once on a thread pool: each run keeps its own
    context, and neither leaves one behind on its thread."""
    import threading

    from celery import signals

    import clue.log._context as ctx_module

    @app.task(name="long")
    def task() -> None:
        pass

    both_started = threading.Barrier(2)
    first_ended = threading.Event()
    leftovers: list[object] = []

    def run(first: bool) -> None:
        signals.task_prerun.send(sender=task, task_id="same-id", task=task, args=(), kwargs={})
        log.info("running", first=first)
        both_started.wait(10)
        if not first:
            assert first_ended.wait(10)
        if first:
            signals.task_failure.send(sender=task, task_id="same-id", exception=ValueError("x"))
        state = "FAILURE" if first else "SUCCESS"
        signals.task_postrun.send(sender=task, task_id="same-id", task=task, state=state)
        if first:
            first_ended.set()
        leftovers.append(ctx_module.current.get())

    with capture(log.format_json) as logs:
        threads = [threading.Thread(target=run, args=(first,)) for first in (True, False)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        dicts = logs.dicts()
    assert leftovers == [None, None]
    # Only the failed run's lines are written, its own, once.
    assert [(d["msg"], d.get("first")) for d in dicts] == [
        ("start", None),
        ("running", True),
        ("task failed", None),
        ("end", None),
    ]
    assert dicts[3]["level"] == "error"
