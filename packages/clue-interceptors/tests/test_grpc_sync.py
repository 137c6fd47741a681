"""The grpcio (sync) interceptors on a real server and channel over 127.0.0.1."""

from __future__ import annotations

import threading

import grpc
import pytest
from chatpb.chat_pb2 import Note
from opentelemetry import trace

from clue.interceptors import TracedCall, iter_with_context


def test_client_stream_messages_carry_their_senders_spans(
    sync_server, sync_stub, requests_under_spans
):
    """Messages sent under different spans arrive with those spans' trace and span ids."""
    _, address = sync_server()
    stub = sync_stub(address)
    requests, sent = requests_under_spans("a", "b", "c")
    notes = stub.Upload(requests).notes
    assert [(n.seen_trace_id, n.seen_span_id) for n in notes] == sent
    assert len({trace_id for trace_id, _ in sent}) == 3


def test_client_stream_carries_the_callers_span(sync_server, sync_stub, tracer, ids):
    """Requests taken on grpc's consumer thread carry the span current at call time."""
    _, address = sync_server()
    stub = sync_stub(address)
    with tracer.start_as_current_span("caller") as span:
        notes = stub.Upload(iter([Note(text="x"), Note(text="y")])).notes
    assert [(n.seen_trace_id, n.seen_span_id) for n in notes] == [ids(span)] * 2


def test_baggage_round_trips(sync_server, sync_stub, with_baggage):
    """Baggage current on the sending side is current while the server handles each message."""
    _, address = sync_server()
    stub = sync_stub(address)
    with with_baggage(tenant="acme", user="u 1"):
        notes = stub.Upload(iter([Note(text="x")])).notes
    assert notes[0].seen_baggage == "tenant=acme,user=u 1"


def test_bidi_responses_carry_the_request_context(sync_server, sync_stub, requests_under_spans):
    """A response yielded inside the request loop carries that request's context back."""
    _, address = sync_server()
    stub = sync_stub(address)
    requests, sent = requests_under_spans("a", "b")
    received = []
    for ctx, note in iter_with_context(stub.Talk(requests)):
        current = trace.get_current_span().get_span_context()
        assert trace.get_current_span(ctx).get_span_context() == current
        received.append((format(current.trace_id, "032x"), format(current.span_id, "016x")))
        assert (note.seen_trace_id, note.seen_span_id) == sent[len(received) - 1]
    assert received == sent


def test_server_stream_responses_carry_the_servers_spans(sync_server, sync_stub):
    """Each server-streamed response carries the span the server yielded it under."""
    _, address = sync_server()
    call = sync_stub(address).Subscribe(Note(text="s"))
    pairs = [
        (format(trace.get_current_span(ctx).get_span_context().trace_id, "032x"), note)
        for ctx, note in iter_with_context(call)
    ]
    assert len(pairs) == 3
    for trace_id, note in pairs:
        assert note.seen_trace_id
        assert trace_id == note.seen_trace_id
    assert not trace.get_current_span().get_span_context().is_valid


def test_streaming_call_keeps_the_grpc_call_api(sync_server, sync_stub):
    """The client-side streaming call is a grpc.Call with code() and details()."""
    _, address = sync_server()
    call = sync_stub(address).Subscribe(Note(text="s"))
    assert isinstance(call, TracedCall)
    assert isinstance(call, grpc.Call)
    assert len(list(call)) == 3
    assert call.code() is grpc.StatusCode.OK
    assert call.details() in ("", None)
    assert not call.is_active()
    assert call.done()
    assert call.trailing_metadata() is not None


def test_unary_calls_are_untouched(sync_server, sync_stub, tracer):
    """A unary request under a span carries no stamped metadata and gets none back."""
    _, address = sync_server()
    with tracer.start_as_current_span("unary"):
        reply = sync_stub(address).Say(Note(text="u"))
    assert dict(reply.trace_metadata) == {}
    assert reply.seen_trace_id == ""


def test_setup_and_get_trace_stream_recv_context(sync_server, sync_stub, requests_under_spans):
    """get_trace_stream_recv_context() returns the context of the last received message."""
    servicer, address = sync_server()
    servicer.mode = "slot"
    requests, sent = requests_under_spans("a", "b")
    notes = sync_stub(address).Upload(requests).notes
    assert [(n.seen_trace_id, n.seen_span_id) for n in notes] == sent


