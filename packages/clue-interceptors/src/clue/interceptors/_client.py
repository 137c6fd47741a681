"""The grpcio (sync) client interceptor: stamps requests, reads responses."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from clue.interceptors._streams import SendStream
from clue.interceptors._tracing import StreamTrace, TracingOptions

__all__ = ["TraceStreamClientInterceptor", "TracedCall"]

if TYPE_CHECKING:
    # grpc ships no type information: mypy sees plain bases, grpc checks the real ones.
    _InterceptorBase = object
    _CallBase = object
else:

    class _InterceptorBase(
        grpc.StreamStreamClientInterceptor,
        grpc.StreamUnaryClientInterceptor,
        grpc.UnaryStreamClientInterceptor,
    ):
        __slots__ = ()

    class _CallBase(grpc.Call, grpc.Future):
        __slots__ = ()


class TraceStreamClientInterceptor(TracingOptions, _InterceptorBase):
    """Carry the trace context in each message of client-side gRPC streams (grpcio).

    Each request of a client-streaming or bidirectional call is stamped with the
    context current when it is taken from the request iterator (the caller's context,
    plus any span the request generator opened around its ``yield``); each response of
    a server-streaming or bidirectional call is read, so :func:`iter_with_context` and
    :func:`get_trace_stream_recv_context` give its context. Unary calls are untouched.
    The returned call keeps the ``grpc.Call`` API (``cancel``, ``code``, ``details``...).

    Args:
        field: the ``map<string,string>`` message field that carries the context.
        message_spans: open a ``send`` / ``receive`` span per message (named
            ``"<service>/<method> send"``), linked to the span current at call time.
        overwrite: stamp messages that already carry a ``traceparent`` too (set
            ``False`` to keep contexts stamped earlier with :func:`inject`).
        tracer_provider: the provider of per-message spans (the global one by default).

    Raises:
        ValueError: an option is invalid.

    Example:
        >>> import grpc
        >>> channel = grpc.intercept_channel(
        ...     grpc.insecure_channel("127.0.0.1:50051"), TraceStreamClientInterceptor()
        ... )

    .. versionadded:: 0.1.0
    """

    def intercept_stream_stream(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: Any,
        request_iterator: Iterator[Any],
    ) -> TracedCall:
        """Stamp each request, read each response."""
        stream, requests = self._send_stream(client_call_details, request_iterator)
        return TracedCall(continuation(client_call_details, requests), stream)

    def intercept_stream_unary(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: Any,
        request_iterator: Iterator[Any],
    ) -> Any:
        """Stamp each request."""
        _, requests = self._send_stream(client_call_details, request_iterator)
        return continuation(client_call_details, requests)

    def intercept_unary_stream(
        self,
        continuation: Callable[[Any, Any], Any],
        client_call_details: Any,
        request: Any,
    ) -> TracedCall:
        """Read each response."""
        stream = self._tracing.open(client_call_details.method)
        return TracedCall(continuation(client_call_details, request), stream)

    def _send_stream(
        self, client_call_details: Any, request_iterator: Iterator[Any]
    ) -> tuple[StreamTrace, SendStream[Any]]:
        # Requests are consumed on another thread: each step runs in the caller's context.
        stream = self._tracing.open(client_call_details.method)
        return stream, SendStream(request_iterator, stream, contextvars.copy_context())


class TracedCall(_CallBase):
    """A streaming call whose responses are read as they are iterated.

    Everything but iteration is the wrapped call's: it is a ``grpc.Call`` and a
    ``grpc.Future``, and attributes it does not define are looked up on the call.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_call", "_stream")

    def __init__(self, call: Any, stream: StreamTrace) -> None:
        self._call = call
        self._stream = stream

    def __iter__(self) -> TracedCall:
        return self

    def __next__(self) -> Any:
        response = next(self._call)
        self._stream.receive(response)
        return response

    def next(self) -> Any:
        """Same as ``next(call)``, as grpc's own calls offer it."""
        return self.__next__()

    def __getattr__(self, name: str) -> Any:
        if name in TracedCall.__slots__:  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._call, name)

    # grpc.RpcContext
    def is_active(self) -> bool:
        """Whether the RPC is active."""
        return bool(self._call.is_active())

    def time_remaining(self) -> float | None:
        """Seconds left before the RPC times out."""
        remaining: float | None = self._call.time_remaining()
        return remaining

    def cancel(self) -> bool:
        """Cancel the RPC."""
        return bool(self._call.cancel())

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` when the RPC terminates."""
        return bool(self._call.add_callback(callback))

    # grpc.Call
    def initial_metadata(self) -> Any:
        """The initial metadata the server sent."""
        return self._call.initial_metadata()

    def trailing_metadata(self) -> Any:
        """The trailing metadata the server sent."""
        return self._call.trailing_metadata()

    def code(self) -> Any:
        """The status code the server sent (blocks until the RPC ends)."""
        return self._call.code()

    def details(self) -> Any:
        """The status details the server sent (blocks until the RPC ends)."""
        return self._call.details()

    # grpc.Future
    def cancelled(self) -> bool:
        """Whether the RPC was cancelled."""
        return bool(self._call.cancelled())

    def running(self) -> bool:
        """Whether the RPC is still running."""
        return bool(self._call.running())

    def done(self) -> bool:
        """Whether the RPC is done."""
        return bool(self._call.done())

    def result(self, timeout: float | None = None) -> Any:
        """The RPC's result (see ``grpc.Future.result``)."""
        return self._call.result(timeout)

    def exception(self, timeout: float | None = None) -> Any:
        """The RPC's exception, if any (see ``grpc.Future.exception``)."""
        return self._call.exception(timeout)

    def traceback(self, timeout: float | None = None) -> Any:
        """The traceback of the RPC's exception, if any."""
        return self._call.traceback(timeout)

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        """Call ``fn`` with the call when the RPC is done."""
        self._call.add_done_callback(fn)
