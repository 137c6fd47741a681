"""new_pinger against real local HTTP dependencies."""

from __future__ import annotations

import math
import time

import pytest
import requests
from opentelemetry import trace

from clue.health import Checker, HTTPPinger, PingError, new_pinger


@pytest.mark.parametrize(
    ("mode", "status"), [("200", "OK"), ("204", "OK"), ("503", "NOT OK"), ("301", "NOT OK")]
)
def test_only_2xx_is_healthy(dependency, mode, status):
    """A dependency is OK when its endpoint answers 2xx; 503 or a redirect is NOT OK."""
    dependency.mode = mode
    report, _ = Checker(new_pinger("dep", dependency.addr), cache_ttl=0).check()
    assert report.status["dep"] == status


def test_a_non_2xx_answer_raises_ping_error(dependency):
    """ping() raises PingError naming the URL and the status."""
    dependency.mode = "503"
    pinger = new_pinger("dep", dependency.addr)
    with pytest.raises(PingError, match=r"/livez answered 503"):
        pinger.ping()


def test_a_hung_dependency_is_not_ok_within_the_timeout(dependency):
    """A dependency that accepts and never answers is NOT OK after the checker's timeout."""
    dependency.mode = "hang"
    checker = Checker(new_pinger("dep", dependency.addr), timeout=0.2, cache_ttl=0)
    t0 = time.monotonic()
    report, ok = checker.check()
    assert time.monotonic() - t0 < 0.7
    assert not ok
    assert report.status["dep"] == "NOT OK"


def test_a_reset_connection_is_not_ok(dependency):
    """A dependency resetting the connection is NOT OK."""
    dependency.mode = "reset"
    pinger = new_pinger("dep", dependency.addr)
    with pytest.raises(requests.ConnectionError):
        pinger.ping()
    report, _ = Checker(pinger, cache_ttl=0).check()
    assert report.status["dep"] == "NOT OK"


def test_a_refused_connection_is_not_ok(closed_addr):
    """A dependency nobody listens for is NOT OK, quickly."""
    t0 = time.monotonic()
    report, _ = Checker(new_pinger("dep", closed_addr), cache_ttl=0).check()
    assert report.status["dep"] == "NOT OK"
    assert time.monotonic() - t0 < 0.45  # well below the 0.5 s timeout


def test_a_large_body_does_not_slow_the_ping(dependency):
    """A 1 MiB answer is not read whole: the ping stays fast and OK."""
    dependency.mode = "big"
    report, _ = Checker(new_pinger("dep", dependency.addr), cache_ttl=0).check()
    assert report.status["dep"] == "OK"


def test_one_session_per_pinger_reuses_the_connection(dependency):
    """Successive pings of one pinger go over one TCP connection."""
    pinger = new_pinger("dep", dependency.addr)
    checker = Checker(pinger, cache_ttl=0)
    for _ in range(5):
        assert checker.check()[1]
    assert dependency.calls == 5
    assert dependency.connections == 1
    assert isinstance(pinger, HTTPPinger)
    assert pinger.session is not new_pinger("other", dependency.addr).session  # type: ignore[attr-defined]


def test_scheme_and_path_options_build_the_url(dependency):
    """path and scheme shape the URL the pinger requests."""
    pinger = new_pinger("dep", dependency.addr, path="/health/ready")
    assert isinstance(pinger, HTTPPinger)
    assert pinger.url == f"http://{dependency.addr}/health/ready"
    pinger.ping()
    assert dependency.requests[0][0] == "/health/ready"
    secure = new_pinger("dep", "example.internal:443", scheme="https")
    assert isinstance(secure, HTTPPinger)
    assert secure.url == "https://example.internal:443/livez"


def test_a_given_session_is_used(dependency):
    """A session passed in carries its settings (headers here) into every ping."""
    session = requests.Session()
    session.headers["X-Probe"] = "yes"
    with session:
        new_pinger("dep", dependency.addr, session=session).ping()
    assert dependency.requests[0][1]["X-Probe"] == "yes"


def test_the_trace_context_is_propagated(dependency, spans):
    """The request carries a traceparent naming the ping's span as the parent."""
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("probe"):
        Checker(new_pinger("dep", dependency.addr), cache_ttl=0).check()
    (ping,) = [s for s in spans.get_finished_spans() if s.name == "health.ping.dep"]
    traceparent = dependency.requests[0][1]["traceparent"]
    _, trace_id, span_id, _ = traceparent.split("-")
    assert int(trace_id, 16) == ping.context.trace_id
    assert int(span_id, 16) == ping.context.span_id


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"name": ""}, "name"),
        ({"addr": ""}, "addr"),
        ({"addr": "http://host:80"}, "addr"),
        ({"addr": "host:80/path"}, "addr"),
        ({"scheme": "ftp"}, "scheme"),
        ({"path": "livez"}, "path"),
        ({"path": "/a b"}, "path"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"session": object()}, "session"),
    ],
)
def test_bad_options_raise_value_error_naming_them(kwargs, option):
    """new_pinger rejects malformed options with a ValueError naming the option."""
    args = {"name": "dep", "addr": "127.0.0.1:1", **kwargs}
    with pytest.raises(ValueError, match=option):
        new_pinger(args.pop("name"), args.pop("addr"), **args)
