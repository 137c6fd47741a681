"""End to end: traces link across HTTP, gRPC and individual stream messages."""

from __future__ import annotations

from clue.otel.testing import OTLPReceiver
from clue_example import otlp
from clue_example.analysis import SpanView
from clue_example.harness import new_traceparent, wait_for
from clue_example.launcher import System, http_get

LOCATE = "/clue.example.locator.Locator/Locate"


def _trace(
    receiver: OTLPReceiver, trace_id: str, service: str, name: str, count: int = 1
) -> list[SpanView]:
    """The trace's spans, once ``count`` spans ``name`` of ``service`` arrived."""

    def probe() -> list[SpanView] | None:
        spans = otlp.spans_of_trace(receiver, trace_id)
        found = sum(s.service == service and s.name == name for s in spans)
        return spans if found >= count else None

    return wait_for(probe, what=f"{count} span(s) {name!r} of {service} in {trace_id}")


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
    spans = _trace(receiver, trace_id, "locator", LOCATE)
    locate = next(s for s in spans if s.service == "locator" and s.name == LOCATE)
    chain = _ancestors(locate, spans)
    services = [s.service for s in chain]
    # locator server <- forecaster client <- forecaster server <- front client <- front server
    assert services.index("forecaster") < services.index("front"), services
    assert locate.kind == "SERVER"
    assert chain[0].service == "forecaster" and chain[0].kind == "CLIENT"
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
    spans = _trace(receiver, trace_id, "forecaster", "forecaster.hourly", count=3)
    sends = {s.span_id: s for s in spans if s.name == "front.hourly.send"}
    handled = [s for s in spans if s.name == "forecaster.hourly"]
    assert len(sends) == 3
    assert len(handled) == 3
    # Each message's handling span is the child of a distinct sending span.
    assert sorted(h.parent_span_id or "" for h in handled) == sorted(sends)
    assert {h.service for h in handled} == {"forecaster"}
    # The locator call made while handling the first message hangs under that message.
    locate = _trace(receiver, trace_id, "locator", LOCATE)
    server = next(s for s in locate if s.service == "locator" and s.kind == "SERVER")
    assert any(a.name == "forecaster.hourly" for a in _ancestors(server, locate))
