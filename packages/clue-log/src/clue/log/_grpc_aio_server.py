"""gRPC server interceptor for ``grpc.aio.server`` (extra ``clue-log[grpc]``): one log
context per served RPC, as the sync server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import types
from collections.abc import AsyncIterator, Callable
from time import perf_counter
from typing import Any

import grpc
import grpc.aio

from clue.log._context import current as _current
from clue.log._grpc_options import CallLogFunc, ErrorFunc, Options, split_method
from clue.log._grpc_server import (
    Behavior,
    ServerCall,
    Wrapped,
    end_line,
    metadata_of,
    method_head,
    open_unary,
    outcome,
    rebuild_handler,
)

_Coroutine = types.CoroutineType

__all__ = ["AioGrpcServerInterceptor"]


class AioGrpcServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Server interceptor for ``grpc.aio.server``: one log context per RPC.

    Same behaviour and options as :class:`GrpcServerInterceptor`, for asyncio servers.
    Handlers may be coroutines, async generators, or coroutines writing with
    ``context.write()``.

    Example:
        >>> import grpc
        >>> from clue import log
        >>> async def serve() -> None:
        ...     server = grpc.aio.server(interceptors=[log.AioGrpcServerInterceptor()])
        ...     server.add_insecure_port("127.0.0.1:50051")
        ...     await server.start()
        ...     await server.wait_for_termination()
    """

    def __init__(
        self,
        *,
        error_func: ErrorFunc | None = None,
        disable_call_logging: bool = False,
        disable_call_id: bool = False,
        call_log_func: CallLogFunc | None = None,
    ) -> None:
        self._opts = Options(error_func, disable_call_logging, disable_call_id, call_log_func)
        self._unary = Wrapped()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        if not handler.response_streaming:
            # Unary response: the wrapped handler is built once per method, not per RPC.
            return self._unary.get(handler_call_details.method, handler, self._wrap_unary)
        service, method = split_method(handler_call_details.method)
        metadata = handler_call_details.invocation_metadata
        opts = self._opts

        def wrap(behavior: Behavior, _request_streaming: bool, _response_streaming: bool) -> Any:
            async def stream_behavior(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                call = ServerCall(opts, service, method)
                call.open(metadata)
                try:
                    result = behavior(request, context)
                    if inspect.isawaitable(result):  # writes with context.write()
                        await result
                    elif hasattr(result, "__aiter__"):
                        async for response in result:
                            yield response
                    else:
                        for response in result:
                            yield response
                except GeneratorExit:
                    call.finish(grpc.StatusCode.CANCELLED, "response stream closed", None)
                    raise
                except BaseException as exc:
                    call.finish(*_aio_outcome(context, exc))
                    raise
                call.finish(*_aio_outcome(context, None))

            return stream_behavior

        return rebuild_handler(handler, wrap)

    def _wrap_unary(self, full_method: str, handler: grpc.RpcMethodHandler) -> Any:
        opts, head = self._opts, method_head(full_method)

        def wrap(behavior: Behavior, _request_streaming: bool, _response_streaming: bool) -> Any:
            async def unary_behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
                token = open_unary(opts, head, metadata_of(context))
                start = perf_counter()
                try:
                    response = behavior(request, context)
                    if type(response) is _Coroutine or inspect.isawaitable(response):
                        response = await response
                except BaseException as exc:
                    end_line(opts, _aio_outcome(context, exc), start)
                    _reset(token)
                    raise
                end_line(opts, _aio_outcome(context, None), start)
                _reset(token)
                return response

            return unary_behavior

        return rebuild_handler(handler, wrap)


def _reset(token: Any) -> None:
    # ValueError: finished in another Context than the RPC's (nothing to leave there).
    with contextlib.suppress(ValueError):
        _current.reset(token)


def _aio_outcome(
    context: grpc.aio.ServicerContext, exc: BaseException | None
) -> tuple[grpc.StatusCode, str | bytes | None, BaseException | None]:
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED, "cancelled", None
    if isinstance(exc, grpc.aio.AbortError):
        code, details, _ = outcome(context, None, aio=True)
        return code, details, None
    return outcome(context, exc, aio=True)
