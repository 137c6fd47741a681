"""grpc.aio: log.AioGrpcServerInterceptor and log.aio_grpc_client_interceptors, for real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from clue import log


@pytest.fixture
async def aio(grpc_aio_server: Any) -> AsyncIterator[Any]:
    """Return a factory: server interceptor options -> stub on an intercepted aio channel."""
    import cluelog_echo_pb2_grpc as pb_grpc

    channels: list[Any] = []

    async def make(client: dict[str, Any] | None = None, **server_options: Any) -> Any:
        addr = await grpc_aio_server(log.AioGrpcServerInterceptor(**server_options))
        # By default the client interceptor is silent, so only the server's lines show.
        silent = {"disable_call_logging": True, "error_func": lambda code: False}
        interceptors = log.aio_grpc_client_interceptors(**(silent if client is None else client))
        channel = grpc.aio.insecure_channel(addr, interceptors=interceptors)
        channels.append(channel)
        return pb_grpc.EchoStub(channel)

    yield make
    for channel in channels:
        await channel.close()


def req(text: str = "hi", **kw: Any) -> Any:
    import cluelog_echo_pb2 as pb

    return pb.EchoRequest(text=text, **kw)


async def wait_end(logs: Any, n: int = 1) -> list[dict[str, Any]]:
    return await asyncio.to_thread(
        logs.wait_for, lambda es: sum(e.get("msg") == "end" for e in es) >= n
    )


async def test_unary_ok(logs: Any, aio: Any) -> None:
    """A successful unary RPC writes start and end lines with the gRPC keys."""
    stub = await aio()
    reply = await stub.Unary(req("a"))
    assert reply.text == "a"
    start, end = await wait_end(logs)
    assert start["grpc.method"] == "Unary"
    assert end["grpc.code"] == "OK"
    assert start["request_id"] == end["request_id"] == reply.request_id


async def test_unary_abort_and_crash(logs: Any, aio: Any) -> None:
    """Aborted and crashing RPCs flush their buffer and log errors with code and status."""
    stub = await aio(call_log_func=log.info)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Unary(req("x", fail="NOT_FOUND"))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Unary(req("y", crash=True))
    assert info.value.code() is grpc.StatusCode.UNKNOWN
    entries = await wait_end(logs, 2)
    assert [e["msg"] for e in entries] == ["start", "handling", "end"] * 2
    assert (entries[2]["grpc.code"], entries[2]["grpc.status"]) == ("NOT_FOUND", "failed: x")
    assert entries[5]["grpc.code"] == "UNKNOWN"
    assert "boom: y" in entries[5]["err"]
    assert any("Traceback" in str(v) for v in entries[5].values())


async def test_server_stream(logs: Any, aio: Any) -> None:
    """An async-generator response stream is served in its context; a failure flushes it."""
    stub = await aio(call_log_func=log.info)
    assert [r.text async for r in stub.ServerStream(req("s", count=2))] == ["s-0", "s-1"]
    with pytest.raises(grpc.aio.AioRpcError):
        _ = [r async for r in stub.ServerStream(req("f", count=2, fail="DATA_LOSS"))]
    entries = await wait_end(logs)
    assert [e["msg"] for e in entries] == ["start", "sending", "sending", "handling", "end"]
    assert entries[-1]["grpc.code"] == "DATA_LOSS"


async def test_client_stream(logs: Any, aio: Any) -> None:
    """A client stream logs its end once, OK or failed."""
    stub = await aio()

    async def reqs(*items: Any) -> AsyncIterator[Any]:
        for item in items:
            yield item

    assert (await stub.ClientStream(reqs(req("a"), req("b")))).text == "a+b"
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ClientStream(reqs(req("a", fail="OUT_OF_RANGE")))
    ends = [e for e in await wait_end(logs, 2) if e["msg"] == "end"]
    assert [e["grpc.code"] for e in ends] == ["OK", "OUT_OF_RANGE"]


async def test_bidi_end_logged_when_stream_finishes(logs: Any, aio: Any) -> None:
    """A bidi stream logs end when the stream finishes, not when it opens."""
    stub = await aio()
    call = stub.Bidi()
    await call.write(req("one"))
    assert (await call.read()).text == "one"
    await call.write(req("two"))
    assert (await call.read()).text == "two"
    assert logs.msgs("end") == []
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    (end,) = [e for e in await wait_end(logs) if e["msg"] == "end"]
    assert (end["grpc.method"], end["grpc.code"]) == ("Bidi", "OK")


async def test_cancelled_stream(logs: Any, aio: Any) -> None:
    """A stream cancelled by the client ends the server's log context with CANCELLED."""
    stub = await aio(client={"call_log_func": log.info})
    with log.context():
        log.bind(caller="test")
        call = stub.ServerStream(req("x" * 1024, count=10_000))
        first = await call.read()
        assert first.text.endswith("-0")
        assert call.cancel()
        assert call.cancelled()
        assert await call.code() is grpc.StatusCode.CANCELLED
    entries = await asyncio.to_thread(
        logs.wait_for, lambda es: sum(e.get("grpc.code") == "CANCELLED" for e in es) >= 2
    )
    cancelled = [e for e in entries if e.get("grpc.code") == "CANCELLED"]
    assert {("caller" in e) for e in cancelled} == {True, False}  # client and server


