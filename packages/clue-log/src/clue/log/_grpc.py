"""gRPC interceptors (extra ``clue-log[grpc]``): one log context per served RPC, and a
log of every outgoing call in the caller's context.

This module imports ``grpc``; the ``clue.log`` facade loads it only when one of its names
is used, so ``import clue.log`` never imports grpcio.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from time import perf_counter
from typing import Any, NamedTuple

import grpc
import grpc.aio

from clue.log import _api, _context, _keys
from clue.log._request_id import new_request_id, request_id_from
from clue.log._server_options import check_not_async, elapsed_ms, log_line, verdict

__all__ = [
    "AioGrpcServerInterceptor",
    "GrpcClientInterceptor",
    "GrpcServerInterceptor",
    "aio_grpc_client_interceptors",
]

#: Decides whether a status code is logged as an error (default: any code but OK).
ErrorFunc = Callable[[grpc.StatusCode], bool]
#: What start/end lines are written with: ``log.print`` (default) or ``log.info``...
CallLogFunc = Callable[..., Any]

_REQUEST_ID = "x-request-id"


def _not_ok(code: grpc.StatusCode) -> bool:
    return code is not grpc.StatusCode.OK


class _Options:
    """Interceptor options, checked at construction time (``ValueError`` when bad)."""

    __slots__ = ("call_ids", "error_func", "log_calls", "log_func")

    def __init__(
        self,
        error_func: ErrorFunc | None,
        disable_call_logging: bool,
        disable_call_id: bool,
        call_log_func: CallLogFunc | None,
    ) -> None:
        if error_func is not None and not callable(error_func):
            raise ValueError(f"error_func must be callable, got {error_func!r}")
        check_not_async("error_func", error_func)
        if not isinstance(disable_call_logging, bool):
            raise ValueError(f"disable_call_logging must be a bool, got {disable_call_logging!r}")
        if not isinstance(disable_call_id, bool):
            raise ValueError(f"disable_call_id must be a bool, got {disable_call_id!r}")
        if call_log_func is not None and not callable(call_log_func):
            raise ValueError(f"call_log_func must be callable, got {call_log_func!r}")
        check_not_async("call_log_func", call_log_func)
        self.error_func: ErrorFunc = error_func or _not_ok
        self.log_calls = not disable_call_logging
        self.call_ids = not disable_call_id
        self.log_func: CallLogFunc = call_log_func or _api.print

    def is_error(self, code: grpc.StatusCode) -> bool:
        # A user predicate must not break the RPC: a failing one counts the code as error.
        try:
            return verdict(self.error_func(code))
        except Exception:
            return code is not grpc.StatusCode.OK


def _split_method(full: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` -> (``pkg.Service``, ``Method``)."""
    service, _, method = full.lstrip("/").rpartition("/")
    return service, method


def _text(details: str | bytes | None) -> str:
    if details is None:
        return ""
    if isinstance(details, bytes):
        return details.decode("utf-8", "replace")
    return details


