"""The public API as users write it, checked by ``mypy --strict`` (the typecheck session).

Not a test module: pytest does not collect it and nothing runs it. Each ``assert_type``
states the type a user's code sees; a change of a public signature that breaks one fails
the typecheck session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, assert_type

import flask
import grpc
from starlette.applications import Starlette

from clue import debug
from clue.debug import testing


def admin() -> None:
    def allow(request: debug.Request) -> bool:
        return request.headers.get("authorization") == "Bearer secret"

    server = debug.serve_admin(0, auth=allow)
    assert_type(server, debug.AdminServer)
    server.close()


def mux() -> debug.Mux:
    m = debug.Mux(allowed_hosts=["localhost"])

    def hello(request: debug.Request) -> debug.Response:
        return debug.Response(200, b"hello " + request.path.encode())

    m.handle("/hello", hello)
    debug.mount_pprof_handlers(m, max_seconds=30.0)
    debug.mount_debug_log_enabler(m, duration=60.0)
    assert_type(m.dispatch(debug.Request("GET", "/hello")), debug.Response)
    assert_type(m.paths(), list[str])
    router: debug.Router = m
    router.handle("/bye", hello)
    return m


def adapters(app: flask.Flask) -> None:
    router = debug.adapt(app)
    assert_type(router, debug.Router)
    debug.mount_pprof_handlers(router)
    debug.mount_debug_log_enabler(debug.adapt(Starlette()))


def switch() -> None:
    s = debug.DebugLogSwitch()
    s.turn_on(duration=30.0, source="ops")
    assert_type(s.enabled(), bool)
    assert_type(s.remaining(), float | None)
    debug.default_switch.turn_off()


def middleware(app: Starlette) -> None:
    asgi = debug.ASGIMiddleware(app, trigger_header="x-debug", propagate_trigger=True)
    Starlette().add_middleware(debug.ASGIMiddleware, trigger_header="x-debug")
    assert_type(asgi, debug.ASGIMiddleware)

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return [b""]

    debug.WSGIMiddleware(wsgi_app, switch=debug.default_switch)
    debug.WSGIMiddleware(flask.Flask(__name__).wsgi_app)


def grpc_interceptors() -> None:
    grpc.server(
        None,
        interceptors=[debug.GrpcServerInterceptor(), debug.PayloadGrpcServerInterceptor()],
    )
    grpc.aio.server(
        interceptors=[debug.AioGrpcServerInterceptor(), debug.AioPayloadGrpcServerInterceptor()]
    )
    grpc.intercept_channel(
        grpc.insecure_channel("localhost:1"), debug.PayloadGrpcClientInterceptor()
    )
    grpc.aio.insecure_channel(
        "localhost:1", interceptors=debug.aio_payload_grpc_client_interceptors(max_size=256)
    )


@debug.log_payloads(max_size=2048)
def create_order(order: dict[str, int]) -> dict[str, int]:
    return {"id": 1, **order}


@debug.log_payloads(client=True, format=repr)
async def fetch_order(order_id: int) -> str:
    return str(order_id)


def payloads() -> None:
    assert_type(create_order({"sku": 1}), dict[str, int])
    assert_type(asyncio.run(fetch_order(1)), str)
    assert_type(debug.format_json({"a": 1}), str)
    assert_type(debug.TRUNCATED_MARKER, str)


def log_control() -> None:
    control = debug.get_log_control()
    assert_type(control.debug_enabled(), bool)
    with control.debug_scope():
        pass
    fake = testing.FakeLogControl()
    debug.set_log_control(fake)
    assert_type(fake.scopes_entered, int)
    debug.set_log_control(None)
    testing.reset()
