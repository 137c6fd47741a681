"""Watch streams never starve a server of the threads its Check (and other RPCs) need."""

from __future__ import annotations

import asyncio
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clue.health import Checker
from clue.health.grpc import AioHealthServicer, HealthServicer, add_to_server

SERVING = health_pb2.HealthCheckResponse.SERVING
THREADS = 16
WATCHERS = 20  # more than the server has threads


def test_watchers_beyond_max_watchers_are_refused_and_check_answers(pingers) -> None:
    """On a 16-thread sync server, 20 watchers leave Check answering: 4 (the default)
    are served, the others are refused with RESOURCE_EXHAUSTED at once."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=THREADS))
    add_to_server(
        HealthServicer(Checker(pingers.sync("db"), timeout=10), watch_interval=30), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service="")
    calls = [stub.Watch(request, timeout=20) for _ in range(WATCHERS)]
    try:
        outcomes = [_first(call) for call in calls]
        refused = (grpc.StatusCode.RESOURCE_EXHAUSTED, True)
        assert outcomes.count(SERVING) == 4
        assert outcomes.count(refused) == WATCHERS - 4
        assert stub.Check(request, timeout=5).status == SERVING
        # A freed slot is served again (once the cancelled stream has ended on the server).
        calls[outcomes.index(SERVING)].cancel()  # one of the served streams
        deadline = time.monotonic() + 10
        while True:
            calls.append(stub.Watch(request, timeout=20))
            outcome = _first(calls[-1])
            if outcome == SERVING or time.monotonic() > deadline:
                break
            assert outcome == refused
        assert outcome == SERVING
    finally:
        for call in calls:
            call.cancel()
        channel.close()
        server.stop(None).wait(5)


def _first(call) -> object:  # type: ignore[no-untyped-def]
    """The first status a Watch call streams, or (its error code, max_watchers named)."""
    try:
        return next(call).status
    except grpc.RpcError as err:
        return err.code(), "max_watchers=4" in (err.details() or "")


def test_max_watchers_none_is_unbounded_and_validated() -> None:
    """max_watchers=None lifts the bound; a negative or non-int value is a ValueError."""
    HealthServicer(Checker(), max_watchers=None)
    for bad in (-1, 1.5, True, "4"):
        with pytest.raises(ValueError, match="max_watchers"):
            HealthServicer(Checker(), max_watchers=bad)  # type: ignore[arg-type]


async def test_aio_watchers_hold_no_thread(pingers) -> None:
    """The aio servicer serves more watchers than a sync server has threads, every one
    of them, and Check still answers."""
    server = grpc.aio.server()
    add_to_server(
        AioHealthServicer(Checker(pingers.sync("db"), timeout=10), watch_interval=30), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service="")
            calls = [stub.Watch(request, timeout=20) for _ in range(3 * WATCHERS)]
            firsts = await asyncio.gather(*(call.read() for call in calls))
            assert [f.status for f in firsts] == [SERVING] * len(calls)
            assert (await stub.Check(request, timeout=5)).status == SERVING
            for call in calls:
                call.cancel()
    finally:
        await server.stop(None)
