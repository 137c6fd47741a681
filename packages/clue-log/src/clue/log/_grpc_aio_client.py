"""gRPC client interceptors for ``grpc.aio`` channels (extra ``clue-log[grpc]``).

A log of every outgoing call in the caller's context, as the sync client's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import grpc
import grpc.aio

from clue.log._grpc_client import CallDetails, ClientCall, with_call_id
from clue.log._grpc_options import CallLogFunc, ErrorFunc, Options

__all__ = ["aio_grpc_client_interceptors"]

_T = TypeVar("_T")


def aio_grpc_client_interceptors(
    *,
    error_func: ErrorFunc | None = None,
    disable_call_logging: bool = False,
    disable_call_id: bool = False,
    call_log_func: CallLogFunc | None = None,
) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors for ``grpc.aio`` channels, one per RPC kind.

    grpc.aio files each interceptor object under a single RPC kind, so this returns the
    four interceptors (unary-unary, unary-stream, stream-unary, stream-stream) that
    together log every outgoing call like :class:`GrpcClientInterceptor`.

    Args:
        error_func: ``StatusCode -> bool``, whether a code makes the RPC a failure (its
            buffered context is written and its ``end`` line logged at error severity);
            default: any code but OK. The HTTP middleware's ``error_status`` is the same
            rule for response statuses. A predicate that raises, or answers an
            awaitable, counts any code but OK; an async one is refused.
        disable_call_logging: no start/end lines (errors are still logged).
        disable_call_id: do not send an ``x-request-id``.
        call_log_func: writes the start/end lines; default ``log.print``.

    Returns:
        The list to pass as ``interceptors=`` to ``grpc.aio.insecure_channel`` (or
        ``secure_channel``).

    Raises:
        ValueError: an option is malformed.

    Example:
        >>> import grpc
        >>> from clue import log
        >>> async def call() -> None:
        ...     async with grpc.aio.insecure_channel(
        ...         "localhost:50051", interceptors=log.aio_grpc_client_interceptors()
        ...     ) as channel:
        ...         ...

    .. versionadded:: 0.1.0
    """
    opts = Options(error_func, disable_call_logging, disable_call_id, call_log_func)
    return [
        _AioUnaryUnary(opts),
        _AioUnaryStream(opts),
        _AioStreamUnary(opts),
        _AioStreamStream(opts),
    ]


class _AioClientInterceptor:
    """Shared body of the four grpc.aio client interceptor kinds."""

    def __init__(self, opts: Options) -> None:
        self._opts = opts

    async def _intercept(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        # Hot path (every outgoing call).
        opts = self._opts
        call = _AioClientCall(opts, details.method)
        try:
            outcome = await continuation(
                with_call_id(details, opts, _AioClientCallDetails) if opts.call_ids else details,
                request,
            )
        except asyncio.CancelledError as exc:
            # Cancelled while an interceptor after clue's awaited: grpc.aio ends it CANCELLED.
            call.refused(grpc.StatusCode.CANCELLED, exc)
            raise
        except grpc.aio.AioRpcError as exc:
            # An interceptor after clue's ended the call with a status (an auth check
            # refusing it): the code the caller gets.
            call.refused(exc.code(), exc, exc.details())
            raise
        except Exception as exc:
            # grpc refused to make the call (a closed channel): INTERNAL, as a sync one.
            call.refused(grpc.StatusCode.INTERNAL, exc)
            raise
        call.keep_context()
        outcome.add_done_callback(call.aio_done)
        return outcome


class _AioUnaryUnary(_AioClientInterceptor, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request)


class _AioUnaryStream(_AioClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request)


class _AioStreamUnary(_AioClientInterceptor, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_stream_unary(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: Any,
        request_iterator: Any,
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request_iterator)


class _AioStreamStream(_AioClientInterceptor, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_stream_stream(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: Any,
        request_iterator: Any,
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request_iterator)


class _AioClientCallDetails(CallDetails, grpc.aio.ClientCallDetails):  # type: ignore[misc]  # grpc is untyped
    """``grpc.aio.ClientCallDetails`` with the request id added to the metadata."""

    @staticmethod
    def metadata_of(items: Any, *extra: tuple[str, str]) -> Any:
        """The metadata handed on: a new ``grpc.aio.Metadata``.

        The type grpc.aio gives the interceptors after this one; the caller's own object is
        left as it was.
        """
        return grpc.aio.Metadata(*items, *extra)


class _AioClientCall(ClientCall):
    """An outgoing grpc.aio call, whose status getters are coroutines."""

    __slots__ = ()

    def aio_done(self, call: Any) -> None:
        """Done-callback of a grpc.aio call, whose status getters are coroutines.

        The call is done, so they answer without waiting: read here. A task reads them only
        if one would wait after all.
        """
        try:
            code = _now(call.code())
            if code is grpc.StatusCode.OK and self._opts.ok_plain:
                self._run(self.end_ok)
                return
            details = _now(call.details())
        except _WouldWaitError:
            try:
                task = asyncio.get_running_loop().create_task(self._aio_log_end(call))
            except Exception:
                return
            _TASKS.add(task)
            task.add_done_callback(_TASKS.discard)
            return
        except (Exception, asyncio.CancelledError):
            # A getter that raises ends nothing here, as the task it replaces ended nothing.
            return
        self._run(self._log_end, code, details)

    async def _aio_log_end(self, call: Any) -> None:
        try:
            code, details = await call.code(), await call.details()
        except Exception:
            return
        self._run(self._log_end, code, details)


class _WouldWaitError(Exception):
    """A status getter of a done call would have waited."""


def _now(coro: Coroutine[Any, Any, _T]) -> _T:
    """The value of a coroutine that finishes without waiting; else :class:`_WouldWaitError`."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise _WouldWaitError


# Log tasks of grpc.aio calls, kept alive until they run.
_TASKS: set[asyncio.Task[None]] = set()
