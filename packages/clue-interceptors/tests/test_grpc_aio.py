"""The grpc.aio interceptors on a real server and channel over 127.0.0.1."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from chatpb import chat_pb2_grpc
from chatpb.chat_pb2 import Note, Notes
from opentelemetry import context as otel_context
from opentelemetry import trace

from clue.interceptors import (
    aiter_with_context,
    get_trace_stream_recv_context,
    inject,
    setup_trace_stream_recv_context,
)


def _trace_ids(notes):
    return [(n.seen_trace_id, n.seen_span_id) for n in notes]


async def test_client_stream_messages_carry_their_senders_spans(aio_server, aio_stub, tracer, ids):
    """Async-generated messages sent under different spans arrive with those spans' ids."""
    _, address = await aio_server()
    sent = []

    async def requests():
        for name in ("a", "b", "c"):
            with tracer.start_as_current_span(name) as span:
                sent.append(ids(span))
                yield Note(text=name)

    notes = (await aio_stub(address).Upload(requests())).notes
    assert _trace_ids(notes) == sent
    assert len({trace_id for trace_id, _ in sent}) == 3


async def test_sync_iterable_requests_carry_their_senders_spans(
    aio_server, aio_stub, requests_under_spans
):
    """A plain generator given to a grpc.aio call is stamped message by message too."""
    _, address = await aio_server()
    requests, sent = requests_under_spans("a", "b")
    notes = (await aio_stub(address).Upload(requests)).notes
    assert _trace_ids(notes) == sent


async def test_baggage_round_trips(aio_server, aio_stub, with_baggage):
    """Baggage current at the call reaches the aio handler of each message."""
    _, address = await aio_server()
    with with_baggage(tenant="acme"):
        notes = (await aio_stub(address).Upload(iter([Note(text="x")]))).notes
    assert notes[0].seen_baggage == "tenant=acme"


async def test_bidi_responses_carry_the_request_context(aio_server, aio_stub, tracer, ids):
    """aiter_with_context over a bidi call gives each response the context it carries."""
    _, address = await aio_server()
    sent = []

    async def requests():
        for name in ("a", "b"):
            with tracer.start_as_current_span(name) as span:
                sent.append(ids(span))
                yield Note(text=name)

    call = aio_stub(address).Talk(requests())
    received = []
    async for ctx, note in aiter_with_context(call):
        current = trace.get_current_span().get_span_context()
        assert trace.get_current_span(ctx).get_span_context() == current
        received.append((format(current.trace_id, "032x"), format(current.span_id, "016x")))
        assert (note.seen_trace_id, note.seen_span_id) == sent[len(received) - 1]
    assert received == sent
    assert not trace.get_current_span().get_span_context().is_valid
    assert await call.code() is grpc.StatusCode.OK


async def test_server_stream_keeps_the_call_api(aio_server, aio_stub):
    """A server-streamed aio call still answers code() and details(), responses carry spans."""
    _, address = await aio_server()
    call = aio_stub(address).Subscribe(Note(text="s"))
    pairs = [(ctx, note) async for ctx, note in aiter_with_context(call)]
    assert [note.text for _, note in pairs] == ["s-0", "s-1", "s-2"]
    for ctx, note in pairs:
        assert format(trace.get_current_span(ctx).get_span_context().trace_id, "032x") == (
            note.seen_trace_id
        )
    assert await call.code() is grpc.StatusCode.OK
    assert await call.details() in ("", None)
    assert call.done()


async def test_read_write_style_handler(aio_server, aio_stub, read_write_servicer, tracer, ids):
    """A handler using context.read()/write() gets each request's context and stamps replies."""
    _, address = await aio_server(read_write_servicer, overwrite=False)
    stub = aio_stub(address, overwrite=False)
    call = stub.Talk()
    sent, got = [], []
    for name in ("a", "b"):
        with tracer.start_as_current_span(name) as span:
            sent.append(ids(span))
            note = Note(text=name)
            inject(note)  # per-write context: stamped here, kept by overwrite=False
            await call.write(note)
        reply = await call.read()
        got.append((reply.seen_trace_id, reply.seen_span_id))
        assert reply.trace_metadata["traceparent"].split("-")[1] == sent[-1][0]
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert got == sent


async def test_write_api_carries_the_call_context(
    aio_server, aio_stub, read_write_servicer, tracer, ids
):
    """With call.write() and default options, messages carry the context of the call's start."""
    _, address = await aio_server(read_write_servicer)
    with tracer.start_as_current_span("call") as span:
        call = aio_stub(address).Upload()
    for name in ("a", "b"):
        await call.write(Note(text=name))
    await call.done_writing()
    notes = (await call).notes
    assert _trace_ids(notes) == [ids(span)] * 2


