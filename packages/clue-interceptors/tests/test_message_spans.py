"""Optional per-message spans: send and receive spans linked to the stream's span."""

from __future__ import annotations

from chatpb.chat_pb2 import Note
from opentelemetry.trace import SpanKind

from clue.interceptors import iter_with_context


def _by_name(exporter):
    spans = {}
    for span in exporter.get_finished_spans():
        spans.setdefault(span.name, []).append(span)
    return spans


def test_sync_send_and_receive_spans(sync_server, sync_stub, tracer, provider, exporter):
    """Each message gets a send span under its sender's span and a receive span under that."""
    _, address = sync_server(message_spans=True, tracer_provider=provider)
    stub = sync_stub(address, message_spans=True, tracer_provider=provider)

    def requests():
        for name in ("a", "b"):
            with tracer.start_as_current_span(name):
                yield Note(text=name)

    with tracer.start_as_current_span("stream") as stream:
        notes = stub.Upload(requests()).notes
    spans = _by_name(exporter)
    sends = spans["cluetest.chat.Chat/Upload send"]
    receives = spans["cluetest.chat.Chat/Upload receive"]
    assert [s.kind for s in sends] == [SpanKind.PRODUCER] * 2
    assert [s.kind for s in receives] == [SpanKind.CONSUMER] * 2
    for sender, send, receive, note in zip(
        spans["a"] + spans["b"], sends, receives, notes, strict=True
    ):
        assert send.parent.span_id == sender.context.span_id
        assert [link.context.span_id for link in send.links] == [stream.get_span_context().span_id]
        assert receive.parent.span_id == send.context.span_id
        assert note.seen_span_id == format(receive.context.span_id, "016x")
    assert [s.attributes["rpc.message.id"] for s in sends] == [1, 2]
    assert sends[0].attributes["rpc.service"] == "cluetest.chat.Chat"
    assert sends[0].attributes["rpc.method"] == "Upload"
    assert receives[0].attributes["rpc.message.type"] == "RECEIVED"


def test_client_receive_spans_link_to_the_call_span(
    sync_server, sync_stub, tracer, provider, exporter
):
    """Server-streamed responses get receive spans on the client, linked to the call's span."""
    _, address = sync_server(message_spans=True, tracer_provider=provider)
    stub = sync_stub(address, message_spans=True, tracer_provider=provider)
    with tracer.start_as_current_span("call") as call_span:
        contexts = [ctx for ctx, _ in iter_with_context(stub.Subscribe(Note(text="s")))]
    spans = _by_name(exporter)
    receives = spans["cluetest.chat.Chat/Subscribe receive"]
    sends = spans["cluetest.chat.Chat/Subscribe send"]
    assert len(contexts) == len(receives) == len(sends) == 3
    for send, receive in zip(sends, receives, strict=True):
        assert receive.parent.span_id == send.context.span_id
        assert [link.context.span_id for link in receive.links] == [
            call_span.get_span_context().span_id
        ]


async def test_aio_send_and_receive_spans(aio_server, aio_stub, tracer, provider, exporter):
    """grpc.aio streams get the same per-message spans."""
    _, address = await aio_server(message_spans=True, tracer_provider=provider)
    stub = aio_stub(address, message_spans=True, tracer_provider=provider)

    async def requests():
        for name in ("a", "b"):
            with tracer.start_as_current_span(name):
                yield Note(text=name)

    notes = [note async for note in stub.Talk(requests())]
    spans = _by_name(exporter)
    sends = spans["cluetest.chat.Chat/Talk send"]
    receives = spans["cluetest.chat.Chat/Talk receive"]
    # Two requests, two responses: a send and a receive span for each of the four.
    assert len(sends) == len(receives) == 4
    assert len(notes) == 2
    receive_ids = {format(s.context.span_id, "016x") for s in receives}
    assert {note.seen_span_id for note in notes} <= receive_ids


def test_no_spans_by_default(sync_server, sync_stub, tracer, exporter):
    """Without message_spans no span is created by the interceptors."""
    _, address = sync_server()
    with tracer.start_as_current_span("only"):
        sync_stub(address).Upload(iter([Note(text="x")]))
    assert [s.name for s in exporter.get_finished_spans()] == ["only"]
