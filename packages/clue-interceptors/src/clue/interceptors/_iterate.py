"""Receive helpers: iterate a stream as ``(context, message)`` pairs.

Each message's context is attached (made current) while the consumer handles that
message and detached when the next one is asked for, so spans and log contexts the
handler opens belong to the message's trace. On an intercepted stream the pairs carry
what the interceptor extracted (including its per-message ``receive`` span); on any
other iterable the helpers extract the metadata themselves, so they also serve
other transports (websockets, queues).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Generic, TypeVar

from opentelemetry import context as otel_context

from clue.interceptors import _carrier, _debugmark, _recv, _scope

__all__ = ["aiter_with_context", "iter_with_context"]

M = TypeVar("M")


def iter_with_context(
    stream: Iterable[M], *, field: str = _carrier.DEFAULT_FIELD
) -> Iterator[tuple[otel_context.Context, M]]:
    """Iterate a message stream as ``(context, message)`` pairs.

    Args:
        stream: a request iterator given to a gRPC handler, a client-side response
            stream, or any iterable of messages.
        field: the trace metadata field, for streams no interceptor read already.

    Returns:
        An iterator of pairs; while the consumer handles a pair its context is the
        current OpenTelemetry context. A message whose metadata is missing or
        malformed comes with the stream's own context.

    Example:
        >>> msgs = [{"text": "hi", "trace_metadata": {}}]
        >>> [m["text"] for _, m in iter_with_context(msgs)]
        ['hi']

    .. versionadded:: 0.1.0
    """
    _carrier.validate_field(field)
    return _iterate(stream, field)


def _iterate(stream: Iterable[M], field: str) -> Iterator[tuple[otel_context.Context, M]]:
    base = otel_context.get_current()
    for message in stream:
        ctx = _context_of(message, base, field)
        attachment = _scope.attach(ctx)
        end_debug = _debugmark.enter_debug(ctx)
        try:
            yield ctx, message
        finally:
            if end_debug is not None:
                end_debug()
            _scope.detach(attachment)


def aiter_with_context(
    stream: AsyncIterable[M], *, field: str = _carrier.DEFAULT_FIELD
) -> ContextAsyncIterator[M]:
    """Iterate an asynchronous message stream as ``(context, message)`` pairs.

    The asynchronous twin of :func:`iter_with_context`. It is an iterator object rather
    than an async generator so that each context is attached and detached in the
    consumer's own task. Breaking out of the loop leaves the last message's context
    current until the task ends; ``contextlib.aclosing(...)`` (or ``await it.aclose()``)
    restores the previous context right away.

    Args:
        stream: a request iterator given to a ``grpc.aio`` handler, a ``grpc.aio``
            call, or any async iterable of messages.
        field: the trace metadata field, for streams no interceptor read already.

    Returns:
        An async iterator of pairs.

    .. versionadded:: 0.1.0
    """
    _carrier.validate_field(field)
    return ContextAsyncIterator(stream, field)


class ContextAsyncIterator(Generic[M]):
    """Async iterator of ``(context, message)`` pairs (see :func:`aiter_with_context`)."""

    __slots__ = ("_attachment", "_base", "_end_debug", "_field", "_iterator", "_stream")

    def __init__(self, stream: AsyncIterable[M], field: str) -> None:
        self._stream = stream
        self._field = field
        self._iterator: AsyncIterator[M] | None = None
        self._base: otel_context.Context | None = None
        self._attachment: _scope.Attachment | None = None
        self._end_debug: Callable[[], None] | None = None

    def __aiter__(self) -> ContextAsyncIterator[M]:
        return self

    async def __anext__(self) -> tuple[otel_context.Context, M]:
        self._release()
        if self._iterator is None:
            self._base = otel_context.get_current()
            self._iterator = aiter(self._stream)
        message = await anext(self._iterator)
        assert self._base is not None  # set with the iterator
        ctx = _context_of(message, self._base, self._field)
        self._attachment = _scope.attach(ctx)
        self._end_debug = _debugmark.enter_debug(ctx)
        return ctx, message

    async def aclose(self) -> None:
        """Detach the last message's context now."""
        self._release()

    def _release(self) -> None:
        if self._end_debug is not None:
            end_debug, self._end_debug = self._end_debug, None
            end_debug()
        if self._attachment is not None:
            attachment, self._attachment = self._attachment, None
            _scope.detach(attachment)


def _context_of(message: object, base: otel_context.Context, field: str) -> otel_context.Context:
    # What an interceptor recorded for this very message, else read it here.
    ctx = _recv.last_received(message)
    if ctx is None:
        ctx = _carrier.extract(message, field=field, context=base)
        _recv.note(ctx)
    return ctx
