"""log.GrpcServerInterceptor on a real grpc.server: all four RPC shapes, OK and failing."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from clue import log


@pytest.fixture
def echo(grpc_sync_server: Any) -> Any:
    """Start a server with the interceptor built from the given options; return a stub."""
    import cluelog_echo_pb2_grpc as pb_grpc

    channels: list[grpc.Channel] = []

    def make(**options: Any) -> Any:
        addr = grpc_sync_server(log.GrpcServerInterceptor(**options))
        channel = grpc.insecure_channel(addr)
        channels.append(channel)
        return pb_grpc.EchoStub(channel)

    yield make
    for channel in channels:
        channel.close()


def req(text: str = "hi", **kw: Any) -> Any:
    import cluelog_echo_pb2 as pb

    return pb.EchoRequest(text=text, **kw)


def wait_end(logs: Any, n: int = 1) -> list[dict[str, Any]]:
    return logs.wait_for(lambda es: sum(e.get("msg") == "end" for e in es) >= n)


def test_unary_ok(logs: Any, echo: Any) -> None:
    """A successful unary RPC writes start and end lines only, with the gRPC keys."""
    reply = echo().Unary(req("a"))
    assert reply.text == "a"
    start, end = wait_end(logs)
    assert start["msg"] == "start"
    assert start["grpc.service"] == "cluelog.test.Echo"
    assert start["grpc.method"] == "Unary"
    assert end["grpc.code"] == "OK"
    assert end["grpc.time_ms"] >= 0
    assert start["request_id"] == end["request_id"]
    assert len(start["request_id"]) == 8


def test_unary_abort_logs_error(logs: Any, echo: Any) -> None:
    """An aborted unary RPC flushes its buffer and logs an error with code and status."""
    stub = echo(call_log_func=log.info)
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(req("x", fail="NOT_FOUND"))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    entries = wait_end(logs)
    assert [e["msg"] for e in entries] == ["start", "handling", "end"]
    err = entries[2]
    assert err["level"] == "error"
    assert err["grpc.code"] == "NOT_FOUND"
    assert err["grpc.status"] == "failed: x"
    assert err["err"] == "failed: x"


def test_unary_crash_logs_traceback(logs: Any, echo: Any) -> None:
    """An exception escaping the handler is logged as UNKNOWN with its traceback."""
    with pytest.raises(grpc.RpcError) as info:
        echo().Unary(req("y", crash=True))
    assert info.value.code() is grpc.StatusCode.UNKNOWN
    err = wait_end(logs)[-1]
    assert err["grpc.code"] == "UNKNOWN"
    assert "boom: y" in err["err"]
    assert any("Traceback" in str(v) for v in err.values())


def test_incoming_request_id_reused(logs: Any, echo: Any) -> None:
    """A well-formed x-request-id metadata value becomes the RPC's request_id."""
    stub = echo()
    stub.Unary(req(), metadata=[("x-request-id", "caller-42")])
    stub.Unary(req(), metadata=[("x-request-id", "bad value!")])
    first, second = [e["request_id"] for e in wait_end(logs, 2) if e["msg"] == "end"]
    assert first == "caller-42"
    assert second != "bad value!"
    assert len(second) == 8


def test_server_stream_ok_and_failing(logs: Any, echo: Any) -> None:
    """A server stream is served in its log context; a failure at its end flushes it all."""
    stub = echo(call_log_func=log.info)
    assert [r.text for r in stub.ServerStream(req("s", count=3))] == ["s-0", "s-1", "s-2"]
    with pytest.raises(grpc.RpcError):
        list(stub.ServerStream(req("f", count=2, fail="INTERNAL")))
    entries = wait_end(logs)
    assert [e["msg"] for e in entries] == ["start", "sending", "sending", "handling", "end"]
    assert entries[-1]["grpc.code"] == "INTERNAL"
    assert entries[-1]["grpc.method"] == "ServerStream"
    assert len({e["request_id"] for e in entries}) == 1