@pytest.mark.parametrize(
    "metadata",
    [
        {"traceparent": "00-not-a-trace-context-01"},
        {"traceparent": "00-" + "0" * 32 + "-" + "1" * 16 + "-01"},
        {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01" + "x" * 9000},
        {f"k{i}": "v" for i in range(100)} | {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01"},
        {"baggage": "=;;,,%%%" * 100, "tracestate": "\x00" * 600},
    ],
    ids=["garbage", "zero-trace-id", "oversized", "too-many-entries", "hostile-baggage"],
)
def test_malformed_metadata_is_delivered_without_context(sync_server, sync_stub, metadata):
    """A message with hostile trace metadata is still delivered, with no trace context."""
    _, address = sync_server()
    stub = sync_stub(address, intercept=False)
    note = Note(text="m")
    note.trace_metadata.update(metadata)
    notes = stub.Upload(iter([note, Note(text="ok")])).notes
    assert [n.text for n in notes] == ["m", "ok"]
    assert [n.seen_trace_id for n in notes] == ["", ""]
    assert notes[0].seen_baggage == ""


def test_cancel_mid_stream_cleans_up(sync_server, sync_stub, tracer):
    """Cancelling a bidi call mid-stream ends the server loop with its context restored."""
    servicer, address = sync_server()
    stub = sync_stub(address)
    gate = threading.Event()

    def requests():
        with tracer.start_as_current_span("first"):
            yield Note(text="first")
        gate.wait(10)

    call = stub.Talk(requests())
    first = next(call)
    assert first.text == "first"
    assert servicer.first_handled.wait(10)
    assert call.cancel()
    gate.set()
    with pytest.raises(grpc.RpcError) as err:
        next(call)
    assert err.value.code() is grpc.StatusCode.CANCELLED
    assert call.code() is grpc.StatusCode.CANCELLED
    assert servicer.finished.wait(10)
    assert servicer.context_restored is True


def test_custom_field(sync_server, sync_stub, tracer, ids):
    """With field="headers" the context travels in that map and trace_metadata stays empty."""
    _, address = sync_server(field="headers")
    stub = sync_stub(address, field="headers")
    got = []

    def requests():
        with tracer.start_as_current_span("h") as span:
            got.append(ids(span))
            note = Note(text="h")
            yield note
            got.append(dict(note.trace_metadata))
            got.append("traceparent" in note.headers)

    notes = stub.Upload(requests()).notes
    assert (notes[0].seen_trace_id, notes[0].seen_span_id) == got[0]
    assert got[1:] == [{}, True]


def test_concurrent_streams_never_mix_contexts(sync_server, sync_stub, requests_under_spans):
    """Many threads streaming at once each get back exactly the spans they sent."""
    _, address = sync_server()
    stub = sync_stub(address)
    failures = []

    def client():
        for _ in range(3):
            requests, sent = requests_under_spans(*"abcde")
            notes = stub.Upload(requests).notes
            if [(n.seen_trace_id, n.seen_span_id) for n in notes] != sent:
                failures.append(sent)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


def test_stream_unary_with_call_and_future(sync_server, sync_stub, requests_under_spans):
    """with_call() and future() forms of a client-streaming call stamp every request too."""
    _, address = sync_server()
    stub = sync_stub(address)
    requests, sent = requests_under_spans("a", "b")
    response, call = stub.Upload.with_call(requests)
    assert call.code() is grpc.StatusCode.OK
    assert [(n.seen_trace_id, n.seen_span_id) for n in response.notes] == sent
    requests, sent = requests_under_spans("c")
    future = stub.Upload.future(requests)
    assert [(n.seen_trace_id, n.seen_span_id) for n in future.result(timeout=10).notes] == sent


def test_server_abort_reaches_the_client_call(sync_server, sync_stub):
    """A handler aborting mid-stream gives the client its code and details through the call."""
    _, address = sync_server()
    call = sync_stub(address).Subscribe(Note(text="abort"))
    assert next(call).text == "abort-0"
    with pytest.raises(grpc.RpcError):
        next(call)
    assert call.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert call.details() == "aborted after one"
