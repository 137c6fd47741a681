"""log.ASGIMiddleware: raw ASGI, Starlette and FastAPI apps under a real uvicorn server."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from clue import log

ID_RE = re.compile(r"[A-Za-z0-9_-]{8}")


async def hello(scope: Any, receive: Any, send: Any) -> None:
    """A raw ASGI app: logs a buffered entry, answers in three chunks."""
    assert scope["type"] == "http"
    log.info("handling", path=scope["path"])
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"x-app", b"1")]})
    for chunk in (b"hello", b" ", b"world"):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_start_and_end_lines(logs: Any, serve_asgi: Any) -> None:
    """A request writes a start line and an end line with the real status, bytes and time."""
    url = serve_asgi(log.ASGIMiddleware(hello))
    r = httpx.get(url + "/hello?x=1")
    assert r.status_code == 200
    assert r.text == "hello world"
    assert r.headers["x-app"] == "1"
    rid = r.headers["x-request-id"]
    assert ID_RE.fullmatch(rid)
    logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    (start,) = logs.msgs("start")
    (end,) = logs.msgs("end")
    assert start["http.method"] == "GET"
    assert start["http.url"] == "/hello?x=1"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", start["http.remote_addr"])
    assert start["request_id"] == rid
    assert end["http.status"] == 200
    assert end["http.bytes"] == len("hello world")
    assert isinstance(end["http.time_ms"], int | float)
    assert end["http.time_ms"] >= 0
    assert end["request_id"] == rid
    assert logs.msgs("handling") == []  # buffered and discarded: the request succeeded


def test_buffered_request_lines_write_nothing(logs: Any, serve_asgi: Any) -> None:
    """With request_log_func=log.info a successful request writes nothing at all."""
    url = serve_asgi(log.ASGIMiddleware(hello, request_log_func=log.info))
    assert httpx.get(url + "/hello").status_code == 200
    assert httpx.get(url + "/missing").status_code == 404
    assert logs.entries() == []


def test_exception_logs_error_and_reraises(logs: Any, serve_asgi: Any) -> None:
    """An exception escaping the app flushes the buffer, logs its traceback, and re-raises."""
    url = serve_asgi(log.ASGIMiddleware(hello, request_log_func=log.info))
    r = httpx.get(url + "/boom")
    assert r.status_code == 500  # uvicorn saw the exception
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    msgs = [e.get("msg") for e in entries]
    assert msgs == ["start", "handling", "unhandled exception", "end"]
    err = entries[2]
    assert err["level"] == "error"
    assert "boom" in err["err"]
    assert any("Traceback" in str(v) and "RuntimeError" in str(v) for v in err.values())
    assert err["http.url"] == "/boom"
    assert entries[3]["http.status"] == 500
    assert len({e["request_id"] for e in entries}) == 1


@pytest.mark.parametrize(
    ("incoming", "reused"),
    [
        ("abc-123", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("bad id", False),
        ('evil"quote', False),
        ("", False),
    ],
)
async def test_request_id_reuse(incoming: str, reused: bool, logs: Any) -> None:
    """A well-formed incoming X-Request-Id is reused; anything else is replaced."""
    app = log.ASGIMiddleware(hello)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/hello", headers={"x-request-id": incoming})
    rid = r.headers["x-request-id"]
    if reused:
        assert rid == incoming
    else:
        assert ID_RE.fullmatch(rid)
    assert [e["request_id"] for e in logs.entries()] == [rid, rid]


async def test_app_request_id_header_kept(logs: Any) -> None:
    """A request id header set by the app itself is not duplicated."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 204, "headers": [(b"X-Request-Id", b"mine")]}
        )
        await send({"type": "http.response.body"})

    transport = httpx.ASGITransport(app=log.ASGIMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/")
    assert r.headers.get_list("x-request-id") == ["mine"]
    assert logs.msgs("end")[0]["http.status"] == 204


async def test_path_filters_keep_context(logs: Any) -> None:
    """Filtered paths get no start/end lines but still a log context with a request id."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        log.info("probe")
        if scope["path"] == "/livez/fail":
            log.error("probe failed")
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    mw = log.ASGIMiddleware(app, path_filters=[r"^/livez"])
    transport = httpx.ASGITransport(app=mw)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/livez")
        r = await client.get("/livez/fail")
        await client.get("/other")
    msgs = [e["msg"] for e in logs.entries()]
    assert msgs == ["probe", "probe failed", "start", "end"]
    assert logs.entries()[0]["request_id"] == r.headers["x-request-id"]


async def test_disable_options(logs: Any) -> None:
    """disable_request_logging and disable_request_id switch off lines and ids."""
    mw = log.ASGIMiddleware(hello, disable_request_logging=True, disable_request_id=True)
    transport = httpx.ASGITransport(app=mw)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/hello")
        with pytest.raises(RuntimeError, match="boom"):
            await client.get("/boom")
    assert "x-request-id" not in r.headers
    entries = logs.entries()
    assert [e["msg"] for e in entries] == ["handling", "unhandled exception"]
    assert all("request_id" not in e for e in entries)


async def _async_log_func(msg: str, **kv: Any) -> None:
    log.info(msg, **kv)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"path_filters": "^/livez"},
        {"path_filters": ["("]},
        {"path_filters": [3]},
        {"disable_request_logging": "yes"},
        {"disable_request_id": 1},
        {"request_log_func": "print"},
        {"request_log_func": _async_log_func},
    ],
)
def test_bad_options(kwargs: dict[str, Any]) -> None:
    """A malformed option raises ValueError naming it at construction time (an async
    function for a log function too: its lines would never be written)."""
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        log.ASGIMiddleware(hello, **kwargs)
    with pytest.raises(ValueError, match=name):
        log.WSGIMiddleware(hello, **kwargs)


async def test_context_reset_after_request(logs: Any) -> None:
    """Key/values bound during a request never leak into the caller's context."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        log.bind(user="alice")
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    transport = httpx.ASGITransport(app=log.ASGIMiddleware(app, disable_request_logging=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/")
    log.print("after")
    (after,) = logs.entries()
    assert "user" not in after
    assert "request_id" not in after


async def test_lifespan_passes_through() -> None:
    """The lifespan scope reaches the app untouched, messages both ways."""
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        message = await receive()
        seen.append(message["type"])
        await send({"type": "lifespan.startup.complete"})

    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        sent.append(message)

    await log.ASGIMiddleware(app)({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert seen == ["lifespan", "lifespan.startup"]
    assert sent == [{"type": "lifespan.startup.complete"}]


async def test_websocket_gets_context_and_id(logs: Any) -> None:
    """A websocket connection gets one log context and the request id in its accept headers."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        log.print("connected")
        await send({"type": "websocket.send", "text": "hi"})
        await send({"type": "websocket.close", "code": 1000})

    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws", "headers": [(b"x-request-id", b"ws-1")]}
    await log.ASGIMiddleware(app)(scope, receive, send)
    assert sent[0] == {"type": "websocket.accept", "headers": [(b"x-request-id", b"ws-1")]}
    assert [m["type"] for m in sent[1:]] == ["websocket.send", "websocket.close"]
    (entry,) = logs.entries()
    assert entry["request_id"] == "ws-1"


async def test_send_failure_is_not_an_app_error(logs: Any) -> None:
    """A client gone away (send raising OSError) ends the request without an error entry."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await send({"type": "http.response.body", "body": b"rest", "more_body": False})

    calls = 0

    async def send(message: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ConnectionResetError("client gone")

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/s", "headers": [], "query_string": b""}
    with pytest.raises(ConnectionResetError):
        await log.ASGIMiddleware(app)(scope, receive, send)
    entries = logs.entries()
    assert [e["msg"] for e in entries] == ["start", "end"]
    assert entries[1]["http.status"] == 200
    assert entries[1]["http.bytes"] == 8


def test_client_disconnect_mid_stream_under_uvicorn(logs: Any, serve_asgi: Any) -> None:
    """A client closing a streamed response early ends the request without an error."""
    import anyio
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def chunks() -> Any:
        for i in range(100_000):  # bounded: the client leaves after the first chunk
            yield b"x" * 1024
            await anyio.lowlevel.checkpoint()
            if i == 0:
                log.info("first chunk sent")

    async def stream(request: Any) -> StreamingResponse:
        return StreamingResponse(chunks())

    app = Starlette(routes=[Route("/stream", stream)])
    app.add_middleware(log.ASGIMiddleware)
    url = serve_asgi(app)
    with httpx.Client() as client, client.stream("GET", url + "/stream") as r:
        assert r.status_code == 200
        next(r.iter_raw())
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es), timeout=10)
    assert [e["msg"] for e in entries] == ["start", "end"]
    assert entries[1]["http.status"] == 200
    assert 1024 <= entries[1]["http.bytes"] < 100_000 * 1024


def test_client_gone_before_the_response_under_uvicorn(logs: Any, serve_asgi: Any) -> None:
    """A client that goes away before any response, while the app waits (Django's ASGI
    handler then returns without answering), ends the request without an error: nothing
    buffered is written, no 500 is answered to nobody."""
    import socket
    import threading

    ended = threading.Event()
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # no lifespan
        log.info("long poll waiting")
        while (await receive())["type"] != "http.disconnect":
            pass

    middleware = log.ASGIMiddleware(app, request_log_func=log.info)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        async def watch(message: Any) -> None:
            sent.append(message)
            await send(message)

        try:
            await middleware(scope, receive, watch)
        finally:
            if scope["type"] == "http":
                ended.set()

    host, port = serve_asgi(outer).removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert ended.wait(10)
    assert sent == []
    assert logs.entries() == []


def test_starlette_add_middleware(logs: Any, serve_asgi: Any) -> None:
    """app.add_middleware(log.ASGIMiddleware) works with Starlette, lifespan included."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        events.append("startup")
        yield
        events.append("shutdown")

    async def home(request: Any) -> PlainTextResponse:
        log.info("home")
        return PlainTextResponse("home", status_code=201)

    async def fail(request: Any) -> PlainTextResponse:
        log.info("about to fail")
        raise ValueError("starlette failure")

    app = Starlette(routes=[Route("/", home), Route("/fail", fail)], lifespan=lifespan)
    app.add_middleware(log.ASGIMiddleware, request_log_func=log.info)
    url = serve_asgi(app)
    assert events == ["startup"]
    assert httpx.get(url + "/").status_code == 201
    assert httpx.get(url + "/fail").status_code == 500
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    assert [e["msg"] for e in entries] == ["start", "about to fail", "unhandled exception", "end"]
    assert entries[0]["http.url"] == "/fail"
    assert entries[3]["http.status"] == 500


def test_fastapi_add_middleware(logs: Any, serve_asgi: Any) -> None:
    """app.add_middleware(log.ASGIMiddleware) works with FastAPI; HTTP errors are statuses."""
    from fastapi import FastAPI, HTTPException

    app = FastAPI()

    @app.get("/items/{item}")
    async def item(item: str) -> dict[str, str]:
        log.info("lookup", item=item)
        if item == "missing":
            raise HTTPException(status_code=404, detail="no such item")
        return {"item": item}

    app.add_middleware(log.ASGIMiddleware)
    url = serve_asgi(app)
    assert httpx.get(url + "/items/a").json() == {"item": "a"}
    assert httpx.get(url + "/items/missing").status_code == 404
    logs.wait_for(lambda es: sum(e.get("msg") == "end" for e in es) == 2)
    ends = logs.msgs("end")
    assert [e["http.status"] for e in ends] == [200, 404]
    assert logs.msgs("lookup") == []


def test_end_to_end_under_uvicorn_process(e2e_server: Any) -> None:
    """Under a real uvicorn process, a failed request writes its context, a good one nothing."""
    url, stop = e2e_server("asgi")
    assert httpx.get(url + "/ok").text == "ok"
    assert httpx.get(url + "/fail").status_code == 500
    entries = stop()
    assert [e["msg"] for e in entries] == ["start", "handling", "unhandled exception", "end"]
    assert entries[1]["path"] == "/fail"
    assert entries[3]["http.status"] == 500
    assert len({e["request_id"] for e in entries}) == 1


async def test_failing_request_log_func_never_reaches_the_app(logs: Any) -> None:
    """A request_log_func that raises does not break the request."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("broken log func")

    transport = httpx.ASGITransport(app=log.ASGIMiddleware(hello, request_log_func=broken))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/hello")
    assert r.status_code == 200
    assert r.text == "hello world"


async def test_concurrent_requests_never_mix(logs: Any) -> None:
    """Concurrent requests on asyncio tasks never see each other's key/values or entries."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        n = scope["query_string"].decode()
        log.bind(n=n)
        for step in range(3):
            log.info("step", step=step)
            await asyncio.sleep(0)
        if int(n) % 4 == 0:
            log.error("failed")
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": n.encode()})

    mw = log.ASGIMiddleware(app, request_log_func=log.info)
    transport = httpx.ASGITransport(app=mw)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        responses = await asyncio.gather(*(client.get(f"/?{i}") for i in range(40)))
    assert [r.text for r in responses] == [str(i) for i in range(40)]
    groups: dict[str, list[Any]] = {}
    for e in logs.entries():
        groups.setdefault(e["request_id"], []).append(e)
    assert len(groups) == 10
    for group in groups.values():
        assert [e["msg"] for e in group] == ["start", "step", "step", "step", "failed", "end"]
        assert len({e.get("n") for e in group[1:5]}) == 1


def test_websocket_under_uvicorn(logs: Any, serve_asgi: Any) -> None:
    """A real websocket connection works through the middleware, with its request id."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket
    from websockets.sync.client import connect

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        log.print("echo", text=text)
        await websocket.send_text(text)
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    app.add_middleware(log.ASGIMiddleware)
    url = serve_asgi(app, ws="websockets-sansio").replace("http://", "ws://")
    with connect(url + "/ws", additional_headers={"X-Request-Id": "ws-7"}) as ws:
        assert ws.response is not None
        assert ws.response.headers["X-Request-Id"] == "ws-7"
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"
    (entry,) = logs.wait_for(lambda es: len(es) >= 1)
    assert (entry["msg"], entry["text"], entry["request_id"]) == ("echo", "ping", "ws-7")


def test_websocket_that_fails_writes_its_context(logs: Any, serve_asgi: Any) -> None:
    """Under uvicorn, a websocket handler that raises fails its connection like a request:
    what it buffered is written, then the exception with its traceback, under the
    connection's request id."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    async def orders(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        log.info("subscribing", topic=text)
        raise RuntimeError("feed unavailable")

    app = Starlette(routes=[WebSocketRoute("/ws", orders)])
    app.add_middleware(log.ASGIMiddleware)
    url = serve_asgi(app, ws="websockets-sansio").replace("http://", "ws://")
    with connect(url + "/ws", additional_headers={"X-Request-Id": "ws-9"}) as ws:
        ws.send("orders")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    entries = logs.wait_for(lambda es: len(es) >= 2)
    assert [e["msg"] for e in entries] == ["subscribing", "unhandled exception"]
    assert "feed unavailable" in str(entries[1]["err"])
    assert "Traceback" in str(entries[1]["exception"])
    assert {e["request_id"] for e in entries} == {"ws-9"}


@pytest.mark.parametrize("request_ids", [True, False])
async def test_websocket_client_gone_is_not_an_error(logs: Any, request_ids: bool) -> None:
    """A handler that fails because its client went away (Starlette's
    ``WebSocketDisconnect``) writes nothing: the client leaving is not an error."""
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def app(scope: Any, receive: Any, send: Any) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        log.info("waiting")
        await websocket.receive_text()  # raises WebSocketDisconnect

    messages = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1001}]

    async def receive() -> Any:
        return messages.pop(0)

    async def send(message: Any) -> None:
        pass

    scope = {"type": "websocket", "path": "/ws", "headers": []}
    middleware = log.ASGIMiddleware(app, disable_request_id=not request_ids)
    with pytest.raises(WebSocketDisconnect):
        await middleware(scope, receive, send)
    assert logs.entries() == []


@pytest.mark.parametrize("request_ids", [True, False])
async def test_websocket_error_without_request_ids(logs: Any, request_ids: bool) -> None:
    """Whether or not request ids are on, an exception escaping a websocket app writes the
    connection's buffered lines before the error, and reaches the server."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        log.info("accepted")
        raise ValueError("bad frame")

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        pass

    scope = {"type": "websocket", "path": "/ws", "headers": []}
    middleware = log.ASGIMiddleware(app, disable_request_id=not request_ids)
    with pytest.raises(ValueError, match="bad frame"):
        await middleware(scope, receive, send)
    assert [e["msg"] for e in logs.entries()] == ["accepted", "unhandled exception"]
