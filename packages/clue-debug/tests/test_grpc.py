"""gRPC interceptors (sync and grpc.aio): the switch per RPC, payload logs."""

from __future__ import annotations

import json
from concurrent import futures

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

    return _generic(unary, server_stream, client_stream)


def _aio_handlers(control):
    async def unary(request, context):
        return _reply(control, request)

    async def server_stream(request, context):
        for _ in range(3):
            yield _reply(control, request)

    async def client_stream(requests, context):
        values = [r.value async for r in requests]
        return wrappers_pb2.StringValue(value=f"{'+'.join(values)}:{control.debug_enabled()}")

    return _generic(unary, server_stream, client_stream)


def _generic(unary, server_stream, client_stream):
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, _de, _ser),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, _de, _ser),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, _de, _ser),
        },
    )


def _methods(channel):
    return (
        channel.unary_unary(f"/{SERVICE}/Unary", _ser, _de),
        channel.unary_stream(f"/{SERVICE}/ServerStream", _ser, _de),
        channel.stream_unary(f"/{SERVICE}/ClientStream", _ser, _de),
    )


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


def test_importing_clue_debug_does_not_import_grpc() -> None:
    """import clue.debug leaves grpc unloaded until a gRPC name is used."""
    import subprocess
    import sys

    code = (
        "import sys, clue.debug as d; assert 'grpc' not in sys.modules; "
        "d.GrpcServerInterceptor; assert 'grpc' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
