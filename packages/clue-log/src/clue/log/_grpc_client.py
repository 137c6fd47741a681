"""gRPC client interceptor for ``grpc.intercept_channel`` (extra ``clue-log[grpc]``).

A log of every outgoing call in the caller's context; the call and the request id it sends are
shared with the aio client.
"""

from __future__ import annotations

import contextlib
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
    as_text,
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
        # Hot path (every outgoing call).
        opts = self._opts
        call = ClientCall(opts, details.method)
        try:
            outcome = continuation(
                with_call_id(details, opts, _ClientCallDetails) if opts.call_ids else details,
                request,
            )
        except Exception as exc:
            # grpc refused to make the call (a closed channel): it ends here, as grpc ends a
            # blocking call it refuses, with INTERNAL.
            call.refused(grpc.StatusCode.INTERNAL, exc)
            raise
        if outcome.done():
            # A blocking unary call has ended already: its end is logged here, in the
            # caller's own context, without a done-callback.
            call.end(outcome)
        else:
            call.keep_context()
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

    @staticmethod
    def metadata_of(items: Any, *extra: tuple[str, str]) -> Any:
        """The metadata handed on, of the caller's pairs and ``extra``."""
        raise NotImplementedError


class _ClientCallDetails(CallDetails, grpc.ClientCallDetails):  # type: ignore[misc]  # grpc is untyped
    """``grpc.ClientCallDetails`` with the request id added to the metadata."""

    @staticmethod
    def metadata_of(items: Any, *extra: tuple[str, str]) -> Any:
        """The metadata handed on: a list of the caller's pairs and ``extra``."""
        return [*items, *extra]


class Method:
    """What a method name gives every call of it, built once per name and key names.

    Its service and method, and the start line's key/values, which are the end line's head.
    """

    __slots__ = ("head", "method", "method_key", "service", "service_key")

    def __init__(self, full: str) -> None:
        self.service, self.method = split_method(full)
        self.service_key = _keys.GRPC_SERVICE_KEY
        self.method_key = _keys.GRPC_METHOD_KEY
        # Shared by every call: only ever passed on as ``**head``, never changed.
        self.head: dict[str, str] = {self.service_key: self.service, self.method_key: self.method}


# Method name -> Method, bounded (the names are the application's stubs').
_METHODS: dict[str | bytes, Method] = {}
_MAX_METHODS = 1024


def method_of(full: str | bytes) -> Method:
    """The cached :class:`Method` of a full method name (``/pkg.Service/Method``)."""
    if type(full) is not str and type(full) is not bytes:
        # A str or bytes subclass may hash or compare as it likes: its plain text, uncached.
        return Method(_plain_text(full))
    m = _METHODS.get(full)
    if (
        m is None
        or m.service_key is not _keys.GRPC_SERVICE_KEY
        or m.method_key is not _keys.GRPC_METHOD_KEY
    ):
        if len(_METHODS) >= _MAX_METHODS:
            _METHODS.clear()
        m = _METHODS[full] = Method(as_text(full))
    return m


def _plain_text(name: object) -> str:
    # The text of a method name whatever its type (grpc judges the name itself).
    if isinstance(name, str):
        return str.__str__(name)
    if isinstance(name, bytes):
        return bytes.decode(name, "utf-8", "replace")
    return ""


