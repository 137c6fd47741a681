"""Shared fixtures: the test Chat service (sync and grpc.aio), channels and tracing.

The message classes are generated from ``chatpb/chat.proto`` beside this file and
committed; this directory is put on ``sys.path`` so that they import the same way
whatever directory pytest runs from.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).parent))

from chatpb import chat_pb2, chat_pb2_grpc

from clue.interceptors import (
    AioTraceStreamServerInterceptor,
    TraceStreamClientInterceptor,
    TraceStreamServerInterceptor,
    aio_trace_stream_client_interceptors,
    aiter_with_context,
    get_trace_stream_recv_context,
    iter_with_context,
    setup_trace_stream_recv_context,
)

Note = chat_pb2.Note


def seen(ctx: otel_context.Context | None = None, text: str = "") -> Any:
    """A Note telling what trace and baggage ``ctx`` (default: current) holds."""
    ctx = otel_context.get_current() if ctx is None else ctx
    span = trace.get_current_span(ctx).get_span_context()
    bags = ",".join(f"{k}={v}" for k, v in sorted(baggage.get_all(ctx).items()))
    return Note(
        text=text,
        seen_trace_id=format(span.trace_id, "032x") if span.is_valid else "",
        seen_span_id=format(span.span_id, "016x") if span.is_valid else "",
        seen_baggage=bags,
    )


def _ids(span: trace.Span) -> tuple[str, str]:
    sc = span.get_span_context()
    return format(sc.trace_id, "032x"), format(sc.span_id, "016x")


@pytest.fixture
def ids() -> Callable[[trace.Span], tuple[str, str]]:
    """(trace id, span id) of a span, as the Notes carry them."""
    return _ids


@pytest.fixture
def requests_under_spans(tracer: trace.Tracer) -> Callable[..., Any]:
    """A request generator yielding one Note per name, each under its own new span.

    Returns ``(generator, sent)``; ``sent`` fills with the (trace id, span id) pairs
    as the generator is consumed.
    """

    def make(*names: str) -> tuple[Iterator[Any], list[tuple[str, str]]]:
        sent: list[tuple[str, str]] = []

        def generate() -> Iterator[Any]:
            for name in names:
                with tracer.start_as_current_span(name) as span:
                    sent.append(_ids(span))
                    yield Note(text=name)

        return generate(), sent

    return make


@pytest.fixture
def observe() -> Callable[..., Any]:
    """A Note telling what trace and baggage a context (default: current) holds."""
    return seen


class SyncChat(chat_pb2_grpc.ChatServicer):
    """The sync Chat service; ``mode`` picks the receive helper under test."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        self.mode = "pairs"
        self.subscribe_count = 3
        self.finished = threading.Event()
        self.context_restored: bool | None = None
        self.first_handled = threading.Event()

    def Say(self, request: Any, context: Any) -> Any:
        out = seen(text=request.text)
        out.trace_metadata.update(request.trace_metadata)
        return out

    def Upload(self, request_iterator: Any, context: Any) -> Any:
        if self.mode == "slot":
            setup_trace_stream_recv_context()
            notes = [seen(get_trace_stream_recv_context(), n.text) for n in request_iterator]
        else:
            notes = [seen(text=n.text) for _, n in iter_with_context(request_iterator)]
        return chat_pb2.Notes(notes=notes)

    def Subscribe(self, request: Any, context: Any) -> Iterator[Any]:
        for i in range(self.subscribe_count):
            with self.tracer.start_as_current_span(f"response-{i}"):
                yield seen(text=f"{request.text}-{i}")
            if request.text == "abort":
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, "aborted after one")

    def Talk(self, request_iterator: Any, context: Any) -> Iterator[Any]:
        before = otel_context.get_current()
        try:
            for _, note in iter_with_context(request_iterator):
                yield seen(text=note.text)
                self.first_handled.set()
        finally:
            self.context_restored = otel_context.get_current() is before
            self.finished.set()