async def test_unary_calls_are_untouched(aio_server, aio_stub, tracer):
    """A grpc.aio unary request under a span carries no stamped metadata."""
    _, address = await aio_server()
    with tracer.start_as_current_span("unary"):
        reply = await aio_stub(address).Say(Note(text="u"))
    assert dict(reply.trace_metadata) == {}


@pytest.mark.parametrize(
    "metadata",
    [
        {"traceparent": "garbage"},
        {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "x" * 300: "long key"},
        {f"k{i}": "v" for i in range(40)},
    ],
    ids=["garbage", "long-key", "too-many-entries"],
)
async def test_malformed_metadata_is_delivered_without_context(aio_server, aio_stub, metadata):
    """Hostile metadata sent to an aio server is ignored and the message delivered."""
    _, address = await aio_server()
    note = Note(text="m")
    note.trace_metadata.update(metadata)
    notes = (await aio_stub(address, intercept=False).Upload(iter([note]))).notes
    assert [n.text for n in notes] == ["m"]
    expected = "a" * 32 if "long key" in metadata.values() else ""
    assert notes[0].seen_trace_id == expected


async def test_cancel_mid_stream_cleans_up(aio_server, aio_stub, tracer):
    """Cancelling an aio bidi call mid-stream ends the handler with its context restored."""
    servicer, address = await aio_server()
    gate = asyncio.Event()

    async def requests():
        with tracer.start_as_current_span("first"):
            yield Note(text="first")
        await gate.wait()

    call = aio_stub(address).Talk(requests())
    assert (await call.read()).text == "first"
    await asyncio.wait_for(servicer.first_handled.wait(), 10)
    assert call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call.read()
    assert await call.code() is grpc.StatusCode.CANCELLED
    await asyncio.wait_for(servicer.finished.wait(), 10)
    assert servicer.context_restored is True
    gate.set()


async def test_aiter_with_context_on_plain_async_iterables(observe):
    """aiter_with_context attaches each message's context and detaches it at the end."""
    before = otel_context.get_current()
    a = Note(text="a")
    a.trace_metadata["traceparent"] = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"

    async def stream():
        yield a
        yield Note(text="no-context")

    seen_ids = [observe().seen_trace_id async for _ in aiter_with_context(stream())]
    assert seen_ids == ["1" * 32, ""]
    assert otel_context.get_current() is before


async def test_aiter_with_context_aclose_restores_after_break():
    """Breaking out then aclose() restores the context current before the loop."""
    before = otel_context.get_current()
    a = Note(text="a")
    a.trace_metadata["traceparent"] = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"

    async def stream():
        yield a
        yield a

    messages = aiter_with_context(stream())
    async for _ in messages:
        assert otel_context.get_current() is not before
        break
    await messages.aclose()
    assert otel_context.get_current() is before


async def test_concurrent_streams_never_mix_contexts(aio_server, aio_stub, tracer, ids):
    """Many tasks streaming at once each get back exactly the spans they sent."""
    _, address = await aio_server()
    stub = aio_stub(address)

    async def client():
        sent = []

        async def requests():
            for name in "abcde":
                with tracer.start_as_current_span(name) as span:
                    sent.append(ids(span))
                    yield Note(text=name)
                await asyncio.sleep(0)  # let the other streams interleave

        notes = (await stub.Upload(requests())).notes
        return _trace_ids(notes) == sent

    results = await asyncio.wait_for(asyncio.gather(*(client() for _ in range(20))), 30)
    assert results == [True] * 20


async def test_recv_context_seen_from_a_read_in_another_task(
    aio_server, aio_stub, requests_under_spans, observe
):
    """A message read in a task of its own still fills the setup slot of the handler."""

    class TaskReader(chat_pb2_grpc.ChatServicer):
        async def Upload(self, request_iterator, context):
            setup_trace_stream_recv_context()
            notes = []
            while (note := await asyncio.create_task(context.read())) is not grpc.aio.EOF:
                notes.append(observe(get_trace_stream_recv_context(), note.text))
            return Notes(notes=notes)

    _, address = await aio_server(TaskReader())
    requests, sent = requests_under_spans("a", "b")
    notes = (await aio_stub(address).Upload(requests)).notes
    assert _trace_ids(notes) == sent


async def test_server_abort_reaches_the_client_call(aio_server, aio_stub):
    """An aio handler aborting mid-stream gives the client its code and details."""
    _, address = await aio_server()
    call = aio_stub(address).Subscribe(Note(text="abort"))
    assert (await call.read()).text == "abort-0"
    with pytest.raises(grpc.aio.AioRpcError):
        await call.read()
    assert await call.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert await call.details() == "aborted after one"
