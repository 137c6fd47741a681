"""gRPC server interceptor for ``grpc.aio.server`` (extra ``clue-log[grpc]``).

One log context per served RPC, as the sync server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import types
from collections.abc import AsyncIterator, Callable
from time import perf_counter
from typing import Any

import grpc
import grpc.aio

from clue.log import _keys
from clue.log._context import current as _current
from clue.log._context import new_context as _new_context
from clue.log._grpc_options import CallLogFunc, ErrorFunc, Options, log_end, split_method
from clue.log._grpc_server import (
    NO_HEAD,
    Behavior,
    ServerCall,
    Wrapped,
    end_line,
    gone,
    incoming_id,
    method_head,
    outcome,
    rebuild_handler,
    sends_none,
    sent_code,
    serve_sync_stream,
    serve_unary,
)
from clue.log._request_id import request_id_from

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

    .. versionadded:: 0.1.0
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
            if not _is_async(behavior):
                # grpc.aio runs and iterates a sync handler in its thread pool: so must we.
                def sync_stream_behavior(request: Any, context: Any) -> Any:
                    return serve_sync_stream(
                        opts,
                        service,
                        method,
                        metadata,
                        behavior,
                        request,
                        _SyncContext(context),
                        aio=True,
                    )

                return sync_stream_behavior

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
                    call.finish(*gone(context, "response stream closed"), None)
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
            if not _is_async(behavior):
                # grpc.aio runs a sync handler in its thread pool, off the event loop: so
                # must we, served as the sync server serves it.
                def sync_unary_behavior(request: Any, context: Any) -> Any:
                    return contextvars.copy_context().run(
                        serve_unary,
                        opts,
                        head,
                        behavior,
                        request,
                        _SyncContext(context),
                        sends_none,
                    )

                return sync_unary_behavior

            async def unary_behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
                # Hot path, written for speed: on a real server every call and object of
                # this path is paid cold once per RPC (bench_grpc.py --profile), so the
                # common case is one frame. The log context is set in the RPC's task.
                ctx = _new_context()
                token = _current.set(ctx)
                try:
                    if opts.call_ids:
                        try:
                            metadata = context.invocation_metadata()
                        except Exception:  # a context without metadata: a fresh request id
                            metadata = None
                        rid = request_id_from(incoming_id(metadata))
                        ctx.bound = (*ctx.bound, (_keys.REQUEST_ID_KEY, rid), *head)
                    else:
                        ctx.bound = (*ctx.bound, *head)
                    if opts.log_calls:
                        opts.log_func("start")
                except Exception:  # noqa: S110 - never raises into the RPC
                    pass
                start = perf_counter()
                try:
                    response = behavior(request, context)
                    if type(response) is _Coroutine or inspect.isawaitable(response):
                        response = await response
                except BaseException as exc:
                    end_line(opts, _aio_outcome(context, exc), start)
                    _reset(token)
                    raise
                ms = int((perf_counter() - start) * 1e6 + 0.5) / 1000.0  # elapsed_ms, inline
                try:
                    # The common end: no code set, not cancelled, OK not an error.
                    ok = context.code() is None and opts.ok_plain and not context.cancelled()
                except Exception:  # the general path decides
                    ok = False
                try:
                    if not ok:
                        log_end(opts, NO_HEAD, *_aio_outcome(context, None), ms)
                    elif opts.log_calls:
                        opts.log_func(
                            "end", **{_keys.GRPC_CODE_KEY: "OK", _keys.GRPC_DURATION_KEY: ms}
                        )
                except Exception:  # noqa: S110 - never raises into the RPC
                    pass
                try:  # noqa: SIM105 - cheaper than contextlib.suppress() on the per-RPC path
                    _current.reset(token)
                except ValueError:  # finished in another Context than the RPC's
                    pass
                return response

            return unary_behavior

        return rebuild_handler(handler, wrap)


def _is_async(behavior: Behavior) -> bool:
    # grpc.aio's own rule: anything else is a sync handler, run in the server's thread pool.
    return inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)


class _SyncContext:
    """The context grpc.aio hands a sync handler, answering what the sync server's does.

    grpc's own answers neither ``code()``, ``details()`` nor ``is_active()``: the code and
    details set through it are remembered, and the RPC is active until its callbacks run
    or its deadline passes (grpc runs the callbacks only once the handler has returned).
    """

    __slots__ = ("_code", "_context", "_details", "_ended")

    def __init__(self, context: Any) -> None:
        self._context = context
        self._code: Any = None
        self._details: Any = None
        self._ended = False
        with contextlib.suppress(Exception):  # a context without callbacks: always active
            context.add_callback(self._end)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def _end(self, *_: Any) -> None:
        self._ended = True

    def set_code(self, code: Any) -> None:
        self._code = code
        self._context.set_code(code)

    def set_details(self, details: Any) -> None:
        self._details = details
        self._context.set_details(details)

    def abort(self, code: Any, details: Any = "") -> None:
        self._code, self._details = code, details
        self._context.abort(code, details)

    def abort_with_status(self, status: Any) -> None:
        self._code, self._details = status.code, status.details
        self._context.abort_with_status(status)

    def code(self) -> Any:
        code = self._code  # as the aio server sends it
        if code is None or isinstance(code, grpc.StatusCode):
            return code
        return sent_code(code, aio=True)

    def details(self) -> Any:
        return self._details

    def is_active(self) -> bool:
        if self._ended:
            return False
        remaining = self._context.time_remaining()
        return remaining is None or remaining > 0


def _reset(token: Any) -> None:
    # ValueError: finished in another Context than the RPC's (nothing to leave there).
    with contextlib.suppress(ValueError):
        _current.reset(token)


def _aio_outcome(
    context: grpc.aio.ServicerContext, exc: BaseException | None
) -> tuple[grpc.StatusCode, str | bytes | None, BaseException | None]:
    if isinstance(exc, asyncio.CancelledError):
        return (*gone(context, "cancelled"), None)
    if isinstance(exc, grpc.aio.AbortError):
        code, details, _ = outcome(context, None, aio=True)
        return code, details, None
    return outcome(context, exc, aio=True)