async def test_client_logs_in_caller_context(logs: Any, aio: Any) -> None:
    """The aio client logs start/end in the caller's context and sends its call id."""
    stub = await aio(client={}, disable_call_logging=True)
    with log.context():
        log.bind(caller="test")
        reply = await stub.Unary(req())
        assert len(reply.request_id) == 8
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Unary(req(fail="RESOURCE_EXHAUSTED"))
    entries = await asyncio.to_thread(
        logs.wait_for, lambda es: sum(e.get("msg") == "end" and "caller" in e for e in es) >= 2
    )
    mine = [e for e in entries if "caller" in e]
    assert [(e["msg"], e.get("grpc.code")) for e in mine] == [
        ("start", None),
        ("end", "OK"),
        ("start", None),
        ("end", "RESOURCE_EXHAUSTED"),
    ]
    assert mine[3]["level"] == "error"


async def test_client_stream_kinds(logs: Any, aio: Any) -> None:
    """The aio client interceptors cover streaming calls too."""
    stub = await aio(client={})

    async def reqs() -> AsyncIterator[Any]:
        yield req("a")

    with log.context():
        log.bind(caller="test")
        assert (await stub.ClientStream(reqs())).text == "a"
        assert [r.text async for r in stub.Bidi(reqs())] == ["a"]
        assert [r.text async for r in stub.ServerStream(req("s", count=1))] == ["s-0"]
    entries = await asyncio.to_thread(
        logs.wait_for, lambda es: sum(e.get("msg") == "end" and "caller" in e for e in es) >= 3
    )
    ends = [e["grpc.method"] for e in entries if "caller" in e and e["msg"] == "end"]
    assert ends == ["ClientStream", "Bidi", "ServerStream"]


async def test_handlers_writing_with_context_write(logs: Any) -> None:
    """A grpc.aio handler that streams with context.write() is served and ended like others."""

    async def write_three(request: bytes, context: Any) -> None:
        for i in range(3):
            log.info("writing", i=i)
            await context.write(b"%d" % i)
        if request == b"fail":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not ready")

    handler = grpc.method_handlers_generic_handler(
        "demo.Writer", {"Write": grpc.unary_stream_rpc_method_handler(write_three)}
    )
    server = grpc.aio.server(interceptors=[log.AioGrpcServerInterceptor(call_log_func=log.info)])
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            write = channel.unary_stream("/demo.Writer/Write")
            assert [m async for m in write(b"ok")] == [b"0", b"1", b"2"]
            with pytest.raises(grpc.aio.AioRpcError):
                _ = [m async for m in write(b"fail")]
    finally:
        await server.stop(None)
    entries = logs.entries()
    assert [e["msg"] for e in entries] == ["start", "writing", "writing", "writing", "end"]
    assert entries[-1]["grpc.code"] == "FAILED_PRECONDITION"
