"""End to end: what the services write for successful and failing requests."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clue import log
from clue.log.testing import capture
from clue.otel.testing import OTLPReceiver
from clue_example import analysis, otlp
from clue_example.analysis import SpanView
from clue_example.harness import new_traceparent, wait_for
from clue_example.launcher import HttpReply, System, http_get
from clue_example.proto import locator_pb2, locator_pb2_grpc

SERVICES = ("front", "forecaster", "locator")


def _get(system: System, path: str, traceparent: str | None = None) -> HttpReply:
    headers = {"traceparent": traceparent} if traceparent else {}
    return http_get(system.front_url + path, headers=headers, timeout=10.0)


def _trace_of(reply: HttpReply) -> tuple[str, bool]:
    value = reply.headers.get("traceresponse", "")
    _, trace_id, _, flags = value.split("-")
    return trace_id, bool(int(flags, 16) & 1)


def _fail_and_wait(system: System, logs: Any) -> str:
    """Send a failing untraced request and wait until every service wrote its error."""
    header, trace_id, _ = new_traceparent(sampled=False)
    reply = _get(system, "/forecast/203.0.113.7", header)
    assert reply.status == 502
    for name in SERVICES:
        logs.wait_messages(name, trace_id, analysis.FAILURE_PATH[name])
    return trace_id


def test_successful_untraced_request_writes_nothing(healthy: System, logs: Any) -> None:
    """A successful request that is not traced writes no log line in any service."""
    header, trace_id, _ = new_traceparent(sampled=False)
    reply = _get(healthy, "/forecast/198.51.100.10", header)
    assert reply.status == 200, reply.body
    assert reply.json()["city"]
    assert _trace_of(reply) == (trace_id, False)
    hourly = _get(healthy, "/forecast/198.51.100.11/hourly?hours=2", header)
    assert hourly.status == 200, hourly.body
    assert len(hourly.json()["hours"]) == 2
    # A failing request afterwards is the barrier: once its lines are in every log,
    # anything the successful requests wrote would be there too.
    failed_trace = _fail_and_wait(healthy, logs)
    for name in SERVICES:
        entries = logs.entries(name)
        assert entries, f"{name} wrote nothing for the failing request"
        stray = [e for e in entries if e.get("trace_id") != failed_trace]
        assert stray == [], f"{name} wrote lines for successful requests: {stray}"


def test_records_over_otlp_are_the_lines_of_failures_only(
    healthy: System, logs: Any, receiver: OTLPReceiver
) -> None:
    """Each service sends a failure's entries as OTLP records, and none of a success."""
    header, ok_trace, _ = new_traceparent(sampled=False)
    assert _get(healthy, "/forecast/198.51.100.13", header).status == 200
    assert _get(healthy, "/forecast/198.51.100.14/hourly?hours=2", header).status == 200
    failed_trace = _fail_and_wait(healthy, logs)
    for name in SERVICES:

        def arrived(name: str = name) -> tuple[list[Any], list[dict[str, Any]]] | None:
            lines = logs.of_trace(name, failed_trace)
            mine = [
                r
                for r in receiver.logs()
                if r.trace_id == failed_trace and r.resource.get("service.name") == name
            ]
            same = tuple(r.body for r in mine) == analysis.messages(lines)
            return (mine, lines) if same else None

        records, lines = wait_for(arrived, what=f"{name}'s records, one per line, in order")
        assert [r.span_id for r in records] == [e["span_id"] for e in lines]
        assert [r.severity_text for r in records] == [e["level"] for e in lines]
    # Each service exports its records in order: the success's would be there by now.
    assert not [r for r in receiver.logs() if r.trace_id == ok_trace]


def test_failing_request_writes_full_context_everywhere(
    healthy: System, logs: Any, receiver: OTLPReceiver
) -> None:
    """A failing request writes all its entries, in order, in every service it touched."""
    # No traceparent: the front starts the trace; the tiny sampling target leaves it
    # unsampled, so only error promotion can export it.
    reply = wait_for(
        lambda: r if not _trace_of(r := _get(healthy, "/forecast/203.0.113.9"))[1] else None,
        what="an unsampled failing request",
    )
    assert reply.status == 502
    assert reply.headers.get("x-request-id")
    trace_id, sampled = _trace_of(reply)
    assert not sampled
    for name in SERVICES:
        expected = analysis.FAILURE_PATH[name]
        entries = logs.wait_messages(name, trace_id, expected)
        assert analysis.full_context_written(entries, expected), entries
        assert entries[0]["msg"] == "start", entries  # the middleware's line comes first
        assert entries[-1]["msg"] == "end", entries
    front = logs.of_trace("front", trace_id)
    assert front[0].get("request_id") == reply.headers["x-request-id"]
    # Error promotion exported the unsampled trace: its ids resolve to received spans.
    logged = {e["span_id"] for e in front}

    def resolved() -> list[SpanView] | None:
        spans = otlp.spans_of_trace(receiver, trace_id)
        return spans if logged <= {x.span_id for x in spans} else None

    spans = wait_for(resolved, what="the spans of the promoted trace's log entries")
    assert any(s.is_error for s in spans)
    assert "front" in {s.service for s in spans}


def test_traced_request_writes_everything(healthy: System, logs: Any) -> None:
    """A successful request that is traced writes its entries in every service."""
    header, trace_id, _ = new_traceparent(sampled=True)
    reply = _get(healthy, "/forecast/198.51.100.12", header)
    assert reply.status == 200
    assert _trace_of(reply) == (trace_id, True)
    for name in SERVICES:
        entries = logs.wait_messages(name, trace_id, ("start", "end"))
        assert all(e["trace_id"] == trace_id for e in entries)
    assert "forecast served" in analysis.messages(logs.of_trace("front", trace_id))
    assert "located" in analysis.messages(logs.of_trace("locator", trace_id))


def test_sync_grpc_client_logs_the_call_in_the_callers_context(healthy: System, logs: Any) -> None:
    """A sync gRPC client with clue's interceptor logs its failed call; the server writes too."""
    target = f"127.0.0.1:{healthy.ports['locator']}"
    header, trace_id, _ = new_traceparent(sampled=False)
    channel = grpc.intercept_channel(
        grpc.insecure_channel(target), log.GrpcClientInterceptor(call_log_func=log.info)
    )
    try:
        stub = locator_pb2_grpc.LocatorStub(channel)
        with capture() as mine, log.context():
            log.info("asking the locator")
            with pytest.raises(grpc.RpcError) as failed:
                stub.Locate(
                    locator_pb2.LocateRequest(ip="203.0.113.77"),
                    metadata=[("traceparent", header)],
                    timeout=10.0,
                )
    finally:
        channel.close()
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    # The client's error flushed its context: our line, then the call's lines.
    assert mine.messages[0] == "asking the locator"
    assert mine.messages[-1] == "end"
    assert mine.entries[-1].severity == "error"
    logs.wait_messages("locator", trace_id, analysis.FAILURE_PATH["locator"])
