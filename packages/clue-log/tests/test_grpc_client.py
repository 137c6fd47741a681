"""log.GrpcClientInterceptor on a real channel to a real grpc.server: all four RPC kinds."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clue import log


@pytest.fixture
def client(grpc_sync_server: Any) -> Any:
    """Return a factory of stubs on an intercepted channel to a fresh server."""
    import cluelog_echo_pb2_grpc as pb_grpc

    channels: list[grpc.Channel] = []

    def make(server_interceptors: tuple[Any, ...] = (), **options: Any) -> Any:
        addr = grpc_sync_server(*server_interceptors)
        channel = grpc.insecure_channel(addr)
        channels.append(channel)
        return pb_grpc.EchoStub(
            grpc.intercept_channel(channel, log.GrpcClientInterceptor(**options))
        )

    yield make
    for channel in channels:
        channel.close()


def req(text: str = "hi", **kw: Any) -> Any:
    import cluelog_echo_pb2 as pb

    return pb.EchoRequest(text=text, **kw)


def client_lines(logs: Any, n: int) -> list[dict[str, Any]]:
    """Entries written by the client (the test servicer's are excluded by their keys)."""
    entries = logs.wait_for(lambda es: sum(e.get("msg") == "end" for e in es) >= n)
    return [e for e in entries if "caller" in e]


def test_unary_logged_in_caller_context(logs: Any, client: Any) -> None:
    """A unary call logs start and end in the caller's log context."""
    stub = client()
    with log.context():
        log.bind(caller="test")
        assert stub.Unary(req("a")).text == "a"
    start, end = client_lines(logs, 1)
    assert start["msg"] == "start"
    assert (start["grpc.service"], start["grpc.method"]) == ("cluelog.test.Echo", "Unary")
    assert end["grpc.code"] == "OK"
    assert end["grpc.time_ms"] >= 0


def test_unary_error_flushes_caller_buffer(logs: Any, client: Any) -> None:
    """A failed call flushes the caller's buffer and logs an error with code and status."""
    stub = client(call_log_func=log.info)
    with log.context():
        log.bind(caller="test")
        log.info("before the call")
        with pytest.raises(grpc.RpcError):
            stub.Unary(req("x", fail="PERMISSION_DENIED"))
    lines = client_lines(logs, 1)
    assert [e["msg"] for e in lines] == ["before the call", "start", "end"]
    assert lines[2]["level"] == "error"
    assert lines[2]["grpc.code"] == "PERMISSION_DENIED"
    assert lines[2]["grpc.status"] == "failed: x"


def test_future_call_logged_on_completion(logs: Any, client: Any) -> None:
    """A call made with .future() logs its end when it completes, in the caller's context."""
    stub = client()
    with log.context():
        log.bind(caller="test")
        future = stub.Unary.future(req("f"))
        assert future.result(10).text == "f"
    _, end = client_lines(logs, 1)
    assert end["grpc.code"] == "OK"


def test_stream_keeps_call_api(logs: Any, client: Any) -> None:
    """A response stream is gRPC's own call object: cancel(), code() and details() work."""
    stub = client()
    with log.context():
        log.bind(caller="test")
        call = stub.ServerStream(req("x" * 1024, count=10_000))
        assert next(call).text.endswith("-0")
        assert call.cancel()
        assert call.code() is grpc.StatusCode.CANCELLED
        assert isinstance(call.details(), str)
    end = client_lines(logs, 1)[-1]
    assert end["grpc.code"] == "CANCELLED"
    assert end["level"] == "error"


def test_stream_kinds(logs: Any, client: Any) -> None:
    """Client-streaming and bidi calls log their end when they finish."""
    stub = client()
    with log.context():
        log.bind(caller="test")
        assert stub.ClientStream(iter([req("a"), req("b")])).text == "a+b"
        assert [r.text for r in stub.Bidi(iter([req("c"), req("d")]))] == ["c", "d"]
        assert [r.text for r in stub.ServerStream(req("s", count=2))] == ["s-0", "s-1"]
    ends = [e for e in client_lines(logs, 3) if e["msg"] == "end"]
    assert [(e["grpc.method"], e["grpc.code"]) for e in ends] == [
        ("ClientStream", "OK"),
        ("Bidi", "OK"),
        ("ServerStream", "OK"),
    ]


def test_call_id_propagated(logs: Any, client: Any) -> None:
    """The client sends an x-request-id that the server interceptor binds as request_id."""
    stub = client(server_interceptors=(log.GrpcServerInterceptor(),), disable_call_logging=True)
    reply = stub.Unary(req())
    assert len(reply.request_id) == 8
    entries = logs.wait_for(lambda es: sum(e.get("msg") == "end" for e in es) >= 1)
    server_end = next(e for e in entries if e.get("msg") == "end")
    assert server_end["request_id"] == reply.request_id
    assert stub.Unary(req(), metadata=[("x-request-id", "mine-1")]).request_id == "mine-1"
    with log.context():
        log.bind(request_id="caller-7")
        assert stub.Unary(req()).request_id == "caller-7"  # one id across services


def test_disable_call_id(client: Any) -> None:
    """With disable_call_id no x-request-id is sent."""
    stub = client(disable_call_id=True, disable_call_logging=True)
    assert stub.Unary(req()).request_id == ""


def test_disable_call_logging_keeps_errors(logs: Any, client: Any) -> None:
    """disable_call_logging drops start/end lines but failed calls are still errors."""
    stub = client(disable_call_logging=True)
    with log.context():
        log.bind(caller="test")
        stub.Unary(req())
        with pytest.raises(grpc.RpcError):
            stub.Unary(req(fail="UNAVAILABLE"))
    (err,) = client_lines(logs, 1)
    assert err["grpc.code"] == "UNAVAILABLE"


def test_failing_call_log_func_never_reaches_the_call(logs: Any, client: Any) -> None:
    """A call_log_func that raises breaks neither the client call nor the served RPC."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("broken log func")

    stub = client(
        server_interceptors=(log.GrpcServerInterceptor(call_log_func=broken),), call_log_func=broken
    )
    assert stub.Unary(req("a")).text == "a"
    assert [r.text for r in stub.ServerStream(req("s", count=2))] == ["s-0", "s-1"]