class ClientCall:
    """One outgoing call, logged in the caller's log context."""

    __slots__ = ("_ctx", "_m", "_opts", "_start")

    def __init__(self, opts: Options, full_method: str | bytes) -> None:
        self._opts = opts
        self._m = m = method_of(full_method)
        self._ctx: contextvars.Context | None = None
        if opts.log_calls:
            log_line(opts.log_func, "start", m.head)
        self._start = perf_counter()

    @property
    def service(self) -> str:
        return self._m.service

    @property
    def method(self) -> str:
        return self._m.method

    def keep_context(self) -> None:
        """Keep the caller's Context: done-callbacks run on gRPC's threads or loop callbacks."""
        self._ctx = contextvars.copy_context()

    def end(self, call: Any) -> None:
        """Log the end of a call that is done, in the current context. Never raises."""
        try:
            code = call.code()
            if code is grpc.StatusCode.OK and self._opts.ok_plain:
                self.end_ok()
            else:
                self._log_end(code, call.details())
        except Exception:  # noqa: S110 - telemetry never raises into the call
            pass

    def end_ok(self) -> None:
        """The common end: an OK call under the default ``error_func``."""
        opts = self._opts
        if opts.log_calls:
            ms = elapsed_ms(self._start, perf_counter())
            log_line(
                opts.log_func,
                "end",
                {**self._m.head, _keys.GRPC_CODE_KEY: "OK", _keys.GRPC_DURATION_KEY: ms},
            )

    def refused(
        self, code: grpc.StatusCode, exc: BaseException, details: str | bytes | None = None
    ) -> None:
        """Log the end of a call that grpc raised instead of making. Never raises."""
        with contextlib.suppress(Exception):  # telemetry never raises into the call
            self._log_end(code, details, exc)

    def done(self, call: Any) -> None:
        """Done-callback of a sync call: log its end (or error) in the caller's context."""
        self._run(self.end, call)

    def _run(self, fn: Callable[..., None], *args: Any) -> None:
        ctx = self._ctx
        try:
            if ctx is None:
                fn(*args)
                return
            try:
                ctx.run(fn, *args)
            except RuntimeError:
                # The caller's Context is busy on another thread: log from a copy of it.
                ctx.copy().run(fn, *args)
        except Exception:  # noqa: S110 - telemetry never raises into the call
            pass

    def _log_end(
        self, code: grpc.StatusCode, details: str | bytes | None, exc: BaseException | None = None
    ) -> None:
        ms = elapsed_ms(self._start, perf_counter())
        log_end(self._opts, self._m.head, code, details, exc, ms)


def with_call_id(details: Any, opts: Options, cls: type[CallDetails]) -> Any:
    """The call details with an ``x-request-id`` metadata entry, unless already set.

    The id is the caller's bound request id (so one id follows a request across services), else a
    new short one. The caller's metadata is kept whatever iterable it is (a generator is read
    once, here), and is handed on as ``cls.metadata_of`` builds it. Never raises: metadata
    clue cannot read goes on as given, for grpc to judge as it would without clue.
    """
    # Hot path (every outgoing call).
    if not opts.call_ids:
        return details
    given = details.metadata
    try:
        if not given:  # None, or grpc.aio's empty Metadata: nothing to read
            items: Any = ()
        elif type(given) is list or type(given) is tuple:
            items = given
        else:
            items = tuple(given)
        for k, _ in items:
            if k in _REQUEST_ID_KEYS:
                if items is given:
                    return details
                metadata = cls.metadata_of(items)
                break
        else:
            pair = (REQUEST_ID_METADATA, _caller_request_id() or new_request_id())
            metadata = cls.metadata_of(items, pair)
    except Exception:
        return details
    # tuple.__new__ directly: the named tuple's own __new__ is one Python call more.
    return tuple.__new__(
        cls,
        (
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        ),
    )


# grpc takes metadata keys as bytes too.
_REQUEST_ID_KEYS = (REQUEST_ID_METADATA, REQUEST_ID_METADATA.encode())


# Bound request ids already checked -> the id to send (None: malformed), bounded.
_CHECKED: dict[str, str | None] = {}
_MAX_CHECKED = 256


def _caller_request_id() -> str | None:
    """The request id bound in the caller's log context, if well-formed."""
    ctx = _context.current.get()
    bound = ctx.bound if ctx is not None else _context.root.bound
    key = _keys.REQUEST_ID_KEY
    for k, value in reversed(bound):
        if k == key:
            v = value
            if type(v) is not str:
                if not isinstance(v, str):
                    return None
                # A str subclass may hash, compare or print as it likes: its plain text is
                # what is checked and sent.
                v = str.__str__(v)
            try:
                return _CHECKED[v]
            except KeyError:
                pass
            if len(_CHECKED) >= _MAX_CHECKED:
                _CHECKED.clear()
            ok = _CHECKED[v] = v if request_id_from(v) == v else None
            return ok
    return None