class AioChat(chat_pb2_grpc.ChatServicer):
    """The grpc.aio Chat service in the async-generator / request-iterator style."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        self.finished = asyncio.Event()
        self.first_handled = asyncio.Event()
        self.context_restored: bool | None = None

    async def Say(self, request: Any, context: Any) -> Any:
        out = seen(text=request.text)
        out.trace_metadata.update(request.trace_metadata)
        return out

    async def Upload(self, request_iterator: Any, context: Any) -> Any:
        notes = [seen(text=note.text) async for _, note in aiter_with_context(request_iterator)]
        return chat_pb2.Notes(notes=notes)

    async def Subscribe(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for i in range(3):
            with self.tracer.start_as_current_span(f"response-{i}"):
                yield seen(text=f"{request.text}-{i}")
            if request.text == "abort":
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "aborted after one")

    async def Talk(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        before = otel_context.get_current()
        messages = aiter_with_context(request_iterator)
        try:
            async for _, note in messages:
                yield seen(text=note.text)
                self.first_handled.set()
        finally:
            await messages.aclose()
            self.context_restored = otel_context.get_current() is before
            self.finished.set()


class AioChatReadWrite(chat_pb2_grpc.ChatServicer):
    """The grpc.aio Chat service in the ``context.read()`` / ``context.write()`` style."""

    async def Upload(self, request_iterator: Any, context: Any) -> Any:
        notes = []
        setup_trace_stream_recv_context()
        while (note := await context.read()) is not grpc.aio.EOF:
            notes.append(seen(get_trace_stream_recv_context(), note.text))
        return chat_pb2.Notes(notes=notes)

    async def Talk(self, request_iterator: Any, context: Any) -> None:
        setup_trace_stream_recv_context()
        while (note := await context.read()) is not grpc.aio.EOF:
            ctx = get_trace_stream_recv_context()
            token = otel_context.attach(ctx)
            try:
                await context.write(seen(text=note.text))
            finally:
                otel_context.detach(token)


@pytest.fixture
def read_write_servicer() -> AioChatReadWrite:
    """The grpc.aio Chat service written with context.read() / context.write()."""
    return AioChatReadWrite()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Spans finished by ``provider``."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A local SDK tracer provider (the global one stays untouched)."""
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


@pytest.fixture
def tracer(provider: TracerProvider) -> trace.Tracer:
    """A tracer whose spans are recorded and sampled."""
    return provider.get_tracer("tests")


@pytest.fixture
def sync_server(tracer: trace.Tracer) -> Iterator[Callable[..., tuple[SyncChat, str]]]:
    """Start a sync Chat server on 127.0.0.1 with the stream interceptor (options given)."""
    servers: list[grpc.Server] = []

    def start(*, intercept: bool = True, **options: Any) -> tuple[SyncChat, str]:
        servicer = SyncChat(tracer)
        interceptors = [TraceStreamServerInterceptor(**options)] if intercept else []
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=interceptors)
        chat_pb2_grpc.add_ChatServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return servicer, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None)


@pytest.fixture
def sync_stub() -> Iterator[Callable[..., Any]]:
    """A sync Chat stub on a channel with the stream interceptor (options given)."""
    channels: list[grpc.Channel] = []

    def make(address: str, *, intercept: bool = True, **options: Any) -> Any:
        channel = grpc.insecure_channel(address)
        channels.append(channel)
        if intercept:
            channel = grpc.intercept_channel(channel, TraceStreamClientInterceptor(**options))
        return chat_pb2_grpc.ChatStub(channel)

    yield make
    for channel in channels:
        channel.close()


@pytest.fixture
async def aio_server(tracer: trace.Tracer) -> AsyncIterator[Callable[..., Any]]:
    """Start a grpc.aio Chat server on 127.0.0.1 with the stream interceptor."""
    servers: list[grpc.aio.Server] = []

    async def start(servicer: Any = None, *, intercept: bool = True, **options: Any) -> Any:
        servicer = AioChat(tracer) if servicer is None else servicer
        interceptors = [AioTraceStreamServerInterceptor(**options)] if intercept else []
        server = grpc.aio.server(interceptors=interceptors)
        chat_pb2_grpc.add_ChatServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return servicer, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        await server.stop(None)


@pytest.fixture
async def aio_stub() -> AsyncIterator[Callable[..., Any]]:
    """A grpc.aio Chat stub on a channel with the stream interceptors (options given)."""
    channels: list[grpc.aio.Channel] = []

    def make(address: str, *, intercept: bool = True, **options: Any) -> Any:
        interceptors = aio_trace_stream_client_interceptors(**options) if intercept else None
        channel = grpc.aio.insecure_channel(address, interceptors=interceptors)
        channels.append(channel)
        return chat_pb2_grpc.ChatStub(channel)

    yield make
    for channel in channels:
        await channel.close()


@pytest.fixture
def with_baggage() -> Callable[..., Any]:
    """Attach baggage entries for the duration of a ``with`` block."""
    import contextlib

    @contextlib.contextmanager
    def attach(**entries: str) -> Iterator[None]:
        ctx = otel_context.get_current()
        for key, value in entries.items():
            ctx = baggage.set_baggage(key, value, ctx)
        token = otel_context.attach(ctx)
        try:
            yield
        finally:
            otel_context.detach(token)

    return attach
