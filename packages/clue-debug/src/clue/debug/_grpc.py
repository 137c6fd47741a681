"""gRPC server interceptors (sync and ``grpc.aio``): the debug switch and payload logs.

Imported only on first use of one of its names (extra ``clue-debug[grpc]``), so that
``import clue.debug`` never imports grpc.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import grpc.aio

from clue.debug._control import PrivateDebugScope, safe_debug_scope
from clue.debug._mark import DEFAULT_MARK_SECONDS, attached
from clue.debug._payload import Formatter, PayloadLogger
from clue.debug._switch import DebugLogSwitch
from clue.debug._trigger import Decision, Trigger

__all__ = [
    "AioGrpcServerInterceptor",
    "AioPayloadGrpcServerInterceptor",
    "GrpcServerInterceptor",
    "PayloadGrpcServerInterceptor",
]

Behavior = Callable[..., Any]
# (behavior, request_streaming, response_streaming) -> wrapped behavior
Wrap = Callable[[Behavior, bool, bool], Behavior]

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


def _metadata_lookup(details: Any) -> Callable[[str], str | bytes | None]:
    def header(name: str) -> str | bytes | None:
        for key, value in getattr(details, "invocation_metadata", None) or ():
            if key.lower() == name:
                return value  # type: ignore[no-any-return]  # grpc metadata: str or bytes
        return None

    return header


class _SwitchBase:
    def __init__(
        self,
        *,
        switch: DebugLogSwitch | None = None,
        trigger_header: str | None = None,
        trigger_value: str = "on",
        propagate_trigger: bool = False,
        mark_seconds: float = DEFAULT_MARK_SECONDS,
        trust_baggage: bool = False,
        max_mark_seconds: float = DEFAULT_MARK_SECONDS,
        forward_baggage_mark: bool = False,
    ) -> None:
        self._trigger = Trigger(
            switch=switch,
            trigger_header=trigger_header,
            trigger_value=trigger_value,
            propagate_trigger=propagate_trigger,
            mark_seconds=mark_seconds,
            trust_baggage=trust_baggage,
            max_mark_seconds=max_mark_seconds,
            forward_baggage_mark=forward_baggage_mark,
        )

    def _wrap(self, wrap: Callable[..., Behavior], details: Any) -> Wrap | None:
        # The decision is taken when the handler runs, where an outer interceptor
        # (OpenTelemetry's) has made the caller's context and baggage current. Without
        # opentelemetry-api there is no baggage: decide now and leave untouched the RPCs
        # that need nothing.
        header = _metadata_lookup(details)
        if self._trigger.baggage is not None:
            return _wrapper(wrap, lambda: self._trigger.decide(header))
        decision = self._trigger.decide(header)
        if not decision[0] and decision[1] is None:
            return None
        return _wrapper(wrap, lambda: decision)


class GrpcServerInterceptor(_SwitchBase, grpc.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Sync gRPC server interceptor: while the switch is on, each RPC has debug logs on.

    The switch is read when the RPC starts; streaming responses keep debug on until the
    stream ends. ``trigger_header`` names a metadata key that turns debug on for one RPC;
    ``propagate_trigger``, ``mark_seconds``, ``trust_baggage``, ``max_mark_seconds`` and
    ``forward_baggage_mark`` handle the ``clue.debug`` baggage mark as the ASGI
    middleware does. Place it after OpenTelemetry's server interceptor, which makes the
    caller's baggage current.

    Example:
        >>> from concurrent import futures
        >>> import grpc
        >>> from clue import debug
        >>> server = grpc.server(
        ...     futures.ThreadPoolExecutor(4), interceptors=[debug.GrpcServerInterceptor()]
        ... )

    .. versionadded:: 0.1.0
    """

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        wrap = self._wrap(_sync_debug_wrap, handler_call_details)
        return handler if wrap is None else rebuild_handler(handler, wrap)


def _wrapper(wrap: Callable[..., Behavior], decide: Callable[[], Decision]) -> Wrap:
    def bound(behavior: Behavior, req_stream: bool, resp_stream: bool) -> Behavior:
        return wrap(behavior, req_stream, resp_stream, decide)

    return bound


@contextlib.contextmanager
def _scope(ctx: Any, debug: bool) -> Iterator[None]:
    # The RPC's baggage (with or without the mark), then debug logs when wanted.
    with attached(ctx):
        if not debug:
            yield
            return
        with safe_debug_scope():
            yield


def _debug_on() -> Decision:
    return True, None


def _sync_debug_wrap(
    behavior: Behavior,
    _req_stream: bool,
    resp_stream: bool,
    decide: Callable[[], Decision] = _debug_on,
) -> Behavior:
    if resp_stream:

        def stream(request: Any, context: Any) -> Iterator[Any]:
            debug, ctx = decide()
            if not debug and ctx is None:
                return behavior(request, context)  # type: ignore[no-any-return]
            return _private_stream(behavior, request, context, ctx, debug)

        return stream

    def unary(request: Any, context: Any) -> Any:
        debug, ctx = decide()
        with _scope(ctx, debug):
            return behavior(request, context)

    return unary