def test_client_stream(logs: Any, echo: Any) -> None:
    """A client stream logs one end line when it completes, or an error when it fails."""
    stub = echo()
    assert stub.ClientStream(iter([req("a"), req("b")])).text == "a+b"
    with pytest.raises(grpc.RpcError):
        stub.ClientStream(iter([req("a"), req("b", fail="INVALID_ARGUMENT")]))
    entries = wait_end(logs, 2)
    ends = [e for e in entries if e["msg"] == "end"]
    assert [e["grpc.code"] for e in ends] == ["OK", "INVALID_ARGUMENT"]
    assert ends[1]["level"] == "error"
    assert [e["msg"] for e in entries].count("handling") == 2  # the failed call's buffer


def test_bidi_end_logged_when_stream_finishes(logs: Any, echo: Any) -> None:
    """A bidi stream logs end when the stream finishes, not when it opens."""
    stub = echo()
    requests: queue.Queue[Any] = queue.Queue()

    def gen() -> Iterator[Any]:
        while (item := requests.get()) is not None:
            yield item

    responses = stub.Bidi(gen())
    requests.put(req("one"))
    assert next(responses).text == "one"
    assert logs.msgs("end") == []
    requests.put(req("two"))
    assert next(responses).text == "two"
    assert logs.msgs("end") == []
    requests.put(None)
    assert list(responses) == []
    (end,) = [e for e in wait_end(logs) if e["msg"] == "end"]
    assert end["grpc.code"] == "OK"
    assert end["grpc.method"] == "Bidi"


def test_bidi_failing(logs: Any, echo: Any) -> None:
    """A bidi stream failing midway logs the messages handled so far, then the error."""
    stub = echo(call_log_func=log.info)
    with pytest.raises(grpc.RpcError):
        list(stub.Bidi(iter([req("a"), req("b", crash=True)])))
    entries = wait_end(logs)
    assert [e["msg"] for e in entries] == ["start", "handling", "handling", "end"]
    assert entries[-1]["grpc.code"] == "UNKNOWN"


def test_cancelled_stream_logs_end(logs: Any, echo: Any) -> None:
    """A response stream cancelled by the client ends its log context with CANCELLED."""
    stub = echo(error_func=lambda code: code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED))
    # Far more than the flow-control window: the server is blocked mid-stream.
    responses = stub.ServerStream(req("x" * 1024, count=10_000))
    assert next(responses).text.endswith("-0")
    responses.cancel()
    (end,) = [e for e in wait_end(logs) if e["msg"] == "end"]
    assert end["grpc.code"] == "CANCELLED"
    assert end["level"] == "info"


def test_error_func_and_disable_options(logs: Any, echo: Any) -> None:
    """error_func decides what is an error; disable options drop lines and ids."""
    stub = echo(
        error_func=lambda code: code is grpc.StatusCode.INTERNAL,
        disable_call_logging=True,
        disable_call_id=True,
    )
    stub.Unary(req())
    with pytest.raises(grpc.RpcError):
        stub.Unary(req(fail="NOT_FOUND"))
    with pytest.raises(grpc.RpcError):
        stub.Unary(req(fail="INTERNAL"))
    entries = logs.wait_for(lambda es: len(es) >= 2)
    assert [(e["msg"], e.get("grpc.code")) for e in entries] == [
        ("handling", None),
        ("end", "INTERNAL"),
    ]
    assert all("request_id" not in e for e in entries)


def test_failing_error_func_counts_as_error(logs: Any, echo: Any) -> None:
    """An error_func that raises never breaks the RPC: non-OK codes are then errors."""

    def broken(code: grpc.StatusCode) -> bool:
        raise ZeroDivisionError

    stub = echo(error_func=broken)
    assert stub.Unary(req("ok")).text == "ok"
    with pytest.raises(grpc.RpcError):
        stub.Unary(req(fail="ABORTED"))
    ends = [e for e in wait_end(logs, 2) if e["msg"] == "end"]
    assert [(e["level"], e["grpc.code"]) for e in ends] == [("info", "OK"), ("error", "ABORTED")]


def test_error_func_answering_a_coroutine_counts_by_default(logs: Any, echo: Any) -> None:
    """An error_func answering a coroutine (no verdict) is ignored like one that raises:
    OK is not an error, and the coroutine is closed, never left unawaited."""
    stub = echo(error_func=lambda code: _async_error_func(code))
    assert stub.Unary(req("ok")).text == "ok"
    with pytest.raises(grpc.RpcError):
        stub.Unary(req(fail="ABORTED"))
    ends = [e for e in wait_end(logs, 2) if e["msg"] == "end"]
    assert [(e["level"], e["grpc.code"]) for e in ends] == [("info", "OK"), ("error", "ABORTED")]


