"""The grpc.health.v1 servicer on real gRPC servers (sync and aio)."""

from __future__ import annotations

import subprocess
import sys
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clue.health import Checker, Probes
from clue.health.grpc import AioHealthServicer, HealthServicer, add_to_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


@pytest.fixture
def grpc_serve():
    """``grpc_serve(servicer) -> stub`` on a sync grpc.server bound to 127.0.0.1."""
    servers, channels = [], []

    def start(servicer):  # type: ignore[no-untyped-def]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        add_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return health_pb2_grpc.HealthStub(channel)

    yield start
    for channel in channels:
        channel.close()
    for server in servers:
        server.stop(None).wait(5)


def _check(stub, service: str = "") -> int:  # type: ignore[no-untyped-def]
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_check_reports_the_overall_status(grpc_serve, pingers):
    """Check("") is SERVING when every dependency is OK and NOT_SERVING otherwise."""
    db = pingers.sync("db")
    stub = grpc_serve(HealthServicer(Checker(db, cache_ttl=0)))
    assert _check(stub) == SERVING
    db.error = OSError("down")
    assert _check(stub) == NOT_SERVING


def test_check_by_dependency_and_service_name(grpc_serve, pingers):
    """Dependency names report themselves; registered services report the whole."""
    checker = Checker(pingers.sync("db"), pingers.sync("cache", error=OSError()), cache_ttl=0)
    stub = grpc_serve(HealthServicer(checker, services=["weather.Forecaster"]))
    assert _check(stub, "db") == SERVING
    assert _check(stub, "cache") == NOT_SERVING
    assert _check(stub, "weather.Forecaster") == NOT_SERVING


def test_check_unknown_service_is_not_found(grpc_serve):
    """Check on an unknown name fails with NOT_FOUND, as the protocol requires."""
    stub = grpc_serve(HealthServicer(Checker()))
    with pytest.raises(grpc.RpcError) as info:
        _check(stub, "nope")
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_liveness_service_never_calls_a_dependency(grpc_serve, pingers):
    """The liveness name is SERVING with no ping, even with a hung dependency."""
    hung = pingers.sync("db", block=True)
    stub = grpc_serve(HealthServicer(Checker(hung, timeout=5)))
    assert _check(stub, "liveness") == SERVING
    assert hung.calls == 0


def test_shutdown_makes_the_server_not_serving(grpc_serve, pingers):
    """After probes.shutdown() the server is NOT_SERVING without pinging; liveness stays."""
    db = pingers.sync("db")
    probes = Probes(Checker(db, cache_ttl=0))
    stub = grpc_serve(HealthServicer(probes.checker, probes=probes))
    assert _check(stub) == SERVING
    calls = db.calls
    probes.shutdown()
    assert _check(stub) == NOT_SERVING
    assert _check(stub, "liveness") == SERVING
    assert db.calls == calls


def test_watch_streams_changes(grpc_serve, pingers):
    """Watch sends the current status, then the change when readiness turns off."""
    probes = Probes(Checker(pingers.sync("db")))
    stub = grpc_serve(HealthServicer(probes.checker, probes=probes, watch_interval=30))
    stream = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert next(stream).status == SERVING
    probes.shutdown()
    assert next(stream).status == NOT_SERVING
    stream.cancel()


def test_watch_unknown_service_streams_service_unknown(grpc_serve):
    """Watch on an unknown name sends SERVICE_UNKNOWN instead of failing."""
    stub = grpc_serve(HealthServicer(Checker()))
    stream = stub.Watch(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
    assert next(stream).status == SERVICE_UNKNOWN
    stream.cancel()


def test_list_reports_every_name(grpc_serve, pingers):
    """List answers the overall, liveness, service and dependency statuses."""
    checker = Checker(pingers.sync("db"), pingers.sync("cache", error=OSError()), cache_ttl=0)
    stub = grpc_serve(HealthServicer(checker, services=["svc.A"]))
    statuses = stub.List(health_pb2.HealthListRequest(), timeout=5).statuses
    assert {k: v.status for k, v in statuses.items()} == {
        "": NOT_SERVING,
        "svc.A": NOT_SERVING,
        "liveness": SERVING,
        "db": SERVING,
        "cache": NOT_SERVING,
    }


async def test_aio_servicer(pingers):
    """The grpc.aio servicer answers Check, Watch and List the same way."""
    db = pingers.aio("db")
    probes = Probes(Checker(db, pingers.sync("cache"), cache_ttl=0))
    server = grpc.aio.server()
    add_to_server(AioHealthServicer(probes.checker, probes=probes, watch_interval=30), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="")
            assert (await stub.Check(request, timeout=5)).status == SERVING
            assert (
                await stub.Check(health_pb2.HealthCheckRequest(service="db"), timeout=5)
            ).status == SERVING
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
            assert info.value.code() is grpc.StatusCode.NOT_FOUND
            listed = await stub.List(health_pb2.HealthListRequest(), timeout=5)
            assert set(listed.statuses) == {"", "liveness", "db", "cache"}
            call = stub.Watch(request, timeout=10)
            assert (await call.read()).status == SERVING
            probes.shutdown()
            assert (await call.read()).status == NOT_SERVING
            call.cancel()
    finally:
        await server.stop(None)


def test_servicer_validates_its_arguments():
    """Wrong arguments fail at configuration time with the option named."""
    with pytest.raises(TypeError, match="Checker"):
        HealthServicer(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Probes"):
        HealthServicer(Checker(), probes=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="services"):
        HealthServicer(Checker(), services="svc.A")
    with pytest.raises(ValueError, match="watch_interval"):
        AioHealthServicer(Checker(), watch_interval=0)


def test_importing_clue_health_does_not_import_grpc():
    """The gRPC extra stays lazy: importing clue.health loads no grpc module."""
    code = "import sys, clue.health; assert not [m for m in sys.modules if m.startswith('grpc')]"
    subprocess.run([sys.executable, "-c", code], check=True)
