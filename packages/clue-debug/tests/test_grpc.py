"""gRPC interceptors (sync and grpc.aio): the switch per RPC, payload logs."""

from __future__ import annotations

import json
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import wrappers_pb2

from clue import debug

SERVICE = "clue.test.Echo"
_ser = wrappers_pb2.StringValue.SerializeToString
_de = wrappers_pb2.StringValue.FromString


def _reply(control, request) -> wrappers_pb2.StringValue:
    return wrappers_pb2.StringValue(value=f"{request.value}:{control.debug_enabled()}")


def _sync_handlers(control):
    def unary(request, context):
        return _reply(control, request)

    def server_stream(request, context):
        for _ in range(3):
            yield _reply(control, request)

    def client_stream(requests, context):
        values = [r.value for r in requests]
        return wrappers_pb2.StringValue(value=f"{'+'.join(values)}:{control.debug_enabled()}")

    def bidi(requests, context):
        for r in requests:
            yield wrappers_pb2.StringValue(value=r.value.upper())

    return _generic(unary, server_stream, client_stream, bidi)


def _aio_handlers(control):
    async def unary(request, context):
        return _reply(control, request)

    async def server_stream(request, context):
        for _ in range(3):
            yield _reply(control, request)

    async def client_stream(requests, context):
        values = [r.value async for r in requests]
        return wrappers_pb2.StringValue(value=f"{'+'.join(values)}:{control.debug_enabled()}")

    async def bidi(requests, context):
        async for r in requests:
            yield wrappers_pb2.StringValue(value=r.value.upper())

    return _generic(unary, server_stream, client_stream, bidi)


def _generic(unary, server_stream, client_stream, bidi):
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, _de, _ser),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, _de, _ser),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, _de, _ser),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi, _de, _ser),
        },
    )


def _methods(channel, *, bidi: bool = False):
    methods = (
        channel.unary_unary(f"/{SERVICE}/Unary", _ser, _de),
        channel.unary_stream(f"/{SERVICE}/ServerStream", _ser, _de),
        channel.stream_unary(f"/{SERVICE}/ClientStream", _ser, _de),
    )
    if bidi:
        return (*methods, channel.stream_stream(f"/{SERVICE}/Bidi", _ser, _de))
    return methods


