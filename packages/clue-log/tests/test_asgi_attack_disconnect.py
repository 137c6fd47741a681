"""An ``http.disconnect`` read after the whole response went out is not a client gone away.

ASGI servers answer ``receive()`` with ``http.disconnect`` once the response is complete
(the spec says so, uvicorn does it), and Starlette's ``StreamingResponse`` keeps a task
reading ``receive()`` while it streams: an exception escaping the app afterwards (a
``BackgroundTask`` that fails) is still the app's failure. Likewise the
``websocket.disconnect`` read after the app closed its websocket itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clue import log
from clue.log.testing import capture


class SpecServer:
    """A server double: ``receive`` answers ``http.disconnect`` once the response is complete."""

    def __init__(self) -> None:
        self.complete = False
        self.sent: list[Any] = []

    async def receive(self) -> Any:
        if self.complete:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: Any) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True


@given(chunks=st.integers(0, 3), reads=st.integers(1, 3), status=st.sampled_from([200, 404]))
def test_failing_after_a_complete_response_and_a_disconnect_fails_the_request(
    chunks: int, reads: int, status: int
) -> None:
    """An app that finishes its response, reads the server's ``http.disconnect`` and then
    raises writes its context and an error ``end`` with the status it sent."""
    server = SpecServer()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        log.info("handled")
        await send({"type": "http.response.start", "status": status, "headers": []})
        for _ in range(chunks):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        for _ in range(reads):
            assert (await receive())["type"] == "http.disconnect"
        log.info("background work")
        raise RuntimeError("background failed")

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    with capture() as cap, pytest.raises(RuntimeError):
        asyncio.run(log.ASGIMiddleware(app)(scope, server.receive, server.send))
    assert [(d["msg"], d["level"]) for d in cap.dicts()] == [
        ("start", "info"),
        ("handled", "info"),
        ("background work", "info"),
        ("unhandled exception", "error"),
        ("end", "error"),
    ]
    assert cap.dicts()[-1]["http.status"] == status


def test_streaming_response_background_task_failing_under_uvicorn(
    logs: Any, serve_asgi: Any
) -> None:
    """Under uvicorn, a Starlette ``StreamingResponse`` whose ``BackgroundTask`` fails writes
    the request's context and an error ``end`` line with the 200 it sent."""
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    def fails() -> None:
        log.info("in background")
        raise RuntimeError("background failed")

    async def chunks() -> Any:
        yield b"a"
        yield b"b"

    async def stream(request: Any) -> StreamingResponse:
        log.info("handler")
        return StreamingResponse(chunks(), background=BackgroundTask(fails))

    app = Starlette(routes=[Route("/stream", stream)])
    app.add_middleware(log.ASGIMiddleware)
    url = serve_asgi(app)
    for _ in range(3):
        logs.out.truncate(0)
        logs.out.seek(0)
        with httpx.Client() as client:
            assert client.get(url + "/stream").content == b"ab"
        entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es), timeout=10)
        assert [(e["msg"], e["level"]) for e in entries] == [
            ("start", "info"),
            ("handler", "info"),
            ("in background", "info"),
            ("unhandled exception", "error"),
            ("end", "error"),
        ]
        assert entries[-1]["http.status"] == 200


class ClosingWebsocketServer:
    """A websocket server double: after the app's ``websocket.close`` (or, with
    ``client_leaves``, before it), every read answers ``websocket.disconnect``."""

    def __init__(self, client_leaves: bool) -> None:
        self.closed = client_leaves
        self.connected = False

    async def receive(self) -> Any:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        if self.closed:
            return {"type": "websocket.disconnect", "code": 1000}
        return {"type": "websocket.receive", "text": "hello"}

    async def send(self, message: Any) -> None:
        if message["type"] == "websocket.close":
            self.closed = True


@pytest.mark.parametrize("client_leaves", [False, True], ids=["app-closes", "client-leaves"])
def test_websocket_endpoint_failing_after_closing_its_connection(client_leaves: bool) -> None:
    """A Starlette ``WebSocketEndpoint`` that closes its connection and then fails in
    ``on_disconnect`` fails the connection: its context and the error are written. Only a
    client that left first makes the failure no error."""
    from starlette.endpoints import WebSocketEndpoint

    class Feed(WebSocketEndpoint):
        encoding = "text"

        async def on_receive(self, websocket: Any, data: Any) -> None:
            log.info("closing", data=data)
            await websocket.close()

        async def on_disconnect(self, websocket: Any, close_code: int) -> None:
            raise RuntimeError("cleanup failed")

    server = ClosingWebsocketServer(client_leaves)
    scope = {"type": "websocket", "path": "/ws", "headers": [(b"x-request-id", b"ws-1")]}
    with capture() as cap, pytest.raises(RuntimeError, match="cleanup failed"):
        asyncio.run(log.ASGIMiddleware(Feed)(scope, server.receive, server.send))
    if client_leaves:
        assert cap.dicts() == []
    else:
        assert [(d["msg"], d["level"]) for d in cap.dicts()] == [
            ("closing", "info"),
            ("unhandled exception", "error"),
        ]
        assert {d["request_id"] for d in cap.dicts()} == {"ws-1"}


def test_websocket_endpoint_failing_after_closing_under_uvicorn(logs: Any, serve_asgi: Any) -> None:
    """Under uvicorn, a ``WebSocketEndpoint`` that closes its connection and then fails in
    ``on_disconnect`` writes its context and the error under the connection's request id."""
    from starlette.applications import Starlette
    from starlette.endpoints import WebSocketEndpoint
    from starlette.routing import WebSocketRoute
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    class Feed(WebSocketEndpoint):
        encoding = "text"

        async def on_receive(self, websocket: Any, data: Any) -> None:
            log.info("closing", data=data)
            await websocket.close()

        async def on_disconnect(self, websocket: Any, close_code: int) -> None:
            raise RuntimeError("cleanup failed")

    app = Starlette(routes=[WebSocketRoute("/ws", Feed)])
    app.add_middleware(log.ASGIMiddleware)
    url = serve_asgi(app, ws="websockets-sansio").replace("http://", "ws://")
    with connect(url + "/ws", additional_headers={"X-Request-Id": "ws-2"}) as conn:
        conn.send("bye")
        with pytest.raises(ConnectionClosed):  # the server closed
            conn.recv(timeout=10)
    entries = logs.wait_for(lambda es: any(e.get("msg") == "unhandled exception" for e in es))
    assert [(e["msg"], e["level"]) for e in entries] == [
        ("closing", "info"),
        ("unhandled exception", "error"),
    ]
    assert {e["request_id"] for e in entries} == {"ws-2"}
