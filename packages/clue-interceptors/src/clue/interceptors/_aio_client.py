"""The grpc.aio client interceptors: stamp requests, read responses."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc.aio
from opentelemetry import trace

from clue.interceptors import _carrier
from clue.interceptors._streams import AioRecvStream, AioSendStream
from clue.interceptors._tracing import StreamTracing

__all__ = ["aio_trace_stream_client_interceptors"]

if TYPE_CHECKING:
    # grpc ships no type information: mypy sees plain bases, grpc checks the real ones.
    _StreamStreamBase = object
    _StreamUnaryBase = object
    _UnaryStreamBase = object
else:
    _StreamStreamBase = grpc.aio.StreamStreamClientInterceptor
    _StreamUnaryBase = grpc.aio.StreamUnaryClientInterceptor
    _UnaryStreamBase = grpc.aio.UnaryStreamClientInterceptor

_Continuation = Callable[[Any, Any], Any]


def aio_trace_stream_client_interceptors(
    *,
    field: str = _carrier.DEFAULT_FIELD,
    message_spans: bool = False,
    overwrite: bool = True,
    tracer_provider: trace.TracerProvider | None = None,
) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors carrying the trace context in each message of ``grpc.aio`` streams.

    ``grpc.aio`` files each client interceptor object under one RPC kind, so this
    returns one per streaming kind (stream-stream, stream-unary, unary-stream); pass
    them all: ``grpc.aio.insecure_channel(addr, interceptors=[*these, ...])``. Unary
    calls are untouched. Requests are stamped as they are taken from the request
    iterator (with ``await call.write(msg)``, the context of the call's start: use a
    request generator, or :func:`inject` with ``overwrite=False``, for per-write
    contexts); responses are read as they are iterated, and the call keeps its API.

    Args:
        field: the ``map<string,string>`` message field that carries the context.
        message_spans: open a ``send`` / ``receive`` span per message, linked to the
            span current at call time.
        overwrite: stamp messages that already carry a ``traceparent`` too.
        tracer_provider: the provider of per-message spans (the global one by default).

    Returns:
        The list of interceptors.

    Raises:
        ValueError: an option is invalid.

    Example:
        >>> import grpc.aio
        >>> interceptors = aio_trace_stream_client_interceptors()
        >>> len(interceptors)
        3

    .. versionadded:: 0.1.0
    """
    tracing = StreamTracing(field, message_spans, overwrite, tracer_provider)
    return [
        _AioStreamStreamInterceptor(tracing),
        _AioStreamUnaryInterceptor(tracing),
        _AioUnaryStreamInterceptor(tracing),
    ]


class _Interceptor:
    # One grpc.aio client interceptor; the options are shared by the three kinds.
    def __init__(self, tracing: StreamTracing) -> None:
        self._tracing = tracing


class _AioStreamStreamInterceptor(_Interceptor, _StreamStreamBase):
    async def intercept_stream_stream(
        self,
        continuation: _Continuation,
        client_call_details: Any,
        request_iterator: Iterable[Any] | AsyncIterable[Any],
    ) -> AioRecvStream[Any]:
        stream = self._tracing.open(client_call_details.method)
        call = await continuation(client_call_details, AioSendStream(request_iterator, stream))
        # grpc.aio wraps a returned iterator so that the call keeps its API.
        return AioRecvStream(call, stream)


class _AioStreamUnaryInterceptor(_Interceptor, _StreamUnaryBase):
    async def intercept_stream_unary(
        self,
        continuation: _Continuation,
        client_call_details: Any,
        request_iterator: Iterable[Any] | AsyncIterable[Any],
    ) -> Any:
        stream = self._tracing.open(client_call_details.method)
        return await continuation(client_call_details, AioSendStream(request_iterator, stream))


class _AioUnaryStreamInterceptor(_Interceptor, _UnaryStreamBase):
    async def intercept_unary_stream(
        self, continuation: _Continuation, client_call_details: Any, request: Any
    ) -> AioRecvStream[Any]:
        stream = self._tracing.open(client_call_details.method)
        call = await continuation(client_call_details, request)
        return AioRecvStream(call, stream)
