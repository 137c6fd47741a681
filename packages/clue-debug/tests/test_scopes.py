"""A debug scope that outlives its call (a WSGI response, a gRPC response stream) lives
in a private context: it never leaks into the server's context and always ends where it
began, even when the server drops the response or closes it from elsewhere."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import flask
import pytest

from clue import debug
from clue.debug._grpc import _aio_debug_wrap, _sync_debug_wrap
from clue.debug.testing import FakeLogControl


@pytest.fixture
def no_warnings(logs: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Fails the test if clue.debug logged any warning (a log control that failed)."""
    yield logs
    warnings = [e for e in logs if e.get("log_level") == "warning"]
    assert warnings == [], warnings


def _asgi_get(app: Any, path: str) -> int:
    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        await app(scope, receive, send)

    asyncio.run(call())
    return int(sent[0]["status"])


def test_flask_adapt_and_mux_in_one_process(
    control: FakeLogControl, no_warnings: list[dict[str, Any]]
) -> None:
    """A Flask response the client never closes neither leaves debug on in the client's
    context nor ends its scope from the Mux's event loop (the "Token was created in a
    different Context" warning)."""
    app = flask.Flask("svc")
    seen: list[bool] = []

    @app.get("/hello")
    def hello() -> str:
        seen.append(control.debug_enabled())
        return "hi"

    debug.mount_debug_log_enabler(debug.adapt(app))
    app.wsgi_app = debug.WSGIMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    mux = debug.Mux()
    debug.mount_debug_log_enabler(mux)
    client = app.test_client()
    assert client.get("/debug?debug-logs=on").status_code == 200
    dropped = [client.get("/hello")]  # never closed
    assert seen == [True]
    assert not control.debug_enabled()  # nothing leaked into this thread's context

    async def serve_mux_and_collect() -> None:
        dropped.clear()  # the response dies here, inside a task of another context
        gc.collect()

    asyncio.run(serve_mux_and_collect())
    assert _asgi_get(mux, "/debug") == 200
    assert control.scopes_entered == 1


def test_a_wsgi_response_closed_from_another_thread(
    control: FakeLogControl, no_warnings: list[dict[str, Any]]
) -> None:
    """A server that iterates and closes the response on another thread (an ASGI-to-WSGI
    bridge) keeps debug on for the body and ends the scope cleanly."""
    seen: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        seen.append(control.debug_enabled())
        yield b"a"
        seen.append(control.debug_enabled())
        yield b"b"

    debug.default_switch.turn_on()
    response = debug.WSGIMiddleware(app)({}, lambda *a: None)
    assert not control.debug_enabled()
    body: list[bytes] = []

    def serve() -> None:
        body.extend(response)
        response.close()  # type: ignore[attr-defined]

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(10)
    assert body == [b"a", b"b"]
    assert seen == [True, True]


def test_a_grpc_response_stream_abandoned_mid_way(
    control: FakeLogControl, no_warnings: list[dict[str, Any]]
) -> None:
    """A sync gRPC response stream started in one context and closed from another (a
    cancelled RPC) ends its debug scope without a failure, and leaks nothing."""
    seen: list[bool] = []

    def behavior(request: Any, context: Any) -> Iterator[int]:
        for i in range(3):
            seen.append(control.debug_enabled())
            yield i

    stream = _sync_debug_wrap(behavior, False, True)(None, None)
    assert contextvars.copy_context().run(next, stream) == 0
    assert not control.debug_enabled()
    contextvars.copy_context().run(stream.close)
    assert seen == [True]
    assert control.scopes_entered == 1


async def test_an_aio_response_stream_closed_from_another_task(
    control: FakeLogControl, no_warnings: list[dict[str, Any]]
) -> None:
    """A grpc.aio response stream advanced in one task and closed from another ends its
    debug scope without a failure; each step of the handler runs with debug on, and the
    caller's context never has it."""
    seen: list[bool] = []
    closed = asyncio.Event()

    async def behavior(request: Any, context: Any) -> AsyncIterator[int]:
        try:
            for i in range(3):
                seen.append(control.debug_enabled())
                yield i
        finally:
            seen.append(control.debug_enabled())
            closed.set()

    stream = _aio_debug_wrap(behavior, False, True)(None, None)

    async def step() -> int:
        return await anext(stream)

    async def close() -> None:
        await stream.aclose()

    assert await asyncio.create_task(step()) == 0
    assert await asyncio.create_task(step()) == 1
    assert not control.debug_enabled()
    await asyncio.create_task(close(), context=contextvars.Context())
    assert closed.is_set()
    assert seen == [True, True, True]
    assert control.scopes_entered == 1
