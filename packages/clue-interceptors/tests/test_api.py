"""The public surface: names, options, lazy grpc import, receive helpers and fault paths."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from chatpb.chat_pb2 import Note
from opentelemetry import context as otel_context
from opentelemetry import trace

import clue.interceptors as ci
from clue.interceptors import (
    AioTraceStreamServerInterceptor,
    TraceStreamClientInterceptor,
    TraceStreamServerInterceptor,
    aio_trace_stream_client_interceptors,
    get_trace_stream_recv_context,
    iter_with_context,
    setup_trace_stream_recv_context,
)

TRACEPARENT = f"00-{1:032x}-{2:016x}-01"


def test_all_is_sorted_and_complete():
    """__all__ is sorted and names every public attribute, each resolvable."""
    assert list(ci.__all__) == sorted(ci.__all__)
    public = {n for n in dir(ci) if not n.startswith("_")} - {"annotations", "importlib"}
    assert public - {"TYPE_CHECKING"} == set(ci.__all__)
    for name in ci.__all__:
        assert getattr(ci, name) is not None


#: The public API, exactly: a name added to or removed from ``__all__`` is a change of the
#: public API and is made here too.
PUBLIC_API = {
    "AioTraceStreamServerInterceptor", "ContextAsyncIterator", "TraceStreamClientInterceptor",
    "TraceStreamServerInterceptor", "TracedCall", "aio_trace_stream_client_interceptors",
    "aiter_with_context", "extract", "get_trace_stream_recv_context", "inject",
    "iter_with_context", "setup_trace_stream_recv_context",
}  # fmt: skip


def test_all_is_exactly_the_public_api():
    """__all__ is exactly the public API, once each, every name resolving."""
    assert len(ci.__all__) == len(set(ci.__all__))
    assert set(ci.__all__) == PUBLIC_API
    for name in ci.__all__:
        assert hasattr(ci, name), name


def test_unknown_attribute_raises_attribute_error():
    """A name the package does not have is an AttributeError."""
    with pytest.raises(AttributeError, match="no_such_name"):
        ci.no_such_name  # noqa: B018 - the lookup is the test


def test_import_does_not_load_grpc():
    """Importing clue.interceptors and using inject/extract never imports grpc."""
    code = (
        "import sys, clue.interceptors as ci; "
        "m = {'trace_metadata': {}}; ci.inject(m); ci.extract(m); "
        "list(ci.iter_with_context([m])); "
        "assert 'grpc' not in sys.modules, 'grpc imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("options", "bad"),
    [
        ({"field": ""}, "field"),
        ({"field": "not-a-name"}, "field"),
        ({"field": 3}, "field"),
        ({"message_spans": "yes"}, "message_spans"),
        ({"overwrite": None}, "overwrite"),
        ({"tracer_provider": object()}, "tracer_provider"),
    ],
)
@pytest.mark.parametrize(
    "factory",
    [
        TraceStreamServerInterceptor,
        AioTraceStreamServerInterceptor,
        TraceStreamClientInterceptor,
        aio_trace_stream_client_interceptors,
    ],
)
def test_invalid_options_raise_value_error(factory, options, bad):
    """A bad option is a ValueError naming it, at configuration time."""
    with pytest.raises(ValueError, match=bad):
        factory(**options)


def test_receive_helpers_reject_a_bad_field():
    """iter_with_context and aiter_with_context validate their field option."""
    with pytest.raises(ValueError, match="field"):
        iter_with_context([], field="a b")
    with pytest.raises(ValueError, match="field"):
        ci.aiter_with_context(None, field="")


def test_aio_client_interceptors_cover_each_streaming_kind():
    """The aio form is a list with one interceptor per streaming RPC kind, none unary-unary."""
    import grpc.aio

    interceptors = aio_trace_stream_client_interceptors()
    kinds = [
        grpc.aio.StreamStreamClientInterceptor,
        grpc.aio.StreamUnaryClientInterceptor,
        grpc.aio.UnaryStreamClientInterceptor,
    ]
    assert [sum(isinstance(i, k) for i in interceptors) for k in kinds] == [1, 1, 1]
    assert not any(isinstance(i, grpc.aio.UnaryUnaryClientInterceptor) for i in interceptors)


def _note(traceparent=TRACEPARENT, text=""):
    note = Note(text=text)
    note.trace_metadata["traceparent"] = traceparent
    return note


def test_iter_with_context_attaches_while_handled_and_restores():
    """Each pair's context is current in the loop body; the previous one is back afterwards."""
    before = otel_context.get_current()
    seen = []
    for ctx, _ in iter_with_context([_note(), Note()]):
        assert otel_context.get_current() is ctx
        seen.append(trace.get_current_span().get_span_context().trace_id)
    assert seen == [1, 0]
    assert otel_context.get_current() is before


def test_iter_with_context_break_restores():
    """Breaking out of the loop restores the context current before it."""
    before = otel_context.get_current()
    for _ in iter_with_context([_note(), _note()]):
        break
    assert otel_context.get_current() is before


