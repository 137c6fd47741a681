"""gRPC client interceptor for ``grpc.intercept_channel`` (extra ``clue-log[grpc]``).

A log of every outgoing call in the caller's context; the call and the request id it sends are
shared with the aio client.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from time import perf_counter
from typing import Any, NamedTuple

import grpc

from clue.log import _context, _keys
from clue.log._grpc_options import (
    REQUEST_ID_METADATA,
    CallLogFunc,
    ErrorFunc,
    Options,
    log_end,
    split_method,
)
from clue.log._request_id import new_request_id, request_id_from
from clue.log._server_options import elapsed_ms, log_line

__all__ = ["GrpcClientInterceptor"]


class GrpcClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]  # grpc is untyped
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]  # grpc is untyped
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]  # grpc is untyped
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]  # grpc is untyped
):
    """Client interceptor for ``grpc.intercept_channel``: logs outgoing calls.

    Every call (all four kinds) logs a ``start`` line and, when it completes (for a
    streaming response, when the stream ends), an ``end`` line with ``grpc.service``,
    ``grpc.method``, ``grpc.code`` and ``grpc.time_ms``, in the caller's log context. A
    code for which ``error_func`` is true (default: any code but OK) is logged as an
    error with ``grpc.status``. Unless ``disable_call_id``, the caller's ``request_id``
    (or, without one, a short random id) is sent as ``x-request-id`` metadata when the
    caller did not set one; clue's server interceptors bind it as the server's
    ``request_id``, so one id follows a request across services. The call objects returned are
    gRPC's own, so the ``grpc.Call``/``grpc.Future`` API (``cancel()``, ``code()``,
    ``details()``...) works unchanged.

    Args:
        error_func: ``StatusCode -> bool``, whether a code makes the RPC a failure (its
            buffered context is written and its ``end`` line logged at error severity);
            default: any code but OK. The HTTP middleware's ``error_status`` is the same
            rule for response statuses. A predicate that raises, or answers an
            awaitable, counts any code but OK; an async one is refused.
        disable_call_logging: no start/end lines (errors are still logged).
        disable_call_id: do not send an ``x-request-id``.
        call_log_func: writes the start/end lines; default ``log.print``.

    Raises:
        ValueError: an option is malformed.

    Example:
        >>> import grpc
        >>> from clue import log
        >>> channel = grpc.intercept_channel(
        ...     grpc.insecure_channel("localhost:50051"), log.GrpcClientInterceptor()
        ... )

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

    def _intercept(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        call = ClientCall(self._opts, details.method)
        outcome = continuation(with_call_id(details, self._opts, _ClientCallDetails), request)
        outcome.add_done_callback(call.done)
        return outcome

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        return self._intercept(continuation, client_call_details, request)

    def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        return self._intercept(continuation, client_call_details, request)

    def intercept_stream_unary(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: Any,
        request_iterator: Any,
    ) -> Any:
        return self._intercept(continuation, client_call_details, request_iterator)

    def intercept_stream_stream(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: Any,
        request_iterator: Any,
    ) -> Any:
        return self._intercept(continuation, client_call_details, request_iterator)


class CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _ClientCallDetails(CallDetails, grpc.ClientCallDetails):  # type: ignore[misc]  # grpc is untyped
    """``grpc.ClientCallDetails`` with the request id added to the metadata."""


class ClientCall:
    """One outgoing call, logged in the caller's log context."""

    __slots__ = ("_ctx", "_opts", "_start", "method", "service")

    def __init__(self, opts: Options, full_method: str) -> None:
        self._opts = opts
        self.service, self.method = split_method(full_method)
        # The caller's Context: done-callbacks run on gRPC's threads or loop callbacks.
        self._ctx = contextvars.copy_context()
        if opts.log_calls:
            log_line(
                opts.log_func,
                "start",
                {_keys.GRPC_SERVICE_KEY: self.service, _keys.GRPC_METHOD_KEY: self.method},
            )
        self._start = perf_counter()

    def done(self, call: Any) -> None:
        """Done-callback of a sync call: log its end (or error) in the caller's context."""
        self._run(self._log_end, call.code(), call.details())

    def _run(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            try:
                self._ctx.run(fn, *args)
            except RuntimeError:
                # The caller's Context is busy on another thread: log from a copy of it.
                self._ctx.copy().run(fn, *args)
        except Exception:  # noqa: S110 - telemetry never raises into the call
            pass

    def _log_end(self, code: grpc.StatusCode, details: str | bytes | None) -> None:
        ms = elapsed_ms(self._start, perf_counter())
        head: dict[str, str] = {
            _keys.GRPC_SERVICE_KEY: self.service,
            _keys.GRPC_METHOD_KEY: self.method,
        }
        log_end(self._opts, head, code, details, None, ms)


def with_call_id(details: Any, opts: Options, cls: type[CallDetails]) -> Any:
    """The call details with an ``x-request-id`` metadata entry, unless already set.

    The id is the caller's bound request id (so one id follows a request across services), else a
    new short one.
    """
    if not opts.call_ids:
        return details
    metadata = list(details.metadata or ())
    if any(k == REQUEST_ID_METADATA for k, _ in metadata):
        return details
    metadata.append((REQUEST_ID_METADATA, _caller_request_id() or new_request_id()))
    return cls(
        details.method,
        details.timeout,
        metadata,
        details.credentials,
        details.wait_for_ready,
        getattr(details, "compression", None),
    )


def _caller_request_id() -> str | None:
    """The request id bound in the caller's log context, if well-formed."""
    ctx = _context.current.get()
    bound = ctx.bound if ctx is not None else _context.root.bound
    key = _keys.REQUEST_ID_KEY
    for k, v in reversed(bound):
        if k == key:
            return v if isinstance(v, str) and request_id_from(v) == v else None
    return None