async def _async_error_func(code: grpc.StatusCode) -> bool:
    return code is not grpc.StatusCode.OK


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_func": "x"},
        {"disable_call_logging": 1},
        {"disable_call_id": "no"},
        {"call_log_func": 3},
        {"error_func": _async_error_func},
        {"call_log_func": _async_error_func},
    ],
)
def test_bad_options(kwargs: dict[str, Any]) -> None:
    """A malformed option raises ValueError naming it, for every interceptor form."""
    name = next(iter(kwargs))
    for factory in (
        log.GrpcServerInterceptor,
        log.AioGrpcServerInterceptor,
        log.GrpcClientInterceptor,
        log.aio_grpc_client_interceptors,
    ):
        with pytest.raises(ValueError, match=name):
            factory(**kwargs)


def test_import_without_grpcio() -> None:
    """import clue.log works without grpcio; the gRPC names then raise an ImportError naming
    the extra, and the optional client libraries are not imported either."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['grpc'] = None\n"
        "import clue.log as log\n"
        "assert not {'grpc', 'requests', 'httpx'} & set(sys.modules) - {'grpc'}\n"
        "assert sys.modules['grpc'] is None\n"
        "for name in ('GrpcServerInterceptor', 'AioGrpcServerInterceptor',\n"
        "             'GrpcClientInterceptor', 'aio_grpc_client_interceptors'):\n"
        "    try:\n"
        "        getattr(log, name)\n"
        "    except ImportError as exc:\n"
        "        assert 'clue-log[grpc]' in str(exc), exc\n"
        "    else:\n"
        "        raise AssertionError(name)\n"
        "log.ASGIMiddleware, log.WSGIMiddleware, log.endpoint\n"
        "assert 'GrpcServerInterceptor' in dir(log)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_stream_handler_returning_a_list(logs: Any) -> None:
    """A sync response-streaming handler may return any iterable, not only a generator."""

    def listed(request: bytes, context: Any) -> list[bytes]:
        log.info("listing")
        if request == b"fail":
            context.abort(grpc.StatusCode.NOT_FOUND, "nothing to list")
        return [b"a", b"b"]

    handler = grpc.method_handlers_generic_handler(
        "demo.Lister", {"List": grpc.unary_stream_rpc_method_handler(listed)}
    )
    from concurrent import futures

    server = grpc.server(
        futures.ThreadPoolExecutor(2),
        interceptors=[log.GrpcServerInterceptor(call_log_func=log.info)],
    )
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_stream("/demo.Lister/List")
            assert list(call(b"ok")) == [b"a", b"b"]
            with pytest.raises(grpc.RpcError):
                list(call(b"fail"))
    finally:
        server.stop(None).wait(10)
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    assert [e["msg"] for e in entries] == ["start", "listing", "end"]
    assert entries[-1]["grpc.code"] == "NOT_FOUND"


def _serve_non_blocking(interceptors: list[Any]) -> list[bytes]:
    """A real ``grpc.server`` on 127.0.0.1 whose response-streaming method is grpcio's
    non-blocking kind (it answers through ``send_response_callback``), behind
    ``interceptors``; returns what a client receives."""
    from concurrent import futures

    import grpc

    def stream(request: bytes, context: Any, send_response_callback: Any) -> None:
        send_response_callback(request + b"-1")
        send_response_callback(request + b"-2")
        send_response_callback(None)

    stream.experimental_non_blocking = True  # type: ignore[attr-defined]
    handler = grpc.unary_stream_rpc_method_handler(stream)
    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=interceptors)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.NonBlocking", {"Stream": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_stream("/test.NonBlocking/Stream")
            return list(call(b"hi", timeout=10))
    finally:
        server.stop(None)


def test_non_blocking_handler_is_served_as_it_is() -> None:
    """A non-blocking handler (grpcio's ``experimental_non_blocking``) behind clue's
    interceptor is left alone and answers as it would without it."""
    assert _serve_non_blocking([log.GrpcServerInterceptor()]) == [b"hi-1", b"hi-2"]
