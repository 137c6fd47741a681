"""gRPC server interceptor for ``grpc.server`` (extra ``clue-log[grpc]``).

One log context per served RPC; the served call, its outcome and the handler rebuild are shared with
the aio server.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator, Sequence
from time import perf_counter
from typing import Any

import grpc
import grpc.aio

from clue.log import _context, _keys
from clue.log._grpc_options import (
    REQUEST_ID_METADATA,
    CallLogFunc,
    ErrorFunc,
    Options,
    log_end,
    split_method,
)
from clue.log._request_id import new_request_id as _new_request_id
from clue.log._request_id import request_id_from
from clue.log._server_options import elapsed_ms

__all__ = ["GrpcServerInterceptor"]

# The server's end line has no head: service and method are bound in the RPC's context.
NO_HEAD: dict[str, str] = {}
_new_context = _context.new_context
_current = _context.current
_copy_context = contextvars.copy_context

Behavior = Callable[..., Any]
#: The service and method key/values bound for an RPC.
Head = tuple[tuple[str, str], tuple[str, str]]


class GrpcServerInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Server interceptor for ``grpc.server``: one log context per RPC.

    Per RPC (unary, server-streaming, client-streaming and bidi alike) it opens a log
    context, binds ``request_id`` (a well-formed incoming ``x-request-id`` metadata value
    is reused, else a short random id is made), ``grpc.service`` and ``grpc.method``, and
    logs a ``start`` line and, when the RPC finishes (for a streaming response, when the
    stream ends), an ``end`` line with ``grpc.code`` and ``grpc.time_ms``. A code for which
    ``error_func`` is true (default: any code but OK) is logged as an error instead, with
    ``grpc.status`` (the details) and the traceback of an escaping exception; the error
    flushes the RPC's buffer.

    Args:
        error_func: ``StatusCode -> bool``, whether a code makes the RPC a failure (its
            buffered context is written and its ``end`` line logged at error severity);
            default: any code but OK. The HTTP middleware's ``error_status`` is the same
            rule for response statuses. A predicate that raises, or answers an
            awaitable, counts any code but OK; an async one is refused.
        disable_call_logging: no start/end lines (errors are still logged).
        disable_call_id: do not bind a request id.
        call_log_func: writes the start/end lines; default ``log.print``; ``log.info``
            makes them buffered.

    Raises:
        ValueError: an option is malformed.

    Example:
        >>> from concurrent import futures
        >>> import grpc
        >>> from clue import log
        >>> server = grpc.server(
        ...     futures.ThreadPoolExecutor(4), interceptors=[log.GrpcServerInterceptor()]
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
        self._unary = Wrapped()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        if not handler.response_streaming:
            # Unary response: the wrapped handler is built once per method, not per RPC.
            return self._unary.get(handler_call_details.method, handler, self._wrap_unary)
        service, method = split_method(handler_call_details.method)
        metadata = handler_call_details.invocation_metadata
        opts = self._opts

        def wrap(behavior: Behavior, _request_streaming: bool, _response_streaming: bool) -> Any:
            def stream_behavior(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                return serve_sync_stream(
                    opts, service, method, metadata, behavior, request, context
                )

            return stream_behavior

        return rebuild_handler(handler, wrap)

    def _wrap_unary(self, full_method: str, handler: grpc.RpcMethodHandler) -> Any:
        opts, head = self._opts, method_head(full_method)
        serializer = handler.response_serializer

        def wrap(behavior: Behavior, _request_streaming: bool, _response_streaming: bool) -> Any:
            def unary_behavior(request: Any, context: grpc.ServicerContext) -> Any:
                # A copied Context: the RPC's log context is set in it and discarded with it.
                return _copy_context().run(
                    serve_unary, opts, head, behavior, request, context, serializer
                )

            return unary_behavior

        return rebuild_handler(handler, wrap)


def serve_sync_stream(
    opts: Options,
    service: str,
    method: str,
    metadata: Sequence[tuple[str, str | bytes]] | None,
    behavior: Behavior,
    request: Any,
    context: grpc.ServicerContext,
    *,
    aio: bool = False,
) -> Iterator[Any]:
    """Serve a sync handler's response stream in a log context of its own."""
    call = ServerCall(opts, service, method)
    ctx = contextvars.copy_context()
    ctx.run(call.open, metadata)
    stream = _SyncResponseStream(ctx, call, context)
    stream.none_ends = not aio
    # Cancelled or failed before the stream was exhausted: end it anyway.
    context.add_callback(stream.terminated)
    try:
        stream.it = iter(ctx.run(behavior, request, context))
    except Exception as exc:
        ctx.run(stream.fail, exc)
        raise
    return stream


