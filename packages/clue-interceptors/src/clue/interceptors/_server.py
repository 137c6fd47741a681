"""The grpcio (sync) server interceptor: reads requests, stamps responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from clue.interceptors._streams import RecvStream, SendStream
from clue.interceptors._tracing import TracingOptions

__all__ = ["TraceStreamServerInterceptor", "rebuild_handler", "rebuild_streaming_handler"]

if TYPE_CHECKING:
    # grpc ships no type information: mypy sees a plain base, grpc checks the real one.
    _ServerBase = object
else:
    _ServerBase = grpc.ServerInterceptor

Behavior = Callable[..., Any]
# Wraps one streaming behavior: (behavior, request_streaming, response_streaming) -> behavior.
BehaviorWrapper = Callable[[Behavior, bool, bool], Behavior]


class TraceStreamServerInterceptor(TracingOptions, _ServerBase):
    """Carry the trace context in each message of server-side gRPC streams (grpcio).

    Each request of a client-streaming or bidirectional RPC is read, so
    :func:`iter_with_context` and :func:`get_trace_stream_recv_context` give the
    context its sender stamped; each response of a server-streaming or bidirectional
    RPC is stamped with the context current when the handler yields it (inside an
    :func:`iter_with_context` loop: the request's). Unary RPCs are untouched.

    Args:
        field: the ``map<string,string>`` message field that carries the context.
        message_spans: open a ``receive`` / ``send`` span per message (named
            ``"<service>/<method> receive"``), linked to the span current when the
            RPC started (the RPC's span, with OpenTelemetry's gRPC instrumentation).
        overwrite: stamp responses that already carry a ``traceparent`` too.
        tracer_provider: the provider of per-message spans (the global one by default).
        trust_baggage: handle a message whose baggage carries a valid ``clue.debug``
            mark (clue-debug's) with debug logs on, in the receive helpers' loop.
        max_mark_seconds: the furthest deadline a trusted mark may have (default 60,
            at most 3600).
        forward_baggage_mark: keep a mark that was not verified in the message's
            context (by default it is removed, so calls made for the message do not
            carry it).

    Raises:
        ValueError: an option is invalid.

    Example:
        >>> import grpc
        >>> from concurrent import futures
        >>> server = grpc.server(
        ...     futures.ThreadPoolExecutor(4), interceptors=[TraceStreamServerInterceptor()]
        ... )

    .. versionadded:: 0.1.0
    """

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        """Wrap the handler of streaming RPCs; return others as they are."""
        handler = continuation(handler_call_details)
        tracing, method = self._tracing, handler_call_details.method

        def wrap(behavior: Behavior, request_streaming: bool, response_streaming: bool) -> Behavior:
            def traced(request: Any, context: Any) -> Any:
                stream = tracing.open(method)
                if request_streaming:
                    request = RecvStream(request, stream)
                result = behavior(request, context)
                return SendStream(result, stream) if response_streaming else result

            return traced

        return rebuild_streaming_handler(handler, wrap)


def rebuild_streaming_handler(handler: Any, wrap: BehaviorWrapper) -> Any:
    """A streaming handler rebuilt with its behavior wrapped; others come back as they are."""
    if handler is None or not (handler.request_streaming or handler.response_streaming):
        return handler
    return rebuild_handler(handler, wrap)


# The handler rebuild of clue's gRPC server interceptors (the same code in each package):
# the kind of an RPC method handler, its behavior attribute and its factory.
_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def rebuild_handler(handler: Any, wrap: Callable[[Behavior, bool, bool], Behavior]) -> Any:
    """The same RPC method handler (kind, serializers) with its behavior replaced by
    ``wrap(behavior, request_streaming, response_streaming)``.

    ``None``, a handler without the behavior of its kind, and grpcio's non-blocking
    handlers (``experimental_non_blocking``: they answer through a callback, which a
    wrapper would not pass on) come back as they are.
    """
    if handler is None:
        return None
    request_streaming = bool(handler.request_streaming)
    response_streaming = bool(handler.response_streaming)
    attr, make = _KINDS[request_streaming, response_streaming]
    behavior = getattr(handler, attr, None)
    if behavior is None or getattr(behavior, "experimental_non_blocking", False):
        return handler
    return make(
        wrap(behavior, request_streaming, response_streaming),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