def _incoming_id(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | bytes | None:
    for key, value in metadata or ():
        if key == _REQUEST_ID:
            return value
    return None


# --------------------------------------------------------------------------- server side


class _ServerCall:
    """One served RPC: opens its log context, logs start, and logs end exactly once."""

    __slots__ = ("_cm", "_done", "_opts", "_start", "method", "service")

    def __init__(self, opts: _Options, service: str, method: str) -> None:
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
            kv: dict[str, Any] = {}
            if opts.call_ids:
                kv[_keys.REQUEST_ID_KEY] = request_id_from(_incoming_id(metadata))
            kv[_keys.GRPC_SERVICE_KEY] = self.service
            kv[_keys.GRPC_METHOD_KEY] = self.method
            _context.bind(**kv)
            if opts.log_calls:
                opts.log_func("start")
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
            self._log_end(opts, code, details, exc, ms)
        except Exception:  # noqa: S110 - telemetry never raises into the RPC
            pass
        finally:
            if reset:
                self.close()
            else:
                # Not in the RPC's own Context: leave it to be discarded with the RPC.
                self._cm = None

    @staticmethod
    def _log_end(
        opts: _Options,
        code: grpc.StatusCode,
        details: str | bytes | None,
        exc: BaseException | None,
        ms: float,
    ) -> None:
        if opts.is_error(code):
            text = _text(details)
            _api.error(
                "end",
                err=exc if exc is not None else (text or code.name),
                **{
                    _keys.GRPC_CODE_KEY: code.name,
                    _keys.GRPC_STATUS_KEY: text,
                    _keys.GRPC_DURATION_KEY: ms,
                },
            )
        elif opts.log_calls:
            opts.log_func("end", **{_keys.GRPC_CODE_KEY: code.name, _keys.GRPC_DURATION_KEY: ms})

    def close(self) -> None:
        """Leave the log context; quietly, when finalised from another context."""
        cm, self._cm = self._cm, None
        if cm is not None:
            # ValueError: finalised outside the RPC's contextvars.Context (a generator
            # collected elsewhere); that Context is discarded with the RPC, nothing leaks.
            with contextlib.suppress(ValueError):
                cm.__exit__(None, None, None)


def _outcome(
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
    if isinstance(code, int) and not isinstance(code, grpc.StatusCode):
        code = _CODES.get(code)
    details = context.details()
    if exc is None:
        if code is None and _cancelled(context, aio):
            return grpc.StatusCode.CANCELLED, "cancelled by the client", None
        return (code or grpc.StatusCode.OK), details, None
    if code is not None and code is not grpc.StatusCode.OK:
        # context.abort(): the code and details say it all, the exception is plumbing.
        return code, details, None
    if isinstance(exc, grpc.RpcError) and isinstance(exc, grpc.Call):
        # A failed outgoing call re-raised by the handler.
        return exc.code(), exc.details(), exc
    return grpc.StatusCode.UNKNOWN, details or repr(exc), exc


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def _cancelled(context: grpc.ServicerContext | grpc.aio.ServicerContext, aio: bool) -> bool:
    if aio:
        return bool(context.cancelled())
    return not context.is_active()


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
    """

    def __init__(
        self,
        *,
        error_func: ErrorFunc | None = None,
        disable_call_logging: bool = False,
        disable_call_id: bool = False,
        call_log_func: CallLogFunc | None = None,
    ) -> None:
        self._opts = _Options(error_func, disable_call_logging, disable_call_id, call_log_func)
        self._unary = _Wrapped()

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
        service, method = _split_method(handler_call_details.method)
        metadata = handler_call_details.invocation_metadata
        opts = self._opts

        behavior = handler.unary_stream or handler.stream_stream

        def stream_behavior(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            call = _ServerCall(opts, service, method)
            ctx = contextvars.copy_context()
            ctx.run(call.open, metadata)
            stream = _SyncResponseStream(ctx, call, context)
            # Cancelled or failed before the stream was exhausted: end it anyway.
            context.add_callback(stream.terminated)
            try:
                stream.it = iter(ctx.run(behavior, request, context))
            except Exception as exc:
                ctx.run(stream.fail, exc)
                raise
            return stream

        wrapped: Callable[..., Any] = stream_behavior
        return _replace_behavior(handler, wrapped)

    def _wrap_unary(self, full_method: str, handler: grpc.RpcMethodHandler) -> Any:
        service, method = _split_method(full_method)
        call_args = (self._opts, service, method, handler.unary_unary or handler.stream_unary)

        def unary_behavior(request: Any, context: grpc.ServicerContext) -> Any:
            return contextvars.copy_context().run(_serve_unary, call_args, request, context)

        return _replace_behavior(handler, unary_behavior)


def _serve_unary(
    call_args: tuple[_Options, str, str, Callable[..., Any]],
    request: Any,
    context: grpc.ServicerContext,
) -> Any:
    opts, service, method, behavior = call_args
    call = _ServerCall(opts, service, method)
    call.open(_metadata_of(context))
    try:
        response = behavior(request, context)
    except Exception as exc:
        call.finish(*_outcome(context, exc))
        raise
    call.finish(*_outcome(context, None))
    return response


class _SyncResponseStream:
    """A served response stream whose iteration runs in the RPC's own Context."""

    __slots__ = ("_call", "_context", "_ctx", "it")

    def __init__(
        self, ctx: contextvars.Context, call: _ServerCall, context: grpc.ServicerContext
    ) -> None:
        self._ctx = ctx
        self._call = call
        self._context = context
        self.it: Iterator[Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return self._ctx.run(self._next)

    def _next(self) -> Any:
        assert self.it is not None  # set before the server iterates
        try:
            return next(self.it)
        except StopIteration:
            self._call.finish(*_outcome(self._context, None))
            raise
        except Exception as exc:
            self.fail(exc)
            raise

    def fail(self, exc: BaseException) -> None:
        self._call.finish(*_outcome(self._context, exc))

    def terminated(self) -> None:
        # Runs on a gRPC thread when the RPC ends; a no-op once the stream has finished.
        # The RPC's Context may be busy in the handler's thread, so log from a copy of it
        # (same log context) and leave the reset to the discarded Context.
        self._ctx.copy().run(
            self._call.finish,
            grpc.StatusCode.CANCELLED,
            "cancelled before the response stream ended",
            None,
            reset=False,
        )


class _Wrapped:
    """Wrapped unary handlers by (method, original handler): built once, not per RPC.

    A server's handlers are the same objects from one RPC to the next, so the per-RPC work
    is a dictionary lookup. Bounded: a server inventing handlers per RPC starts over.
    """

    __slots__ = ("_cache",)
    MAX = 1024

    def __init__(self) -> None:
        self._cache: dict[tuple[str, Any], Any] = {}

    def get(self, method: str, handler: Any, build: Callable[[str, Any], Any]) -> Any:
        key = (method, handler)
        try:
            wrapped = self._cache.get(key)
        except TypeError:  # a handler holding something unhashable
            return build(method, handler)
        if wrapped is None:
            wrapped = build(method, handler)
            if len(self._cache) >= self.MAX:
                self._cache.clear()
            self._cache[key] = wrapped
        return wrapped


def _metadata_of(
    context: grpc.ServicerContext | grpc.aio.ServicerContext,
) -> Sequence[tuple[str, str | bytes]] | None:
    try:
        return context.invocation_metadata()  # type: ignore[no-any-return]
    except Exception:  # a context without metadata: a fresh request id
        return None


def _replace_behavior(handler: grpc.RpcMethodHandler, behavior: Callable[..., Any]) -> Any:
    """The same handler (serializers, kind) with ``behavior`` in place of the original."""
    deser, ser = handler.request_deserializer, handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(behavior, deser, ser)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(behavior, deser, ser)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(behavior, deser, ser)
    return grpc.unary_unary_rpc_method_handler(behavior, deser, ser)


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
        self._opts = _Options(error_func, disable_call_logging, disable_call_id, call_log_func)
        self._unary = _Wrapped()

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
        service, method = _split_method(handler_call_details.method)
        metadata = handler_call_details.invocation_metadata
        opts = self._opts

        behavior = handler.unary_stream or handler.stream_stream

        async def stream_behavior(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            call = _ServerCall(opts, service, method)
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

        wrapped: Callable[..., Any] = stream_behavior
        return _replace_behavior(handler, wrapped)

    def _wrap_unary(self, full_method: str, handler: grpc.RpcMethodHandler) -> Any:
        service, method = _split_method(full_method)
        behavior = handler.unary_unary or handler.stream_unary
        opts = self._opts

        async def unary_behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = _ServerCall(opts, service, method)
            call.open(_metadata_of(context))
            try:
                response = behavior(request, context)
                if inspect.isawaitable(response):
                    response = await response
            except BaseException as exc:
                call.finish(*_aio_outcome(context, exc))
                raise
            call.finish(*_aio_outcome(context, None))
            return response

        return _replace_behavior(handler, unary_behavior)


def _aio_outcome(
    context: grpc.aio.ServicerContext, exc: BaseException | None
) -> tuple[grpc.StatusCode, str | bytes | None, BaseException | None]:
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED, "cancelled", None
    if isinstance(exc, grpc.aio.AbortError):
        code, details, _ = _outcome(context, None, aio=True)
        return code, details, None
    return _outcome(context, exc, aio=True)


# --------------------------------------------------------------------------- client side


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _ClientCallDetails(_CallDetails, grpc.ClientCallDetails):  # type: ignore[misc]  # grpc is untyped
    """``grpc.ClientCallDetails`` with the request id added to the metadata."""


class _AioClientCallDetails(_CallDetails, grpc.aio.ClientCallDetails):  # type: ignore[misc]  # grpc is untyped
    """``grpc.aio.ClientCallDetails`` with the request id added to the metadata."""


class _ClientCall:
    """One outgoing call, logged in the caller's log context."""

    __slots__ = ("_ctx", "_opts", "_start", "method", "service")

    def __init__(self, opts: _Options, full_method: str) -> None:
        self._opts = opts
        self.service, self.method = _split_method(full_method)
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

    def aio_done(self, call: Any) -> None:
        """Done-callback of a grpc.aio call, whose status getters are coroutines."""
        try:
            task = asyncio.get_running_loop().create_task(self._aio_log_end(call))
        except Exception:
            return
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)

    async def _aio_log_end(self, call: Any) -> None:
        try:
            code, details = await call.code(), await call.details()
        except Exception:
            return
        self._run(self._log_end, code, details)

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
        opts = self._opts
        head = {_keys.GRPC_SERVICE_KEY: self.service, _keys.GRPC_METHOD_KEY: self.method}
        if opts.is_error(code):
            text = _text(details)
            _api.error(
                "end",
                err=text or code.name,
                **head,
                **{
                    _keys.GRPC_CODE_KEY: code.name,
                    _keys.GRPC_STATUS_KEY: text,
                    _keys.GRPC_DURATION_KEY: ms,
                },
            )
        elif opts.log_calls:
            opts.log_func(
                "end", **head, **{_keys.GRPC_CODE_KEY: code.name, _keys.GRPC_DURATION_KEY: ms}
            )


# Log tasks of grpc.aio calls, kept alive until they run.
_TASKS: set[asyncio.Task[None]] = set()


def _with_call_id(details: Any, opts: _Options, cls: type[_CallDetails]) -> Any:
    """The call details with an ``x-request-id`` metadata entry, unless already set: the
    caller's bound request id (so one id follows a request across services), else a new
    short one."""
    if not opts.call_ids:
        return details
    metadata = list(details.metadata or ())
    if any(k == _REQUEST_ID for k, _ in metadata):
        return details
    metadata.append((_REQUEST_ID, _caller_request_id() or new_request_id()))
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
    """

    def __init__(
        self,
        *,
        error_func: ErrorFunc | None = None,
        disable_call_logging: bool = False,
        disable_call_id: bool = False,
        call_log_func: CallLogFunc | None = None,
    ) -> None:
        self._opts = _Options(error_func, disable_call_logging, disable_call_id, call_log_func)

    def _intercept(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        call = _ClientCall(self._opts, details.method)
        outcome = continuation(_with_call_id(details, self._opts, _ClientCallDetails), request)
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


class _AioClientInterceptor:
    """Shared body of the four grpc.aio client interceptor kinds."""

    def __init__(self, opts: _Options) -> None:
        self._opts = opts

    async def _intercept(
        self, continuation: Callable[[Any, Any], Any], details: Any, request: Any
    ) -> Any:
        call = _ClientCall(self._opts, _text(details.method))
        outcome = await continuation(
            _with_call_id(details, self._opts, _AioClientCallDetails), request
        )
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
    """
    opts = _Options(error_func, disable_call_logging, disable_call_id, call_log_func)
    return [
        _AioUnaryUnary(opts),
        _AioUnaryStream(opts),
        _AioStreamUnary(opts),
        _AioStreamStream(opts),
    ]
