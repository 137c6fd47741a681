"""Per-message debug logs: a stream message carrying a trusted ``clue.debug`` mark."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest
from chatpb import chat_pb2, chat_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry import context as otel_context

from clue.interceptors import (
    AioTraceStreamServerInterceptor,
    TraceStreamServerInterceptor,
    _debugmark,
    aiter_with_context,
    extract,
    inject,
    iter_with_context,
)

Note = chat_pb2.Note
KEY = "clue.debug"


class FakeControl:
    """A log control whose debug flag is a context variable; counts scopes."""

    def __init__(self) -> None:
        self.flag: contextvars.ContextVar[bool] = contextvars.ContextVar("flag", default=False)
        self.scopes = 0

    @contextlib.contextmanager
    def debug_scope(self) -> Iterator[None]:
        self.scopes += 1
        token = self.flag.set(True)
        try:
            yield
        finally:
            self.flag.reset(token)


@pytest.fixture
def control(monkeypatch: pytest.MonkeyPatch) -> FakeControl:
    fake = FakeControl()
    monkeypatch.setattr(_debugmark, "_found", fake)
    return fake


def _mark(seconds: float) -> str:
    return str(int((time.time() + seconds) * 1000))


# (mark or None, honoured by a trusting receiver with max_mark_seconds=60)
CASES = [
    (_mark(30), True),
    (None, False),
    (_mark(-5), False),  # expired
    ("x" * 9000, False),  # oversized
    (_mark(600), False),  # beyond the receiver's maximum
    ("12;34", False),  # malformed
    (_mark(30), True),
]


def _stamped(cases: list[tuple[str | None, bool]]) -> list[Any]:
    notes = []
    for i, (mark, _) in enumerate(cases):
        ctx = baggage.set_baggage("user", "1", context=otel_context.Context())
        if mark is not None:
            ctx = baggage.set_baggage(KEY, mark, context=ctx)
        note = Note(text=str(i))
        inject(note, context=ctx)
        notes.append(note)
    return notes


def _answer(control: FakeControl, ctx: Any, note: Any) -> Any:
    bags = ",".join(f"{k}={v}" for k, v in sorted(baggage.get_all().items()))
    return Note(text=f"{note.text}:{control.flag.get()}", seen_baggage=bags)


class SyncChat(chat_pb2_grpc.ChatServicer):
    def __init__(self, control: FakeControl) -> None:
        self.control = control

    def Talk(self, request_iterator: Any, context: Any) -> Any:
        for ctx, note in iter_with_context(request_iterator):
            yield _answer(self.control, ctx, note)
        # After the loop the stream's own context has debug off again.
        yield Note(text=f"end:{self.control.flag.get()}")


class AioChat(chat_pb2_grpc.ChatServicer):
    def __init__(self, control: FakeControl) -> None:
        self.control = control

    async def Talk(self, request_iterator: Any, context: Any) -> Any:
        async for ctx, note in aiter_with_context(request_iterator):
            yield _answer(self.control, ctx, note)
        yield Note(text=f"end:{self.control.flag.get()}")


def _check(replies: list[Any], cases: list[tuple[str | None, bool]], trusted: bool) -> None:
    *per_message, end = replies
    assert end.text == "end:False"
    assert len(per_message) == len(cases)
    for reply, (mark, valid) in zip(per_message, cases, strict=True):
        honoured = trusted and valid
        assert reply.text.endswith(f":{honoured}"), (reply.text, mark)
        # A mark is kept only when it was verified; the rest of the baggage always is.
        if honoured:
            assert reply.seen_baggage == f"{KEY}={mark},user=1"
        else:
            assert f"{KEY}=" not in reply.seen_baggage
            if mark is None or len(mark) < 100:
                # (An oversized entry may cost the whole header, depending on the
                # OpenTelemetry version; it is never honoured nor forwarded.)
                assert reply.seen_baggage == "user=1"


@pytest.mark.parametrize("trusted", [True, False])
def test_sync_stream_debugs_exactly_the_trusted_marked_messages(
    control: FakeControl, trusted: bool
) -> None:
    """Sync: each message with a valid mark is handled with debug on, the others not."""
    server = grpc.server(
        futures.ThreadPoolExecutor(2),
        interceptors=[TraceStreamServerInterceptor(trust_baggage=trusted, max_mark_seconds=60)],
    )
    chat_pb2_grpc.add_ChatServicer_to_server(SyncChat(control), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            replies = list(chat_pb2_grpc.ChatStub(channel).Talk(iter(_stamped(CASES))))
        _check(replies, CASES, trusted)
        assert control.scopes == (2 if trusted else 0)
    finally:
        server.stop(None).wait(5)


@pytest.mark.parametrize("trusted", [True, False])
async def test_aio_stream_debugs_exactly_the_trusted_marked_messages(
    control: FakeControl, trusted: bool
) -> None:
    """grpc.aio: the same, message by message."""
    server = grpc.aio.server(
        interceptors=[AioTraceStreamServerInterceptor(trust_baggage=trusted, max_mark_seconds=60)]
    )
    chat_pb2_grpc.add_ChatServicer_to_server(AioChat(control), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = chat_pb2_grpc.ChatStub(channel).Talk(iter(_stamped(CASES)))
            replies = [r async for r in call]
        _check(replies, CASES, trusted)
        assert control.scopes == (2 if trusted else 0)
    finally:
        await server.stop(None)


def test_forward_keeps_an_unverified_mark(control: FakeControl) -> None:
    """forward_baggage_mark keeps a mark it did not verify, without honouring it."""
    server = grpc.server(
        futures.ThreadPoolExecutor(2),
        interceptors=[TraceStreamServerInterceptor(forward_baggage_mark=True)],
    )
    chat_pb2_grpc.add_ChatServicer_to_server(SyncChat(control), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    mark = _mark(30)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            replies = list(chat_pb2_grpc.ChatStub(channel).Talk(iter(_stamped([(mark, True)]))))
        assert replies[0].text == "0:False"
        assert replies[0].seen_baggage == f"{KEY}={mark},user=1"
    finally:
        server.stop(None).wait(5)


def _reference(value: object, now: float, max_seconds: float) -> bool:
    import re

    if not isinstance(value, str) or re.fullmatch(r"[0-9]{1,16}", value) is None:
        return False
    return now < int(value) / 1000 <= now + max_seconds


@given(
    value=st.one_of(
        st.text(max_size=30),
        st.integers(min_value=-120_000, max_value=200_000).map(
            lambda d: str(int(time.time() * 1000) + d)
        ),
        st.integers(),
        st.none(),
    ),
    max_seconds=st.floats(min_value=0.001, max_value=3600),
)
def test_mark_validity_matches_the_reference(value: object, max_seconds: float) -> None:
    """A mark is honoured exactly when it is 1-16 digits, not expired and within the max."""
    now = time.time()
    assert _debugmark.mark_is_valid(value, now, max_seconds) == _reference(value, now, max_seconds)


def test_bad_options_are_value_errors() -> None:
    """max_mark_seconds out of range, or a non-bool trust_baggage, is a ValueError."""
    with pytest.raises(ValueError, match="max_mark_seconds"):
        TraceStreamServerInterceptor(max_mark_seconds=0)
    with pytest.raises(ValueError, match="trust_baggage"):
        AioTraceStreamServerInterceptor(trust_baggage="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("mark", [_mark(30), _mark(-5), "12;34", "x" * 40])
def test_messages_read_without_an_interceptor_never_carry_a_mark(
    control: FakeControl, mark: str
) -> None:
    """A queue or websocket message is read by no trusting receiver: its mark is dropped.

    Neither the receive helpers on a plain iterable nor ``extract`` verify marks, so the
    calls made for such a message must not forward one; the rest of its baggage stays.
    """
    (note,) = _stamped([(mark, True)])
    plain = {"trace_metadata": dict(note.trace_metadata)}
    for ctx, _ in iter_with_context([plain]):
        assert baggage.get_all() == {"user": "1"}
        assert baggage.get_all(context=ctx) == {"user": "1"}
        assert control.flag.get() is False
    assert baggage.get_all(context=extract(plain)) == {"user": "1"}


async def test_async_messages_read_without_an_interceptor_never_carry_a_mark(
    control: FakeControl,
) -> None:
    """The asynchronous helper drops the mark of a message no interceptor verified."""
    (note,) = _stamped([(_mark(30), True)])

    async def stream() -> Any:
        yield {"trace_metadata": dict(note.trace_metadata)}

    async for ctx, _ in aiter_with_context(stream()):
        assert baggage.get_all() == {"user": "1"}
        assert baggage.get_all(context=ctx) == {"user": "1"}
        assert control.flag.get() is False


def test_extract_keeps_the_mark_the_receiver_already_runs_with() -> None:
    """A message cannot replace the mark of the request that reads it, nor remove it."""
    verified = _mark(30)
    base = baggage.set_baggage(KEY, verified, context=otel_context.Context())
    forged, plain = _stamped([(_mark(3000), True), (None, True)])
    for note in (forged, plain):
        carried = {"trace_metadata": dict(note.trace_metadata)}
        assert baggage.get_all(context=extract(carried, context=base)) == {
            KEY: verified,
            "user": "1",
        }