def test_iter_with_context_finalized_elsewhere_never_raises():
    """A helper abandoned in one context and closed in another neither raises nor detaches."""
    contextvars.copy_context().run(_abandon_and_close_elsewhere)


def _abandon_and_close_elsewhere():
    iterator = iter_with_context([_note(), _note()])
    next(iterator)  # attached in this context
    errors = []
    worker = threading.Thread(target=lambda: errors.append(_close(iterator)))
    worker.start()
    worker.join(10)
    assert errors == [None]
    assert trace.get_current_span().get_span_context().trace_id == 1


def _close(iterator):
    try:
        iterator.close()
    except Exception as exc:  # whatever close() raises is reported to the test
        return exc
    return None


def test_recv_context_without_setup_is_the_current_context():
    """get_trace_stream_recv_context() falls back to the current context."""
    assert get_trace_stream_recv_context() is otel_context.get_current()


def test_recv_context_follows_raw_streams_through_the_helper():
    """Messages read by iter_with_context fill the setup slot too."""
    setup_trace_stream_recv_context()
    for _ in iter_with_context([_note()]):
        pass
    got = get_trace_stream_recv_context()
    assert trace.get_current_span(got).get_span_context().trace_id == 1


def test_requests_consumed_on_a_plain_thread_carry_the_callers_context(tracer):
    """Requests consumed on a thread without the caller's contextvars carry the caller's span."""
    interceptor = TraceStreamClientInterceptor()
    consumed = []

    def continuation(details, request_iterator):
        worker = threading.Thread(target=lambda: consumed.extend(request_iterator))
        worker.start()
        worker.join(10)
        return "result"

    details = SimpleNamespace(method="/svc/Method")
    with tracer.start_as_current_span("caller") as span:
        result = interceptor.intercept_stream_unary(continuation, details, iter([Note(), Note()]))
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert result == "result"
    assert [n.trace_metadata["traceparent"].split("-")[1] for n in consumed] == [trace_id] * 2


def _details(method="/svc/Method"):
    return SimpleNamespace(method=method, invocation_metadata=())


def test_server_interceptor_leaves_unary_and_unknown_handlers_alone():
    """Unary handlers, missing handlers and non-blocking handlers come back as they were."""
    import grpc

    interceptor = TraceStreamServerInterceptor()
    unary = grpc.unary_unary_rpc_method_handler(lambda request, context: request)

    def non_blocking(request_iterator, context, send_response_callback):
        return None

    non_blocking.experimental_non_blocking = True
    streaming = grpc.stream_stream_rpc_method_handler(non_blocking)
    for handler in (unary, None, streaming):
        assert interceptor.intercept_service(lambda details, h=handler: h, _details()) is handler


async def test_aio_server_interceptor_leaves_unary_and_sync_handlers_alone():
    """The aio server interceptor returns unary handlers as they are and keeps sync behaviors."""
    import grpc

    interceptor = AioTraceStreamServerInterceptor()

    def sync_stream(request_iterator, context):
        yield from request_iterator

    async def continuation_for(handler):
        async def continuation(details):
            return handler

        return await interceptor.intercept_service(continuation, _details())

    unary = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    assert await continuation_for(unary) is unary
    wrapped = await continuation_for(grpc.stream_stream_rpc_method_handler(sync_stream))
    assert wrapped.stream_stream is sync_stream


@pytest.mark.parametrize("module", ["_carrier", "_recv", "_iterate", "_aio_client"])
def test_docstring_examples_run(module):
    """The Example sections of the public docstrings run as written."""
    import doctest
    import importlib

    mod = importlib.import_module(f"clue.interceptors.{module}")
    result = contextvars.copy_context().run(doctest.testmod, mod)
    assert result.failed == 0
    assert result.attempted > 0


def _serve_non_blocking(interceptors: list[Any]) -> list[bytes]:
    """A real ``grpc.server`` on 127.0.0.1 whose response-streaming method is grpcio's
    non-blocking kind (it answers through ``send_response_callback``), behind
    ``interceptors``; returns what a client receives."""
    from concurrent import futures

    import grpc

    def stream(request: bytes, context: Any, send_response_callback: Any) -> None:
        send_response_callback(request + b"-1")
        send_response_callback(request + b"-2")
        send_response_callback(None)

    stream.experimental_non_blocking = True  # type: ignore[attr-defined]
    handler = grpc.unary_stream_rpc_method_handler(stream)
    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=interceptors)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.NonBlocking", {"Stream": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_stream("/test.NonBlocking/Stream")
            return list(call(b"hi", timeout=10))
    finally:
        server.stop(None)


def test_non_blocking_handler_is_served_as_it_is() -> None:
    """A non-blocking handler (grpcio's ``experimental_non_blocking``) behind the
    interceptor is left alone and answers as it would without it."""
    assert _serve_non_blocking([TraceStreamServerInterceptor()]) == [b"hi-1", b"hi-2"]