class ServerCall:
    """One served RPC: opens its log context, logs start, and logs end exactly once."""

    __slots__ = ("_cm", "_done", "_opts", "_start", "method", "service")

    def __init__(self, opts: Options, service: str, method: str) -> None:
        self._opts = opts
        self.service = service
        self.method = method
        self._cm: Any = None
        self._done = threading.Lock()
        self._start = 0.0

    def open(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> None:
        """Enter a new log context (in the current contextvars.Context) and log start."""
        self._cm = _context.context()
        self._cm.__enter__()
        opts = self._opts
        try:
            head = ((_keys.GRPC_SERVICE_KEY, self.service), (_keys.GRPC_METHOD_KEY, self.method))
            _start_line(opts, _current.get(), head, metadata)
        except Exception:  # noqa: S110 - telemetry never raises into the RPC
            pass
        self._start = perf_counter()

    def finish(
        self,
        code: grpc.StatusCode,
        details: str | bytes | None,
        exc: BaseException | None,
        *,
        reset: bool = True,
    ) -> None:
        """Log the end of the RPC (once) and, when ``reset``, leave its log context."""
        if not self._done.acquire(blocking=False):
            return
        opts = self._opts
        ms = elapsed_ms(self._start, perf_counter())
        try:
            log_end(opts, NO_HEAD, code, details, exc, ms)
        except Exception:  # noqa: S110 - telemetry never raises into the RPC
            pass
        finally:
            if reset:
                self.close()
            else:
                # Not in the RPC's own Context: leave it to be discarded with the RPC.
                self._cm = None

    def close(self) -> None:
        """Leave the log context; quietly, when finalised from another context."""
        cm, self._cm = self._cm, None
        if cm is not None:
            # ValueError: finalised outside the RPC's Context, which is discarded with it.
            with contextlib.suppress(ValueError):
                cm.__exit__(None, None, None)


def outcome(
    context: grpc.ServicerContext | grpc.aio.ServicerContext,
    exc: BaseException | None,
    *,
    aio: bool = False,
) -> tuple[grpc.StatusCode, str | bytes | None, BaseException | None]:
    """The status an RPC ends with, from its servicer context and what escaped."""
    try:
        return _status_of(context, exc, aio)
    except Exception:
        return (grpc.StatusCode.OK if exc is None else grpc.StatusCode.UNKNOWN), None, exc


def _status_of(
    context: grpc.ServicerContext | grpc.aio.ServicerContext,
    exc: BaseException | None,
    aio: bool,
) -> tuple[grpc.StatusCode, str | bytes | None, BaseException | None]:
    code = context.code()
    if code is not None and not isinstance(code, grpc.StatusCode):
        code = sent_code(code, aio)
    details = context.details()
    if exc is None:
        if code is None and _cancelled(context, aio):
            return (*gone(context, "cancelled by the client"), None)
        return (code or grpc.StatusCode.OK), details, None
    if code is not None and code is not grpc.StatusCode.OK:
        # context.abort(): the code and details say it all, the exception is plumbing.
        return code, details, None
    # Anything else escaping, a failed outgoing call's RpcError included, is answered
    # UNKNOWN by grpc: the client never sees the outgoing call's own code.
    return grpc.StatusCode.UNKNOWN, details or repr(exc), exc


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def sent_code(code: object, aio: bool) -> grpc.StatusCode:
    """The code grpc sends for a ``set_code()`` value that is not a ``StatusCode``.

    grpc.aio takes an int by its value; anything else (any value on the sync server) is
    sent as UNKNOWN.
    """
    if aio and isinstance(code, int):
        return _CODES.get(code, grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.UNKNOWN


def gone(
    context: grpc.ServicerContext | grpc.aio.ServicerContext, cancelled: str
) -> tuple[grpc.StatusCode, str]:
    """How an RPC ended early, never raising.

    DEADLINE_EXCEEDED when its deadline passed (the code its client gets), else CANCELLED
    with ``cancelled`` for details.
    """
    try:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"
    except Exception:  # noqa: S110 - a context without a deadline: cancelled
        pass
    return grpc.StatusCode.CANCELLED, cancelled


def _cancelled(context: grpc.ServicerContext | grpc.aio.ServicerContext, aio: bool) -> bool:
    if aio:
        return bool(context.cancelled())
    return not context.is_active()


def serve_unary(
    opts: Options,
    head: Head,
    behavior: Callable[..., Any],
    request: Any,
    context: grpc.ServicerContext,
    serializer: Callable[[Any], bytes] | None,
) -> Any:
    # Hot path, written for speed: on a real server every call and object of this path is
    # paid cold once per RPC (bench_grpc.py --profile), so the common case is one frame.
    # Runs in a Context copied for this RPC: the log context is set in it and discarded
    # with it, so there is nothing to reset; a unary RPC ends once, in this thread.
    ctx = _new_context()
    _current.set(ctx)
    try:
        if opts.call_ids:
            try:
                metadata = context.invocation_metadata()
            except Exception:  # a context without metadata: a fresh request id
                metadata = None
            rid = request_id_from(incoming_id(metadata)) if metadata else _new_request_id()
            ctx.bound = (*ctx.bound, (_keys.REQUEST_ID_KEY, rid), *head)
        else:
            ctx.bound = (*ctx.bound, *head)
        if opts.log_calls:
            opts.log_func("start")
    except Exception:  # noqa: S110 - never raises into the RPC; cheaper than suppress()
        pass
    start = perf_counter()
    try:
        response = behavior(request, context)
    except Exception as exc:
        end_line(opts, outcome(context, exc), start)
        raise
    ms = int((perf_counter() - start) * 1e6 + 0.5) / 1000.0  # elapsed_ms, inline
    try:
        # The common end: a response, no code set, the client still there, OK not an error.
        ok = (
            response is not None
            and context.code() is None
            and opts.ok_plain
            and context.is_active()
        )
    except Exception:  # the general path decides
        ok = False
    try:
        if not ok:
            status = outcome(context, None)
            if response is None and status[0] is grpc.StatusCode.OK:
                status = _unsendable(context, serializer, status)
            log_end(opts, NO_HEAD, *status, ms)
        elif opts.log_calls:
            opts.log_func("end", **{_keys.GRPC_CODE_KEY: "OK", _keys.GRPC_DURATION_KEY: ms})
    except Exception:  # noqa: S110 - never raises into the RPC
        pass
    return response


def sends_none(response: Any) -> bytes:
    """The serializer grpc.aio behaves as for a None response: an empty message."""
    return b""


def _unsendable(
    context: grpc.ServicerContext,
    serializer: Callable[[Any], bytes] | None,
    status: tuple[grpc.StatusCode, str | bytes | None, BaseException | None],
) -> tuple[grpc.StatusCode, str | bytes | None, BaseException | None]:
    # A unary handler returned None (a forgotten return, say): unless its serializer makes
    # bytes of None, grpc answers INTERNAL (with the details set, if any) instead of OK.
    if context.code() is not None:
        return status  # a code set, OK included, is what grpc sends
    try:
        if serializer is not None and serializer(None) is not None:
            return status
    except Exception:  # noqa: S110 - the serializer refuses None, as grpc will see
        pass
    return grpc.StatusCode.INTERNAL, status[1] or "Failed to serialize response!", None


def _start_line(
    opts: Options,
    ctx: Any,
    head: Head,
    metadata: Sequence[tuple[str, str | bytes]] | None,
) -> None:
    # The request id, service and method bound straight onto the new context, then start.
    if opts.call_ids:
        rid = request_id_from(incoming_id(metadata))
        ctx.bound = (*ctx.bound, (_keys.REQUEST_ID_KEY, rid), *head)
    else:
        ctx.bound = (*ctx.bound, *head)
    if opts.log_calls:
        opts.log_func("start")


def end_line(
    opts: Options,
    status: tuple[grpc.StatusCode, str | bytes | None, BaseException | None],
    start: float,
) -> None:
    """Log a unary RPC's end line (never raises)."""
    ms = elapsed_ms(start, perf_counter())
    try:  # noqa: SIM105 - cheaper than contextlib.suppress() on the per-RPC path
        log_end(opts, NO_HEAD, *status, ms)
    except Exception:  # noqa: S110 - never raises into the RPC; cheaper than suppress()
        pass


def method_head(full_method: str) -> Head:
    """The service and method key/values bound for an RPC of ``full_method``."""
    service, method = split_method(full_method)
    return ((_keys.GRPC_SERVICE_KEY, service), (_keys.GRPC_METHOD_KEY, method))


class _SyncResponseStream:
    """A served response stream whose iteration runs in the RPC's own Context."""

    __slots__ = ("_call", "_context", "_ctx", "it", "none_ends")

    def __init__(
        self, ctx: contextvars.Context, call: ServerCall, context: grpc.ServicerContext
    ) -> None:
        self._ctx = ctx
        self._call = call
        self._context = context
        self.it: Iterator[Any] | None = None
        # grpc.server ends a response stream, OK, at a None response (grpc.aio sends it).
        self.none_ends = True

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return self._ctx.run(self._next)

    def _next(self) -> Any:
        assert self.it is not None  # set before the server iterates
        try:
            response = next(self.it)
            if response is None and self.none_ends:
                self._call.finish(*outcome(self._context, None))
            return response
        except StopIteration:
            self._call.finish(*outcome(self._context, None))
            raise
        except Exception as exc:
            self.fail(exc)
            raise

    def fail(self, exc: BaseException) -> None:
        self._call.finish(*outcome(self._context, exc))

    def terminated(self) -> None:
        # Runs on a gRPC thread when the RPC ends; a no-op once the stream has finished.
        # The RPC's Context may be busy in the handler's thread, so log from a copy of it
        # (same log context) and leave the reset to the discarded Context.
        self._ctx.copy().run(
            self._call.finish,
            *gone(self._context, "cancelled before the response stream ended"),
            None,
            reset=False,
        )


class Wrapped:
    """Wrapped unary handlers by (method, original handler): built once, not per RPC.

    A server's handlers are the same objects from one RPC to the next, so the per-RPC work
    is a dictionary lookup. Bounded: a server inventing handlers per RPC starts over.
    """

    __slots__ = ("_cache",)
    MAX = 1024

    def __init__(self) -> None:
        # method -> (the handler it was built from, the wrapped handler)
        self._cache: dict[str, tuple[Any, Any]] = {}

    def get(self, method: str, handler: Any, build: Callable[[str, Any], Any]) -> Any:
        hit = self._cache.get(method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        wrapped = build(method, handler)
        if len(self._cache) >= self.MAX:
            self._cache.clear()
        self._cache[method] = (handler, wrapped)
        return wrapped


# The handler rebuild of clue's gRPC server interceptors (the same code in each package):
# the kind of an RPC method handler, its behavior attribute and its factory.
_KINDS = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def rebuild_handler(handler: Any, wrap: Callable[[Behavior, bool, bool], Behavior]) -> Any:
    """The same RPC method handler with its behavior replaced.

    The kind and the serializers are kept; the behavior becomes ``wrap(behavior, request_streaming,
    response_streaming)``.

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


def incoming_id(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | bytes | None:
    """The incoming ``x-request-id`` metadata value, if any."""
    for key, value in metadata or ():
        if key == REQUEST_ID_METADATA:
            return value
    return None
