"""Message streams as the interceptors hand them on: stamping or reading each message.

These wrappers do not depend on grpc: they wrap the iterators gRPC gives a handler or
takes from a caller, and a :class:`~clue.interceptors._tracing.StreamTrace` does the
work per message.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Generic, TypeVar

from clue.interceptors._tracing import StreamTrace

__all__ = ["AioRecvStream", "AioSendStream", "RecvStream", "SendStream"]

M = TypeVar("M")


class SendStream(Generic[M]):
    """An outgoing message iterator; each message is stamped as it is taken.

    gRPC's sync client consumes request iterators on a thread of its own, which does
    not see the caller's ``contextvars``: given ``context`` (a copy taken at call
    time), each step runs in it, so the caller's span, and spans the request generator
    opens around its ``yield``, are what each message carries.
    """

    __slots__ = ("_context", "_iterator", "_trace")

    def __init__(
        self,
        messages: Iterable[M],
        trace: StreamTrace,
        context: contextvars.Context | None = None,
    ) -> None:
        self._iterator = iter(messages)
        self._trace = trace
        self._context = context

    def __iter__(self) -> SendStream[M]:
        return self

    def __next__(self) -> M:
        if self._context is None:
            return self._step()
        return self._context.run(self._step)

    def _step(self) -> M:
        message = next(self._iterator)
        self._trace.send(message)
        return message


class RecvStream(Generic[M]):
    """An incoming message iterator; each message's trace context is read and recorded."""

    __slots__ = ("_iterator", "_trace")

    def __init__(self, messages: Iterable[M], trace: StreamTrace) -> None:
        self._iterator = iter(messages)
        self._trace = trace

    def __iter__(self) -> RecvStream[M]:
        return self

    def __next__(self) -> M:
        message = next(self._iterator)
        self._trace.receive(message)
        return message


class AioSendStream(Generic[M]):
    """The asynchronous :class:`SendStream`, over a sync or async iterable."""

    __slots__ = ("_aiterator", "_iterator", "_trace")

    def __init__(self, messages: Iterable[M] | AsyncIterable[M], trace: StreamTrace) -> None:
        self._aiterator: AsyncIterator[M] | None = None
        self._iterator: Iterator[M] | None = None
        if isinstance(messages, AsyncIterable):
            self._aiterator = aiter(messages)
        else:
            self._iterator = iter(messages)
        self._trace = trace

    def __aiter__(self) -> AioSendStream[M]:
        return self

    async def __anext__(self) -> M:
        if self._aiterator is not None:
            message = await anext(self._aiterator)
        else:
            assert self._iterator is not None  # one of the two is set
            try:
                message = next(self._iterator)
            except StopIteration:
                raise StopAsyncIteration from None
        self._trace.send(message)
        return message


class AioRecvStream(Generic[M]):
    """The asynchronous :class:`RecvStream`."""

    __slots__ = ("_iterator", "_messages", "_trace")

    def __init__(self, messages: AsyncIterable[M], trace: StreamTrace) -> None:
        self._messages = messages
        self._iterator: AsyncIterator[M] | None = None
        self._trace = trace

    def __aiter__(self) -> AioRecvStream[M]:
        return self

    async def __anext__(self) -> M:
        # Lazily: a handler that reads with `context.read()` never starts this one.
        if self._iterator is None:
            self._iterator = aiter(self._messages)
        message = await anext(self._iterator)
        self._trace.receive(message)
        return message
