"""The grpc.aio server interceptor: reads requests, stamps responses."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc.aio

from clue.interceptors._server import Behavior, rebuild_streaming_handler
from clue.interceptors._streams import AioRecvStream
from clue.interceptors._tracing import StreamTrace, TracingOptions

__all__ = ["AioTraceStreamServerInterceptor"]

if TYPE_CHECKING:
    # grpc ships no type information: mypy sees a plain base, grpc checks the real one.
    _ServerBase = object
else:
    _ServerBase = grpc.aio.ServerInterceptor


class AioTraceStreamServerInterceptor(TracingOptions, _ServerBase):
    """Carry the trace context in each message of server-side ``grpc.aio`` streams.

    The ``grpc.aio`` twin of :class:`TraceStreamServerInterceptor`, for async
    handlers in both styles: async generators and request iterators, or
    ``await context.read()`` / ``await context.write(msg)``. Requests are read as
    they are received; responses are stamped with the context current when the
    handler yields or writes them. Unary RPCs and sync handlers are untouched.

    Args:
        field: the ``map<string,string>`` message field that carries the context.
        message_spans: open a ``receive`` / ``send`` span per message, linked to the
            span current when the RPC started.
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
        >>> import grpc.aio
        >>> server = grpc.aio.server(interceptors=[AioTraceStreamServerInterceptor()])

    .. versionadded:: 0.1.0
    """

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        """Wrap the handler of streaming RPCs; return others as they are."""
        handler = await continuation(handler_call_details)
        tracing, method = self._tracing, handler_call_details.method

        def wrap(behavior: Behavior, request_streaming: bool, response_streaming: bool) -> Behavior:
            def start(request: Any, context: Any) -> tuple[Any, _TracedContext]:
                stream = tracing.open(method)
                if request_streaming:
                    request = AioRecvStream(request, stream)
                return request, _TracedContext(context, stream)

            if response_streaming and inspect.isasyncgenfunction(behavior):

                async def traced_responses(request: Any, context: Any) -> AsyncIterator[Any]:
                    request, traced_context = start(request, context)
                    # aclosing: the handler's generator ends in this task, not in a finalizer.
                    async with contextlib.aclosing(behavior(request, traced_context)) as results:
                        async for response in results:
                            traced_context.stream.send(response)
                            yield response

                return traced_responses
            if inspect.iscoroutinefunction(behavior):

                async def traced(request: Any, context: Any) -> Any:
                    request, traced_context = start(request, context)
                    return await behavior(request, traced_context)

                return traced
            return behavior

        return rebuild_streaming_handler(handler, wrap)


class _TracedContext:
    # The servicer context the handler sees: read() and write() go through the stream.
    __slots__ = ("_context", "stream")

    def __init__(self, context: Any, stream: StreamTrace) -> None:
        self._context = context
        self.stream = stream

    async def read(self) -> Any:
        message = await self._context.read()
        if message is not grpc.aio.EOF:
            self.stream.receive(message)
        return message

    async def write(self, message: Any) -> None:
        self.stream.send(message)
        await self._context.write(message)

    def __getattr__(self, name: str) -> Any:
        if name in _TracedContext.__slots__:  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._context, name)
