"""gRPC client interceptors (sync and ``grpc.aio``) logging outgoing payloads.

Imported only on first use of one of its names (extra ``clue-debug[grpc]``).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import grpc.aio

from clue.debug._payload import Formatter, PayloadLogger

__all__ = ["PayloadGrpcClientInterceptor", "aio_payload_grpc_client_interceptors"]


class PayloadGrpcClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]  # grpc is untyped
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]  # same
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]  # same
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]  # same
):
    """Sync gRPC client interceptor logging outgoing requests and their responses.

    While debug logs are on for the caller's log context when the call starts, each
    request message is logged under ``client-payload`` and each response message under
    ``client-result``, at debug level, protobuf messages as JSON, cut to ``max_size``.
    Messages that grpc's own threads send or receive are logged into the caller's log
    context. A failed call logs no result; its error reaches the caller unchanged.

    Example:
        >>> import grpc
        >>> from clue import debug
        >>> channel = grpc.intercept_channel(
        ...     grpc.insecure_channel("127.0.0.1:50051"), debug.PayloadGrpcClientInterceptor()
        ... )
        >>> channel.close()

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        max_size: int = 1024,
        format: Formatter | None = None,
    ) -> None:
        self._log = PayloadLogger(max_size=max_size, format=format, client=True)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if not self._log.enabled():
            return continuation(details, request)
        self._log.payload(request)
        return _log_outcome(self._log, continuation(details, request))

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        if not self._log.enabled():
            return continuation(details, request)
        self._log.payload(request)
        return _ResultStream(continuation(details, request), self._log)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        if not self._log.enabled():
            return continuation(details, requests)
        return _log_outcome(self._log, continuation(details, _logged(self._log, requests)))

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        if not self._log.enabled():
            return continuation(details, requests)
        return _ResultStream(continuation(details, _logged(self._log, requests)), self._log)


def _in_caller_context(fn: Callable[[Any], None]) -> Callable[[Any], None]:
    # grpc runs callbacks and consumes request iterators on its own threads: log into the
    # caller's log context (a copy of its contextvars shares the same log context).
    ctx = contextvars.copy_context()

    def run(value: Any) -> None:
        with contextlib.suppress(Exception):  # e.g. the copy entered twice at once
            ctx.run(fn, value)

    return run


def _log_outcome(log: PayloadLogger, outcome: Any) -> Any:
    logged = _LoggedOutcome(outcome, log)
    outcome.add_done_callback(lambda _: logged.log_once())
    return logged


class _LoggedOutcome:
    """A unary-response call whose result is logged before its caller can read it.

    grpc runs a future's done callbacks on its own thread *after* waking the threads
    waiting in ``result()``: a callback alone would log the result after the caller went
    on (and logged its next request). The result is logged once, by whichever comes
    first: the done callback, or ``result()``/``exception()`` before returning it.
    """

    def __init__(self, call: Any, log: PayloadLogger) -> None:
        self._call = call
        self._log_result = _in_caller_context(log.result)
        self._lock = threading.Lock()
        self._logged = False

    def log_once(self) -> None:
        with self._lock:
            if self._logged:
                return
            self._logged = True
            try:
                if self._call.exception() is None:
                    self._log_result(self._call.result())
            except Exception:  # cancelled, or failed: no result to log
                return

    def result(self, timeout: float | None = None) -> Any:
        try:
            return self._call.result(timeout)
        finally:
            if self._call.done():
                self.log_once()

    def exception(self, timeout: float | None = None) -> Any:
        try:
            return self._call.exception(timeout)
        finally:
            if self._call.done():
                self.log_once()

    def __getattr__(self, name: str) -> Any:  # cancel(), code(), add_done_callback...
        return getattr(self._call, name)


def _logged(log: PayloadLogger, requests: Iterator[Any]) -> Iterator[Any]:
    log_payload = _in_caller_context(log.payload)
    for message in requests:
        log_payload(message)
        yield message


class _ResultStream:
    """A response-streaming call that logs each message as the caller reads it."""

    def __init__(self, call: Any, log: PayloadLogger) -> None:
        self._call = call
        self._log = log

    def __iter__(self) -> _ResultStream:
        return self

    def __next__(self) -> Any:
        message = next(self._call)
        self._log.result(message)
        return message

    def __getattr__(self, name: str) -> Any:  # cancel(), code(), details(), metadata...
        return getattr(self._call, name)


def aio_payload_grpc_client_interceptors(
    *,
    max_size: int = 1024,
    format: Formatter | None = None,
) -> list[grpc.aio.ClientInterceptor]:
    """The ``grpc.aio`` client interceptors logging outgoing payloads, one per RPC kind.

    grpc.aio files each client interceptor object under a single RPC kind, hence a list.

    Example:
        >>> import grpc.aio
        >>> from clue import debug
        >>> async def connect() -> grpc.aio.Channel:
        ...     return grpc.aio.insecure_channel(
        ...         "127.0.0.1:50051", interceptors=debug.aio_payload_grpc_client_interceptors()
        ...     )

    .. versionadded:: 0.1.0
    """
    log = PayloadLogger(max_size=max_size, format=format, client=True)
    return [_AioUnaryUnary(log), _AioUnaryStream(log), _AioStreamUnary(log), _AioStreamStream(log)]


async def _await_result(log: PayloadLogger, call: Any) -> Any:
    try:
        response = await call  # a finished call can be awaited again by the caller
    except grpc.RpcError:  # the caller sees the error when it awaits the call
        return call
    log.result(response)
    return call


async def _results(log: PayloadLogger, call: Any) -> AsyncIterator[Any]:
    async for message in call:
        log.result(message)
        yield message


def _logged_requests(log: PayloadLogger, requests: Any) -> Any:
    if requests is None:  # the caller writes with call.write()
        return None
    if hasattr(requests, "__aiter__"):

        async def agen() -> AsyncIterator[Any]:
            async for message in requests:
                log.payload(message)
                yield message

        return agen()
    return _logged(log, requests)


class _AioBase:
    def __init__(self, log: PayloadLogger) -> None:
        self._log = log


class _AioUnaryUnary(_AioBase, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if not self._log.enabled():
            return await continuation(details, request)
        self._log.payload(request)
        return await _await_result(self._log, await continuation(details, request))


class _AioUnaryStream(_AioBase, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        if not self._log.enabled():
            return await continuation(details, request)
        self._log.payload(request)
        return _results(self._log, await continuation(details, request))


class _AioStreamUnary(_AioBase, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        if not self._log.enabled():
            return await continuation(details, requests)
        call = await continuation(details, _logged_requests(self._log, requests))
        return await _await_result(self._log, call)


class _AioStreamStream(_AioBase, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        if not self._log.enabled():
            return await continuation(details, requests)
        call = await continuation(details, _logged_requests(self._log, requests))
        return _results(self._log, call)
