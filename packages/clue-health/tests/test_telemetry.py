"""Every ping is a client span; failures are logged; telemetry faults change nothing."""

from __future__ import annotations

import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from structlog.testing import capture_logs

from clue.health import Checker


def test_each_ping_is_a_client_span_named_after_the_dependency(pingers, spans):
    """One CLIENT span health.ping.<name> per ping, child of the caller's span."""
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("probe") as parent:
        Checker(pingers.sync("db"), pingers.aio("cache"), cache_ttl=0).check()
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert set(finished) == {"probe", "health.ping.db", "health.ping.cache"}
    for name in ("health.ping.db", "health.ping.cache"):
        span = finished[name]
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.status.status_code is StatusCode.UNSET


def test_a_failed_ping_span_has_error_status_and_the_exception(pingers, spans):
    """A failing ping's span has ERROR status and records the exception raised."""
    Checker(pingers.sync("db", error=ConnectionError("refused")), cache_ttl=0).check()
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert "refused" in (span.status.description or "")
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ConnectionError"


def test_a_hung_ping_span_ends_at_the_timeout(pingers, spans):
    """The span of a hung ping is ended with ERROR when the check gives up on it."""
    Checker(pingers.sync("hung", block=True), timeout=0.05, cache_ttl=0).check()
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert "timed out" in (span.status.description or "")
    assert span.end_time is not None
    assert span.start_time is not None
    assert (span.end_time - span.start_time) / 1e9 < 0.5


async def test_the_ping_span_is_current_inside_an_async_ping(spans):
    """Inside ping() the current span is the ping's span (so clients propagate it)."""
    seen = []

    class Probe:
        name = "probe"

        async def ping(self) -> None:
            seen.append(trace.get_current_span().get_span_context().span_id)

    await Checker(Probe(), cache_ttl=0).acheck()
    (span,) = spans.get_finished_spans()
    assert seen == [span.context.span_id]


def test_failures_are_logged_with_the_dependency_name(pingers):
    """Each failed ping logs an error naming the dependency and the reason."""
    with capture_logs() as logs:
        Checker(
            pingers.sync("db", error=OSError("refused")), pingers.sync("ok"), cache_ttl=0
        ).check()
    assert logs == [
        {
            "event": "health ping failed",
            "dependency": "db",
            "err": "OSError: refused",
            "log_level": "error",
        }
    ]


def test_timeouts_are_logged(pingers):
    """A ping given up on at its timeout is logged as timed out."""
    with capture_logs() as logs:
        Checker(pingers.sync("hung", block=True), timeout=0.05, cache_ttl=0).check()
    assert [(e["dependency"], e["err"]) for e in logs] == [("hung", "timed out after 0.05s")]


def test_a_broken_logging_setup_does_not_break_the_check(pingers):
    """A structlog processor that raises never reaches the health check."""

    def explode(logger, method, event_dict):  # type: ignore[no-untyped-def]
        raise RuntimeError("logging is broken")

    old = structlog.get_config()
    structlog.configure(processors=[explode])
    try:
        report, ok = Checker(pingers.sync("db", error=OSError("x")), cache_ttl=0).check()
    finally:
        structlog.configure(**old)
    assert not ok
    assert report.status["db"] == "NOT OK"


def test_a_broken_tracer_does_not_break_the_check(pingers, monkeypatch):
    """A tracer whose start_span raises leaves the check working, without spans."""

    class BrokenTracer:
        def start_span(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("sdk is broken")

    monkeypatch.setattr(trace, "get_tracer", lambda *a, **k: BrokenTracer())
    report, _ok = Checker(
        pingers.sync("db"), pingers.sync("bad", error=OSError()), cache_ttl=0
    ).check()
    assert dict(report.status) == {"db": "OK", "bad": "NOT OK"}