def _private_stream(
    behavior: Behavior, request: Any, context: Any, ctx: Any, debug: bool
) -> Iterator[Any]:
    # grpc may close or drop this generator from another thread (a cancelled RPC): the
    # scope lives in a private context, so it ends where it began.
    scope = PrivateDebugScope(ctx, debug=debug)
    responses = None
    try:
        responses = scope.run(behavior, request, context)
        yield from scope.iterate(responses)
    finally:
        close = getattr(responses, "close", None)
        try:
            if close is not None:
                scope.run(close)
        finally:
            scope.close()


class AioGrpcServerInterceptor(_SwitchBase, grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """``grpc.aio`` server interceptor: while the switch is on, each RPC has debug logs on.

    Example:
        >>> import grpc.aio
        >>> from clue import debug
        >>> def make_server() -> grpc.aio.Server:
        ...     return grpc.aio.server(interceptors=[debug.AioGrpcServerInterceptor()])

    .. versionadded:: 0.1.0
    """

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        wrap = self._wrap(_aio_debug_wrap, handler_call_details)
        return handler if wrap is None else rebuild_handler(handler, wrap)


def _aio_debug_wrap(
    behavior: Behavior,
    req_stream: bool,
    resp_stream: bool,
    decide: Callable[[], Decision] = _debug_on,
) -> Behavior:
    if inspect.isasyncgenfunction(behavior):

        async def agen(request: Any, context: Any) -> AsyncIterator[Any]:
            debug, ctx = decide()
            if not debug and ctx is None:
                async with contextlib.aclosing(behavior(request, context)) as plain:
                    async for item in plain:
                        yield item
                return
            # As for sync streams: the scope lives in a private context, each step of the
            # handler runs in it, so whoever closes this generator (or the garbage
            # collector's finalizer task) ends the scope where it began.
            scope = PrivateDebugScope(ctx, debug=debug)
            steps = scope.aiterate(scope.run(behavior, request, context))
            try:
                async for item in steps:
                    yield item
            finally:
                try:
                    await steps.aclose()  # closes the handler's stream, in its context
                finally:
                    scope.close()

        return agen
    if inspect.iscoroutinefunction(behavior):

        async def coro(request: Any, context: Any) -> Any:
            debug, ctx = decide()
            with _scope(ctx, debug):
                return await behavior(request, context)

        return coro
    return _sync_debug_wrap(behavior, req_stream, resp_stream, decide)


class _PayloadBase:
    def __init__(
        self,
        *,
        max_size: int = 1024,
        format: Formatter | None = None,
    ) -> None:
        self._logger = PayloadLogger(max_size=max_size, format=format, client=False)


class PayloadGrpcServerInterceptor(_PayloadBase, grpc.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Sync gRPC server interceptor logging request and response messages.

    While debug logs are on for the RPC's log context, every request message is logged
    under ``payload`` and every response message under ``result``, at debug level,
    protobuf messages as JSON, cut to ``max_size``. Place it after
    ``GrpcServerInterceptor`` so that the switch applies.

    Example:
        >>> from concurrent import futures
        >>> import grpc
        >>> from clue import debug
        >>> interceptors = [debug.GrpcServerInterceptor(), debug.PayloadGrpcServerInterceptor()]
        >>> server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=interceptors)

    .. versionadded:: 0.1.0
    """

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return rebuild_handler(handler, self._wrap)

    def _wrap(self, behavior: Behavior, req_stream: bool, resp_stream: bool) -> Behavior:
        return _sync_payload_wrap(self._logger, behavior, req_stream, resp_stream)


def _sync_payload_wrap(
    log: PayloadLogger, behavior: Behavior, req_stream: bool, resp_stream: bool
) -> Behavior:
    def requests(request_iterator: Iterator[Any]) -> Iterator[Any]:
        for message in request_iterator:
            if log.enabled():
                log.payload(message)
            yield message

    def responses(response_iterator: Iterator[Any]) -> Iterator[Any]:
        for message in response_iterator:
            if log.enabled():
                log.result(message)
            yield message

    def wrapped(request: Any, context: Any) -> Any:
        if req_stream:
            request = requests(request)
        elif log.enabled():
            log.payload(request)
        response = behavior(request, context)
        if resp_stream:
            return responses(response)
        if log.enabled():
            log.result(response)
        return response

    return wrapped


class AioPayloadGrpcServerInterceptor(_PayloadBase, grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """``grpc.aio`` form of ``PayloadGrpcServerInterceptor``.

    Response messages sent with ``context.write()`` rather than yielded are not logged.

    .. versionadded:: 0.1.0
    """

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return rebuild_handler(handler, self._wrap)

    def _wrap(self, behavior: Behavior, req_stream: bool, resp_stream: bool) -> Behavior:
        log = self._logger

        async def requests(request_iterator: Any) -> AsyncIterator[Any]:
            async for message in request_iterator:
                if log.enabled():
                    log.payload(message)
                yield message

        def prepare(request: Any) -> Any:
            if req_stream:
                return requests(request)
            if log.enabled():
                log.payload(request)
            return request

        if inspect.isasyncgenfunction(behavior):

            async def agen(request: Any, context: Any) -> AsyncIterator[Any]:
                async for message in behavior(prepare(request), context):
                    if log.enabled():
                        log.result(message)
                    yield message

            return agen
        if not inspect.iscoroutinefunction(behavior):
            return _sync_payload_wrap(log, behavior, req_stream, resp_stream)

        async def coro(request: Any, context: Any) -> Any:
            response = await behavior(prepare(request), context)
            if not resp_stream and log.enabled():
                log.result(response)
            return response

        return coro
