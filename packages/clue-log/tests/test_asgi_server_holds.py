"""What an ASGI server keeps from a request's send and receive never holds its log context.

uvicorn arms a connection's keep-alive timer inside the request's last ``send``, and asyncio
copies the current ``contextvars`` context into every timer, callback and reader it makes;
the event loop keeps a cancelled timer (and its copy) until it reaches the head of its queue.
The server double here keeps such a copy at every ``send`` and ``receive``, whatever the
application does, and runs code in each copy after the request, as a timer would.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue import log


class HoldingServer:
    """An ASGI server double: keeps a copy of the current context at each send and receive."""

    def __init__(self, body_chunks: int) -> None:
        self.kept: list[contextvars.Context] = []
        self._chunks = body_chunks

    async def receive(self) -> dict[str, Any]:
        self.kept.append(contextvars.copy_context())
        if self._chunks > 0:
            self._chunks -= 1
            return {"type": "http.request", "body": b"x", "more_body": self._chunks > 0}
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.kept.append(contextvars.copy_context())


def app_doing(lines: int, reads: int, chunks: int, fail: str) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        for i in range(lines):
            log.info("step", i=i)
        for _ in range(reads):
            await receive()
        if fail == "before":
            raise RuntimeError("before the response")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(chunks):
            await send({"type": "http.response.body", "body": b"ok", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if fail == "after":
            raise RuntimeError("after the response")

    return app


# The capture is read as a delta per example: reusing the fixture across examples is fine.
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.integers(0, 12),
    reads=st.integers(0, 3),
    chunks=st.integers(0, 3),
    fail=st.sampled_from(["no", "before", "after"]),
    buffered_lines=st.booleans(),
)
def test_what_the_server_keeps_runs_outside_the_request(
    logs: Any, lines: int, reads: int, chunks: int, fail: str, buffered_lines: bool
) -> None:
    """Code the server runs later in what it kept from send or receive is not in the request."""
    opts: dict[str, Any] = {"request_log_func": log.info} if buffered_lines else {}
    server = HoldingServer(body_chunks=reads)
    middleware = log.ASGIMiddleware(app_doing(lines, reads, chunks, fail), **opts)
    scope = {"type": "http", "method": "GET", "path": "/p", "headers": [], "query_string": b""}

    async def serve() -> None:
        try:
            await middleware(scope, server.receive, server.send)
        except RuntimeError:
            assert fail != "no"

    asyncio.run(serve())
    assert server.kept  # the middleware went through the server's send or receive
    before = len(logs.entries())
    for kept in server.kept:
        kept.run(log.error, "late")
    late = logs.entries()[before:]
    # Each late call is written alone, at once, outside any request: no buffered line of the
    # request comes with it, and it carries no request id.
    assert [e["msg"] for e in late] == ["late"] * len(server.kept)
    assert all("request_id" not in e for e in late)


def test_what_the_server_keeps_sees_the_enclosing_context(logs: Any) -> None:
    """The server's send runs in the log context that was current around the middleware."""
    server = HoldingServer(body_chunks=0)
    middleware = log.ASGIMiddleware(app_doing(3, 0, 1, "no"), request_log_func=log.info)
    scope = {"type": "http", "method": "GET", "path": "/p", "headers": [], "query_string": b""}

    async def serve() -> None:
        with log.context():
            log.bind(outer="yes")
            await middleware(scope, server.receive, server.send)

    asyncio.run(serve())
    server.kept[-1].run(log.error, "late")
    assert [(e["msg"], e.get("outer"), "request_id" in e) for e in logs.entries()] == [
        ("late", "yes", False)
    ]


class HoldingWebsocketServer:
    """A websocket server double that keeps a copy of the context at each send and receive."""

    def __init__(self, messages: int) -> None:
        self.kept: list[contextvars.Context] = []
        self._incoming = [{"type": "websocket.connect"}] + [
            {"type": "websocket.receive", "text": "hi"} for _ in range(messages)
        ]

    async def receive(self) -> dict[str, Any]:
        self.kept.append(contextvars.copy_context())
        if self._incoming:
            return self._incoming.pop(0)
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: dict[str, Any]) -> None:
        self.kept.append(contextvars.copy_context())


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(messages=st.integers(0, 3), fail=st.booleans())
def test_what_a_websocket_server_keeps_runs_outside_the_connection(
    logs: Any, messages: int, fail: bool
) -> None:
    """Code a server runs later in what it kept from a websocket's send or receive is not in it."""
    server = HoldingWebsocketServer(messages)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        for _ in range(messages):
            await receive()
            log.info("echo")
            await send({"type": "websocket.send", "text": "hi"})
        if fail:
            raise RuntimeError("handler failed")
        await send({"type": "websocket.close", "code": 1000})

    middleware = log.ASGIMiddleware(app)
    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}

    async def serve() -> None:
        try:
            await middleware(scope, server.receive, server.send)
        except RuntimeError:
            assert fail

    asyncio.run(serve())
    before = len(logs.entries())
    for kept in server.kept:
        kept.run(log.error, "late")
    late = logs.entries()[before:]
    assert [e["msg"] for e in late] == ["late"] * len(server.kept)
    assert all("request_id" not in e for e in late)
