"""The public API as users write it, checked by ``mypy --strict`` (the typecheck session).

Not a test module: pytest does not collect it and nothing runs it. Each ``assert_type``
states the type a user's code sees; a change of a public signature that breaks one fails
the typecheck session.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, assert_type

import grpc
import httpx
import requests
import structlog
from starlette.applications import Starlette

from clue import log
from clue.log import celery, testing


def configure_and_log() -> None:
    out = io.StringIO()
    log.configure(output=out, format=log.format_text, max_buffered=100)
    log.configure(outputs=[(out, log.format_json), (io.StringIO(), log.format_terminal)])
    with log.context(debug=True):
        log.bind(user="alice")
        log.bind(log.KV("k", 1), log.Fields(a=1))
        log.info("loading", user="alice")
        log.debug("detail %s", 1)
        log.warn("slow")
        log.warning("slow")
        log.print("plain")
        log.error("failed", err=ValueError("x"))
        assert_type(log.debug_enabled(), bool)
        assert_type(log.is_tracing(), bool)
        assert_type(log.span(), list[tuple[str, str]])
    log.flush()


def options() -> None:
    def tenant() -> list[tuple[str, str]]:
        return [("tenant", "acme")]

    log.configure(
        output=io.StringIO(),
        funcs=[log.span, tenant],
        disable_buffering=lambda: False,
        file_location=True,
    )
    log.ASGIMiddleware(Starlette(), error_status=lambda status: status >= 500)
    log.GrpcServerInterceptor(error_func=lambda code: code != grpc.StatusCode.OK)
    log.RequestsAdapter(error_func=lambda status: status >= 400, request_log_func=log.info)
    celery.install(task_log_func=log.info)
    celery.uninstall()


def fatal_never_returns() -> NoReturn:
    log.fatal("cannot start")


def formats(entry: log.Entry) -> None:
    assert_type(log.format_text(entry), str)
    assert_type(log.format_terminal(entry), str)
    assert_type(log.format_json(entry), bytes)
    assert_type(entry.severity, str)
    assert_type(entry.time_ns, int)
    assert_type(log.MESSAGE_KEY, str)
    assert_type(log.TIMESTAMP_FORMAT, str)


@log.context()
def handle(order_id: str) -> int:
    return len(order_id)


@log.context(disable_buffering=True)
async def ahandle(order_id: str) -> int:
    return len(order_id)


@log.endpoint("orders", "create")
def create(order_id: str) -> bool:
    return bool(order_id)


@log.endpoint("orders", "acreate")
async def acreate(order_id: str) -> bool:
    return bool(order_id)


@log.context()
def generate(n: int) -> Iterator[int]:
    yield from range(n)


def decorated() -> None:
    assert_type(handle("a"), int)
    assert_type(create("a"), bool)
    assert_type(generate(2), Iterator[int])


async def decorated_async() -> None:
    assert_type(await ahandle("a"), int)
    assert_type(await acreate("a"), bool)
    # A decorated coroutine function still gives coroutines: tasks and ``asyncio.run``
    # take them.
    task = asyncio.create_task(acreate("a"))
    assert_type(task, asyncio.Task[bool])
    assert_type(await task, bool)
    handled = asyncio.create_task(ahandle("a"))
    assert_type(handled, asyncio.Task[int])


def run_decorated_async() -> None:
    assert_type(asyncio.run(acreate("a")), bool)
    assert_type(asyncio.run(ahandle("a")), int)


def stdlib_and_structlog() -> None:
    handler = log.StdlibHandler()
    logging.getLogger().addHandler(handler)
    assert_type(log.as_std_logger("app"), logging.Logger)
    structlog.configure(processors=[log.BufferingProcessor()])


def web(app: Starlette) -> None:
    asgi = log.ASGIMiddleware(app, path_filters=["/livez"], disable_request_id=False)
    Starlette().add_middleware(log.ASGIMiddleware, path_filters=["/readyz"])
    assert_type(asgi, log.ASGIMiddleware)

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        return [b""]

    assert_type(log.WSGIMiddleware(wsgi_app), log.WSGIMiddleware)


def http_clients() -> None:
    session = requests.Session()
    session.mount("http://", log.RequestsAdapter(log_body_on_error=True))
    httpx.Client(transport=log.HttpxTransport())
    httpx.AsyncClient(transport=log.AsyncHttpxTransport(max_body_size=512))


def grpc_interceptors() -> None:
    grpc.server(None, interceptors=[log.GrpcServerInterceptor()])
    grpc.aio.server(interceptors=[log.AioGrpcServerInterceptor(disable_call_id=True)])
    grpc.intercept_channel(grpc.insecure_channel("localhost:1"), log.GrpcClientInterceptor())
    grpc.aio.insecure_channel("localhost:1", interceptors=log.aio_grpc_client_interceptors())


def capture_in_tests() -> None:
    with testing.capture(log.format_json, debug=True) as logs:
        assert_type(logs, testing.CapturedLogs)
        assert_type(logs.lines, list[str])
        assert_type(logs.dicts(), list[dict[str, Any]])
        assert_type(logs.entries, list[log.Entry])
    testing.reset()