@pytest.fixture
def sync_server(control):
    server = grpc.server(
        futures.ThreadPoolExecutor(4),
        interceptors=[
            debug.GrpcServerInterceptor(trigger_header="x-clue-debug"),
            debug.PayloadGrpcServerInterceptor(max_size=64),
        ],
    )
    server.add_generic_rpc_handlers((_sync_handlers(control),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield _methods(channel)
    channel.close()
    server.stop(None).wait(5)


def _msg(value: str) -> wrappers_pb2.StringValue:
    return wrappers_pb2.StringValue(value=value)


def test_sync_rpcs_follow_the_switch(sync_server, logs) -> None:
    """Sync unary and streaming RPCs see debug exactly while the switch is on."""
    unary, server_stream, client_stream = sync_server
    assert unary(_msg("a")).value == "a:False"
    assert [m.value for m in server_stream(_msg("s"))] == ["s:False"] * 3
    assert logs == [] or all(e["event"] == "debug logs switched" for e in logs)
    debug.default_switch.turn_on()
    assert unary(_msg("a")).value == "a:True"
    assert [m.value for m in server_stream(_msg("s"))] == ["s:True"] * 3
    assert client_stream(iter([_msg("x"), _msg("y")])).value == "x+y:True"
    debug.default_switch.turn_off()
    assert unary(_msg("a")).value == "a:False"


def test_sync_metadata_trigger(sync_server) -> None:
    """The trigger metadata key turns debug on for one RPC only."""
    unary, _, _ = sync_server
    assert unary(_msg("a"), metadata=[("x-clue-debug", "on")]).value == "a:True"
    assert unary(_msg("a")).value == "a:False"


def test_sync_payloads_logged_as_json_while_debug(sync_server, logs) -> None:
    """With debug on, request and response messages are logged as JSON, streams per message."""
    unary, server_stream, client_stream = sync_server
    unary(_msg("quiet"))
    assert not [e for e in logs if e["event"] in ("payload", "result")]
    debug.default_switch.turn_on()
    unary(_msg("hello"))
    list(server_stream(_msg("st")))
    client_stream(iter([_msg("c1"), _msg("c2")]))
    payloads = [e for e in logs if e["event"] in ("payload", "result")]
    assert [(e["event"], e.get("payload") or e.get("result")) for e in payloads] == [
        ("payload", '"hello"'),
        ("result", '"hello:True"'),
        ("payload", '"st"'),
        ("result", '"st:True"'),
        ("result", '"st:True"'),
        ("result", '"st:True"'),
        ("payload", '"c1"'),
        ("payload", '"c2"'),
        ("result", '"c1+c2:True"'),
    ]
    assert all(e["log_level"] == "debug" for e in payloads)


def test_payload_truncation_in_interceptor(sync_server, logs) -> None:
    """Large messages are cut to max_size with the marker."""
    unary, _, _ = sync_server
    debug.default_switch.turn_on()
    unary(_msg("x" * 500))
    payload = next(e["payload"] for e in logs if e["event"] == "payload")
    assert payload == json.dumps("x" * 500)[:64] + debug.TRUNCATED_MARKER


async def test_aio_rpcs_follow_the_switch_and_log_payloads(control, logs) -> None:
    """grpc.aio unary and streaming RPCs see debug while on, and their payloads are logged."""
    server = grpc.aio.server(
        interceptors=[
            debug.AioGrpcServerInterceptor(trigger_header="x-clue-debug"),
            debug.AioPayloadGrpcServerInterceptor(),
        ]
    )
    server.add_generic_rpc_handlers((_aio_handlers(control),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            unary, server_stream, client_stream = _methods(channel)
            assert (await unary(_msg("a"))).value == "a:False"
            trig = await unary(_msg("t"), metadata=(("x-clue-debug", "on"),))
            assert trig.value == "t:True"
            debug.default_switch.turn_on()
            assert (await unary(_msg("b"))).value == "b:True"
            assert [m.value async for m in server_stream(_msg("s"))] == ["s:True"] * 3

            async def requests():
                yield _msg("p")
                yield _msg("q")

            assert (await client_stream(requests())).value == "p+q:True"
    finally:
        await server.stop(None)
    events = [(e["event"], e.get("payload") or e.get("result")) for e in logs]
    assert ("payload", '"b"') in events
    assert ("result", '"b:True"') in events
    assert events.count(("result", '"s:True"')) == 3
    assert ("payload", '"q"') in events
    assert ("payload", '"a"') not in events


def _client_events(logs):
    return [
        (e["event"], e.get("client-payload") or e.get("client-result"))
        for e in logs
        if e["event"].startswith("client-")
    ]


@pytest.fixture
def plain_server(control):
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((_sync_handlers(control),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None).wait(5)


def test_sync_client_interceptor_logs_payloads_while_debug(plain_server, control, logs) -> None:
    """The client interceptor logs client-payload/result for every RPC kind, only with debug."""
    channel = grpc.intercept_channel(
        grpc.insecure_channel(plain_server), debug.PayloadGrpcClientInterceptor()
    )
    unary, server_stream, client_stream, bidi = _methods(channel, bidi=True)
    try:
        assert unary(_msg("quiet")).value == "quiet:False"
        assert _client_events(logs) == []
        with control.debug_scope():
            assert unary(_msg("u")).value == "u:False"
            assert unary.future(_msg("f")).result().value == "f:False"
            stream = server_stream(_msg("s"))
            assert [m.value for m in stream] == ["s:False"] * 3
            assert stream.code() == grpc.StatusCode.OK
            assert client_stream(iter([_msg("a"), _msg("b")])).value == "a+b:False"
            assert [m.value for m in bidi(iter([_msg("x"), _msg("y")]))] == ["X", "Y"]
    finally:
        channel.close()
    events = _client_events(logs)
    assert events[:4] == [
        ("client-payload", '"u"'),
        ("client-result", '"u:False"'),
        ("client-payload", '"f"'),
        ("client-result", '"f:False"'),
    ]
    assert events[4:8] == [("client-payload", '"s"')] + [("client-result", '"s:False"')] * 3
    assert events[8:11] == [
        ("client-payload", '"a"'),
        ("client-payload", '"b"'),
        ("client-result", '"a+b:False"'),
    ]
    assert sorted(events[11:]) == sorted(
        [
            ("client-payload", '"x"'),
            ("client-payload", '"y"'),
            ("client-result", '"X"'),
            ("client-result", '"Y"'),
        ]
    )


def test_sync_client_interceptor_failed_call_logs_no_result(plain_server, control, logs) -> None:
    """A failing call raises its RpcError unchanged and logs only the payload."""
    channel = grpc.intercept_channel(
        grpc.insecure_channel(plain_server), debug.PayloadGrpcClientInterceptor()
    )
    missing = channel.unary_unary(f"/{SERVICE}/Missing", _ser, _de)
    try:
        with control.debug_scope(), pytest.raises(grpc.RpcError) as err:
            missing(_msg("m"))
    finally:
        channel.close()
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert _client_events(logs) == [("client-payload", '"m"')]


async def test_aio_client_interceptors_log_payloads(control, logs) -> None:
    """The grpc.aio client interceptors log every RPC kind while debug is on."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_aio_handlers(control),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", interceptors=debug.aio_payload_grpc_client_interceptors()
        ) as channel:
            unary, server_stream, client_stream, bidi = _methods(channel, bidi=True)
            assert (await unary(_msg("quiet"))).value == "quiet:False"
            assert _client_events(logs) == []
            with control.debug_scope():
                assert (await unary(_msg("u"))).value == "u:False"
                assert [m.value async for m in server_stream(_msg("s"))] == ["s:False"] * 3
                assert (await client_stream(iter([_msg("a"), _msg("b")]))).value == "a+b:False"

                async def requests():
                    yield _msg("x")
                    yield _msg("y")

                assert [m.value async for m in bidi(requests())] == ["X", "Y"]
                with pytest.raises(grpc.aio.AioRpcError):
                    await channel.unary_unary(f"/{SERVICE}/Missing", _ser, _de)(_msg("m"))
    finally:
        await server.stop(None)
    events = _client_events(logs)
    assert events[:2] == [("client-payload", '"u"'), ("client-result", '"u:False"')]
    assert events[2:6] == [("client-payload", '"s"')] + [("client-result", '"s:False"')] * 3
    assert sorted(events[6:9]) == sorted(
        [("client-payload", '"a"'), ("client-payload", '"b"'), ("client-result", '"a+b:False"')]
    )
    assert sorted(events[9:13]) == sorted(
        [
            ("client-payload", '"x"'),
            ("client-payload", '"y"'),
            ("client-result", '"X"'),
            ("client-result", '"Y"'),
        ]
    )
    assert events[13:] == [("client-payload", '"m"')]


def test_importing_clue_debug_does_not_import_grpc() -> None:
    """import clue.debug leaves grpc unloaded until a gRPC name is used."""
    import subprocess
    import sys

    code = (
        "import sys, clue.debug as d; assert 'grpc' not in sys.modules; "
        "d.GrpcServerInterceptor; assert 'grpc' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


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
    """A non-blocking handler (grpcio's ``experimental_non_blocking``) behind the debug
    and payload interceptors is left alone and answers as it would without them."""
    interceptors = [
        debug.GrpcServerInterceptor(),
        debug.PayloadGrpcServerInterceptor(),
    ]
    assert _serve_non_blocking(interceptors) == [b"hi-1", b"hi-2"]
