"""The public API as users write it, checked by ``mypy --strict`` (the typecheck session).

Not a test module: pytest does not collect it and nothing runs it. Each ``assert_type``
states the type a user's code sees; a change of a public signature that breaks one fails
the typecheck session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import assert_type

import grpc
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider

import clue.interceptors as ci


class Note:
    """A message as protobuf generates it, with a ``map<string,string>`` field."""

    def __init__(self) -> None:
        self.trace_metadata: dict[str, str] = {}


def servers(provider: TracerProvider) -> None:
    grpc.server(None, interceptors=[ci.TraceStreamServerInterceptor(message_spans=True)])
    grpc.aio.server(interceptors=[ci.AioTraceStreamServerInterceptor(tracer_provider=provider)])
    ci.setup_trace_stream_recv_context()
    assert_type(ci.get_trace_stream_recv_context(), otel_context.Context)


def clients() -> None:
    channel = grpc.intercept_channel(
        grpc.insecure_channel("localhost:1"), ci.TraceStreamClientInterceptor(field="meta")
    )
    channel.close()
    grpc.aio.insecure_channel(
        "localhost:1", interceptors=ci.aio_trace_stream_client_interceptors(overwrite=False)
    )


def carrier(note: Note) -> None:
    assert_type(ci.inject(note), bool)
    ctx = ci.extract(note)
    assert_type(ctx, otel_context.Context)
    token = otel_context.attach(ctx)
    otel_context.detach(token)


def receive(notes: Iterator[Note]) -> None:
    for ctx, note in ci.iter_with_context(notes):
        assert_type(ctx, otel_context.Context)
        assert_type(note, Note)


async def areceive(notes: AsyncIterator[Note]) -> None:
    stream = ci.aiter_with_context(notes, field="trace_metadata")
    assert_type(stream, ci.ContextAsyncIterator[Note])
    async for ctx, note in stream:
        assert_type(ctx, otel_context.Context)
        assert_type(note, Note)
    await stream.aclose()


def traced_call(call: ci.TracedCall) -> None:
    for _reply in call:
        pass
    assert_type(call.is_active(), bool)
