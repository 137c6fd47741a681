"""A response start the server refuses was never sent: the middleware's 500 still goes out.

A server validates what the app sends (h11 refuses a header value with a line break): the
``http.response.start`` it refused put nothing on the wire, so the request is still
unanswered, and the ``end`` line says what the client really got.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from clue import log
from clue.log.testing import capture


class RefusingServer:
    """A server double whose ``send`` refuses a response start with a bad header."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def receive(self) -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            for _, value in message.get("headers") or ():
                if b"\n" in value:
                    raise ValueError("illegal header value")
        self.sent.append(message)


async def bad_header(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    log.info("answering")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1\n2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_refused_response_start_is_answered_by_the_middleware() -> None:
    """The app's refused start leaves the request unanswered: the middleware's 500 with the
    request id goes out, and the ``end`` line says 500 at error severity."""
    server = RefusingServer()
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    with capture() as cap, pytest.raises(ValueError, match="illegal header value"):
        asyncio.run(log.ASGIMiddleware(bad_header)(scope, server.receive, server.send))
    dicts = cap.dicts()
    assert [m["type"] for m in server.sent] == ["http.response.start", "http.response.body"]
    assert server.sent[0]["status"] == 500
    assert (b"x-request-id", dicts[0]["request_id"].encode()) in server.sent[0]["headers"]
    assert [(d["msg"], d["level"]) for d in dicts] == [
        ("start", "info"),
        ("answering", "info"),
        ("unhandled exception", "error"),
        ("end", "error"),
    ]
    assert (dicts[-1]["http.status"], dicts[-1]["http.bytes"]) == (500, 21)


def test_a_refused_response_start_under_uvicorn(logs: Any, serve_asgi: Any) -> None:
    """Under uvicorn (h11), a header value h11 refuses sends nothing (uvicorn then drops the
    connection): the ``end`` line says no 200 went out, at error severity."""
    url = serve_asgi(log.ASGIMiddleware(bad_header))
    with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(url + "/")
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es), timeout=10)
    (end,) = [e for e in entries if e["msg"] == "end"]
    assert (end["level"], end["http.status"], end["http.bytes"]) == ("error", 500, 0)
    assert [e["msg"] for e in entries] == ["start", "answering", "unhandled exception", "end"]
