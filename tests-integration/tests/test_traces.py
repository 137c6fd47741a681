"""End to end: traces link across HTTP, gRPC and individual stream messages."""

from __future__ import annotations

from collections.abc import Callable

from clue.otel.testing import OTLPReceiver
from clue_example import otlp
from clue_example.analysis import SpanView
from clue_example.harness import new_traceparent, wait_for
from clue_example.launcher import System, http_get

LOCATE = "/clue.example.locator.Locator/Locate"


def _trace(
    receiver: OTLPReceiver, trace_id: str, done: Callable[[list[SpanView]], bool], what: str
) -> list[SpanView]:
    """The trace's spans, once ``done`` holds for them (each service exports on its own)."""

    def probe() -> list[SpanView] | None:
        spans = otlp.spans_of_trace(receiver, trace_id)
        return spans if done(spans) else None

    return wait_for(probe, what=f"{what} in trace {trace_id}")


def _count(spans: list[SpanView], service: str, name: str) -> int:
    return sum(s.service == service and s.name == name for s in spans)


def _ancestors(span: SpanView, spans: list[SpanView]) -> list[SpanView]:
    by_id = {s.span_id: s for s in spans}
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def test_unary_path_links_http_to_both_grpc_services(
    healthy: System, receiver: OTLPReceiver
) -> None:
    """A traced request's spans chain front -> forecaster -> locator under one trace."""
    header, trace_id, caller_span = new_traceparent(sampled=True)
    reply = http_get(healthy.front_url + "/forecast/198.51.100.20", headers={"traceparent": header})
    assert reply.status == 200

    def chained(spans: list[SpanView]) -> bool:
        servers = [s for s in spans if s.service == "locator" and s.kind == "SERVER"]
        return (
            bool(servers)
            and _ancestors(servers[0], spans)[-1:] != []
            and (_ancestors(servers[0], spans)[-1].parent_span_id == caller_span)
        )

    spans = _trace(receiver, trace_id, chained, "the chain from the locator to our span")
    locate = next(s for s in spans if s.service == "locator" and s.kind == "SERVER")
    assert locate.name == LOCATE
    chain = _ancestors(locate, spans)
    assert locate.kind == "SERVER"
    # locator server <- forecaster client <- forecaster server <- front client <- front server
    assert [(s.service, s.kind) for s in chain] == [
        ("forecaster", "CLIENT"),
        ("forecaster", "SERVER"),
        ("front", "CLIENT"),
        ("front", "SERVER"),
    ]
    assert chain[-1].parent_span_id == caller_span  # the front continued our trace
    assert {"front", "forecaster", "locator"} <= {s.service for s in spans}


def test_each_stream_message_carries_its_own_trace_context(
    healthy: System, receiver: OTLPReceiver
) -> None:
    """Each hourly stream message is handled under the front span that sent it."""
    header, trace_id, _ = new_traceparent(sampled=True)
    reply = http_get(
        healthy.front_url + "/forecast/198.51.100.21/hourly?hours=3",
        headers={"traceparent": header},
    )
    assert reply.status == 200, reply.body
    assert [h["hour"] for h in reply.json()["hours"]] == [0, 1, 2]

    def complete(spans: list[SpanView]) -> bool:
        return (
            _count(spans, "front", "front.hourly.send") == 3
            and _count(spans, "forecaster", "forecaster.hourly") == 3
            and any(s.service == "locator" and s.kind == "SERVER" for s in spans)
            and any(s.service == "front" and s.kind == "SERVER" for s in spans)
        )

    spans = _trace(receiver, trace_id, complete, "3 sends, 3 handlings and the locator")
    sends = {s.span_id: s for s in spans if s.name == "front.hourly.send"}
    handled = [s for s in spans if s.name == "forecaster.hourly"]
    assert len(sends) == 3
    assert len(handled) == 3
    # Each message's handling span is the child of a distinct sending span.
    assert sorted(h.parent_span_id or "" for h in handled) == sorted(sends)
    assert {h.service for h in handled} == {"forecaster"}
    # The locator call made while handling the first message hangs under that message,
    # and every message's chain leads back to the front's server span.
    server = next(s for s in spans if s.service == "locator" and s.kind == "SERVER")
    assert [a.name for a in _ancestors(server, spans)][:2] == [LOCATE, "forecaster.hourly"]
    root = next(s for s in spans if s.service == "front" and s.kind == "SERVER")
    for h in handled:
        assert root in _ancestors(h, spans)
