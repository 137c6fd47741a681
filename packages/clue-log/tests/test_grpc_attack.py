"""The end line of a served RPC names the code its client received, however the handler
ended: a failed outgoing call re-raised, a deadline that passed, a unary response grpc
cannot send; sync and aio servers alike, unary and streaming."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from clue import log

SERVICE = "cluelog.attack.Ends"
#: Counts the code grpc gives an escaping exception, not the codes handlers choose.
ONLY_UNKNOWN = {"error_func": lambda code: code is grpc.StatusCode.UNKNOWN}
_ADDRESS: dict[str, str] = {}


def _not_found(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "inner")


def _relay(request: bytes, context: grpc.ServicerContext) -> bytes:
    log.info("handling")
    with grpc.insecure_channel(_ADDRESS["sync"]) as channel:
        response: bytes = channel.unary_unary(f"/{SERVICE}/NotFound")(b"")  # raises
    return response


def _until_gone(request: bytes, context: grpc.ServicerContext) -> bytes:
    log.info("handling")
    gone = threading.Event()
    context.add_callback(gone.set)
    gone.wait(30)
    return b"late"


def _stream_until_gone(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    log.info("handling")
    gone = threading.Event()
    context.add_callback(gone.set)
    gone.wait(30)
    yield b"late"


def _none(request: bytes, context: grpc.ServicerContext) -> None:
    log.info("handling")  # and forgets to return the response


# set_code() values that are not StatusCodes, by name.
_ODD_CODES: dict[str, object] = {"int": 5, "int-ok": 0, "text": "NOPE"}


def _set_odd_code(request: bytes, context: grpc.ServicerContext) -> bytes:
    log.info("handling")
    context.set_code(_ODD_CODES[request.decode()])
    context.set_details("odd")
    return b"ok"


async def _aio_set_odd_code(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return _set_odd_code(request, context)


def _stream_none(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes | None]:
    log.info("handling")
    yield b"a"
    yield None  # grpc.server ends the stream here, OK; grpc.aio sends an empty message
    yield b"c"


async def _aio_stream_none(
    request: bytes, context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes | None]:
    for response in _stream_none(request, context):
        yield response


async def _aio_relay(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    log.info("handling")
    async with grpc.aio.insecure_channel(_ADDRESS["sync"]) as channel:
        response: bytes = await channel.unary_unary(f"/{SERVICE}/NotFound")(b"")  # raises
    return response


async def _aio_until_gone(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    log.info("handling")
    await asyncio.Event().wait()  # cancelled when the RPC ends
    return b"late"


async def _aio_stream_until_gone(
    request: bytes, context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    log.info("handling")
    await asyncio.Event().wait()
    yield b"late"


async def _aio_none(request: bytes, context: grpc.aio.ServicerContext) -> None:
    log.info("handling")


def _handlers(aio: bool) -> Any:
    unary, stream = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "NotFound": unary(_not_found),
            "Relay": unary(_aio_relay if aio else _relay),
            "UntilGone": unary(_aio_until_gone if aio else _until_gone),
            "StreamUntilGone": stream(_aio_stream_until_gone if aio else _stream_until_gone),
            "None": unary(_aio_none if aio else _none),
            "SetOddCode": unary(_aio_set_odd_code if aio else _set_odd_code),
            "StreamNone": stream(_aio_stream_none if aio else _stream_none),
        },
    )


@pytest.fixture(scope="module")
def servers() -> Iterator[Callable[[str, dict[str, Any]], str]]:
    """A factory: (kind, interceptor options) -> the address of a real server."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sync: list[grpc.Server] = []
    aio: list[grpc.aio.Server] = []

    async def start_aio(options: dict[str, Any]) -> str:
        server = grpc.aio.server(interceptors=[log.AioGrpcServerInterceptor(**options)])
        server.add_generic_rpc_handlers((_handlers(True),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        aio.append(server)
        return f"127.0.0.1:{port}"

    def start(kind: str, options: dict[str, Any]) -> str:
        if kind == "aio":
            return asyncio.run_coroutine_threadsafe(start_aio(options), loop).result(10)
        server = grpc.server(
            futures.ThreadPoolExecutor(4), interceptors=[log.GrpcServerInterceptor(**options)]
        )
        server.add_generic_rpc_handlers((_handlers(False),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        sync.append(server)
        return f"127.0.0.1:{port}"

    _ADDRESS["sync"] = start("sync", {})
    yield start

    async def stop_aio() -> None:
        for server in aio:
            await server.stop(None)

    asyncio.run_coroutine_threadsafe(stop_aio(), loop).result(10)
    for server in sync:
        server.stop(None).wait(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _call(address: str, method: str, timeout: float | None = None) -> grpc.StatusCode:
    """Call ``method`` and return the code the client received."""
    with grpc.insecure_channel(address) as channel:
        try:
            if method.startswith("Stream"):
                list(channel.unary_stream(f"/{SERVICE}/{method}")(b"", timeout=timeout))
            else:
                channel.unary_unary(f"/{SERVICE}/{method}")(b"", timeout=timeout)
        except grpc.RpcError as err:
            code: grpc.StatusCode = err.code()
            return code
    return grpc.StatusCode.OK


def _end_lines(out: io.StringIO, method: str) -> list[dict[str, Any]]:
    """The end lines of ``method``, once one is written (polled with a deadline)."""
    deadline = time.monotonic() + 10
    while True:
        docs = [json.loads(line) for line in out.getvalue().splitlines()]
        ends = [d for d in docs if d["msg"] == "end" and d["grpc.method"] == method]
        if ends or time.monotonic() > deadline:
            return ends
        time.sleep(0.005)


def _msgs(out: io.StringIO, method: str) -> list[str]:
    """The messages of the lines ``method`` wrote."""
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    return [d["msg"] for d in docs if d["grpc.method"] == method]


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_failed_outgoing_call_re_raised_ends_unknown(servers: Any, kind: str) -> None:
    """A handler that lets a failed outgoing call's ``RpcError`` escape ends with the code
    its client receives (UNKNOWN), not the outgoing call's code: an ``error_func`` counting
    UNKNOWN writes the RPC's context and the exception."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    received = _call(servers(kind, ONLY_UNKNOWN), "Relay")
    assert received is grpc.StatusCode.UNKNOWN
    [end] = _end_lines(out, "Relay")
    assert (end["level"], end["grpc.code"]) == ("error", "UNKNOWN")
    assert "NOT_FOUND" in end["grpc.status"]
    assert _msgs(out, "Relay") == ["start", "handling", "end"]


@pytest.mark.parametrize("kind", ["sync", "aio"])
@pytest.mark.parametrize("method", ["UntilGone", "StreamUntilGone"])
def test_a_passed_deadline_ends_deadline_exceeded(servers: Any, kind: str, method: str) -> None:
    """An RPC whose deadline passes ends with DEADLINE_EXCEEDED, the code its client
    receives, not as cancelled by the client; an ``error_func`` counting only deadlines
    writes its context."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    only_deadlines = {"error_func": lambda code: code is grpc.StatusCode.DEADLINE_EXCEEDED}
    received = _call(servers(kind, only_deadlines), method, timeout=0.2)
    assert received is grpc.StatusCode.DEADLINE_EXCEEDED
    [end] = _end_lines(out, method)
    assert (end["level"], end["grpc.code"]) == ("error", "DEADLINE_EXCEEDED")
    assert _msgs(out, method) == ["start", "handling", "end"]


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_unary_handler_returning_none_ends_with_the_code_sent(servers: Any, kind: str) -> None:
    """A unary handler that returns None ends with the code its client receives: INTERNAL
    on a sync server (grpc cannot serialize None, the failure writes the context), OK on
    an aio one (which sends an empty message)."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    received = _call(servers(kind, {}), "None")
    [end] = _end_lines(out, "None")
    assert end["grpc.code"] == received.name
    if kind == "sync":
        assert received is grpc.StatusCode.INTERNAL
        assert end["level"] == "error"
        assert _msgs(out, "None") == ["start", "handling", "end"]
    else:
        assert received is grpc.StatusCode.OK


# Sync handlers on a grpc.aio server: grpc runs them in the server's thread pool.
_RELEASE = threading.Event()
_WAITING = threading.Event()


def _wait_release(request: bytes, context: grpc.ServicerContext) -> bytes:
    log.info("handling")
    _WAITING.set()
    return b"released" if _RELEASE.wait(10) else b"never released"


def _stream_wait_release(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    log.info("handling")
    _WAITING.set()
    yield b"released" if _RELEASE.wait(10) else b"never released"


def _wait_release_unwatched(request: bytes, context: grpc.ServicerContext) -> bytes:
    log.info("handling")
    _WAITING.set()
    _RELEASE.wait(10)  # outlives the deadline: released once the client gave up
    # The client gives up at its own deadline; the server's (sent with the call) passes
    # a moment later: return only once it has, polled with a bound.
    give_up = time.monotonic() + 10
    while context.time_remaining() > 0 and time.monotonic() < give_up:
        time.sleep(0.005)
    return b"late"


def _release(request: bytes, context: grpc.ServicerContext) -> bytes:
    _RELEASE.set()
    return b""


def _sync_ends(request: bytes, context: grpc.ServicerContext) -> bytes | None:
    log.info("handling")
    how = request.decode()
    if how == "set_code":
        context.set_code(grpc.StatusCode.NOT_FOUND)
        context.set_details("set")
    elif how == "abort":
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "aborted")
    elif how == "raise":
        raise RuntimeError("boom")
    elif how == "none":
        return None
    return b"ok"


def _sync_stream_ends(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    yield b"first"
    yield _sync_ends(request, context) or b""


@pytest.fixture(scope="module")
def aio_with_sync_handlers() -> Iterator[str]:
    """A grpc.aio server with a thread pool, serving sync handlers behind the interceptor."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    pool = futures.ThreadPoolExecutor(4)
    unary, stream = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
    handlers = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "WaitRelease": unary(_wait_release),
            "StreamWaitRelease": stream(_stream_wait_release),
            "Release": unary(_release),
            "Late": unary(_wait_release_unwatched),
            "Ends": unary(_sync_ends),
            "StreamEnds": stream(_sync_stream_ends),
            "StreamNone": stream(_stream_none),
        },
    )

    async def start() -> tuple[grpc.aio.Server, str]:
        server = grpc.aio.server(pool, interceptors=[log.AioGrpcServerInterceptor()])
        server.add_generic_rpc_handlers((handlers,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, f"127.0.0.1:{port}"

    server, address = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield address
    asyncio.run_coroutine_threadsafe(server.stop(None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    pool.shutdown()


@pytest.mark.parametrize("method", ["WaitRelease", "StreamWaitRelease"])
def test_sync_handlers_on_an_aio_server_run_off_the_event_loop(
    aio_with_sync_handlers: str, method: str
) -> None:
    """A sync handler on a grpc.aio server runs in the server's thread pool behind the
    interceptor, as without it: one waiting for another RPC never blocks that RPC."""
    _RELEASE.clear()
    _WAITING.clear()
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    with grpc.insecure_channel(aio_with_sync_handlers) as channel:
        if method.startswith("Stream"):
            waiting = channel.unary_stream(f"/{SERVICE}/{method}")(b"")
        else:
            waiting = channel.unary_unary(f"/{SERVICE}/{method}").future(b"")
        assert _WAITING.wait(10)
        channel.unary_unary(f"/{SERVICE}/Release")(b"", timeout=10)
        answer = next(waiting) if method.startswith("Stream") else waiting.result(10)
    assert answer == b"released"
    assert _end_lines(out, method)[0]["grpc.code"] == "OK"


# (grpc.aio itself fails to send an abort from a sync response stream past its first
# message: its client waits for the deadline.)
@pytest.mark.parametrize(
    ("method", "how"),
    [
        *[("Ends", how) for how in ["return", "none", "set_code", "abort", "raise"]],
        *[("StreamEnds", how) for how in ["return", "none", "set_code", "raise"]],
    ],
)
def test_sync_handlers_on_an_aio_server_end_with_the_code_sent(
    aio_with_sync_handlers: str, method: str, how: str
) -> None:
    """A sync handler on a grpc.aio server, however it ends, ends with the code its client
    receives, and a failure writes the RPC's context."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    with grpc.insecure_channel(aio_with_sync_handlers) as channel:
        try:
            if method.startswith("Stream"):
                list(channel.unary_stream(f"/{SERVICE}/{method}")(how.encode(), timeout=10))
            else:
                channel.unary_unary(f"/{SERVICE}/{method}")(how.encode(), timeout=10)
            received = grpc.StatusCode.OK
        except grpc.RpcError as err:
            received = err.code()
    [end] = _end_lines(out, method)
    assert end["grpc.code"] == received.name
    if received is not grpc.StatusCode.OK:
        assert end["level"] == "error"
        assert _msgs(out, method) == ["start", "handling", "end"]


def test_a_sync_handler_on_an_aio_server_outliving_its_deadline(
    aio_with_sync_handlers: str,
) -> None:
    """A sync handler on a grpc.aio server that returns after its deadline passed ends
    DEADLINE_EXCEEDED, as its client saw it, and writes its context."""
    _RELEASE.clear()
    _WAITING.clear()
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    with (
        grpc.insecure_channel(aio_with_sync_handlers) as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        # A deadline long enough for the handler to start on a loaded machine: one that
        # passes before it starts is another test (the handler would never run).
        channel.unary_unary(f"/{SERVICE}/Late")(b"", timeout=2)
    assert _WAITING.is_set(), "the handler had not started when the deadline passed"
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    _RELEASE.set()
    [end] = _end_lines(out, "Late")
    assert (end["level"], end["grpc.code"]) == ("error", "DEADLINE_EXCEEDED")
    assert _msgs(out, "Late") == ["start", "handling", "end"]


@pytest.mark.parametrize("kind", ["sync", "aio"])
@pytest.mark.parametrize("odd", sorted(_ODD_CODES))
def test_a_code_that_is_not_a_status_code_ends_as_sent(servers: Any, kind: str, odd: str) -> None:
    """A handler that sets a code that is not a ``StatusCode`` (an int, a string) ends with
    the code grpc sends for it (UNKNOWN, or the int's code on an aio server), and a
    failure writes the RPC's context."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    address = servers(kind, {})
    with grpc.insecure_channel(address) as channel:
        try:
            channel.unary_unary(f"/{SERVICE}/SetOddCode")(odd.encode(), timeout=10)
            received = grpc.StatusCode.OK
        except grpc.RpcError as err:
            received = err.code()
    [end] = _end_lines(out, "SetOddCode")
    assert end["grpc.code"] == received.name
    if received is grpc.StatusCode.OK:
        assert _msgs(out, "SetOddCode") == ["start", "end"]
    else:
        assert end["level"] == "error"
        assert _msgs(out, "SetOddCode") == ["start", "handling", "end"]


def _stream_none_ends(address: str) -> tuple[list[bytes], list[str], dict[str, Any]]:
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    with grpc.insecure_channel(address) as channel:
        received = list(channel.unary_stream(f"/{SERVICE}/StreamNone")(b"", timeout=10))
    [end] = _end_lines(out, "StreamNone")
    return received, _msgs(out, "StreamNone"), end


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_response_stream_yielding_none_ends_as_its_client_sees_it(
    servers: Any, kind: str
) -> None:
    """A response stream that yields None ends OK where its client's stream ends: at the
    None on a sync server, which ends the stream there, after the last message on an aio
    one, which sends None as an empty message; a success writes nothing buffered."""
    received, msgs, end = _stream_none_ends(servers(kind, {}))
    assert received == ([b"a"] if kind == "sync" else [b"a", b"", b"c"])
    assert (end["level"], end["grpc.code"]) == ("info", "OK")
    assert msgs == ["start", "end"]


def test_a_sync_response_stream_yielding_none_on_an_aio_server(
    aio_with_sync_handlers: str,
) -> None:
    """A sync response stream on a grpc.aio server that yields None goes on (grpc.aio sends
    an empty message) and ends OK after its last message."""
    received, msgs, end = _stream_none_ends(aio_with_sync_handlers)
    assert received == [b"a", b"", b"c"]
    assert (end["level"], end["grpc.code"]) == ("info", "OK")
    assert msgs == ["start", "end"]
