"""The outcome decides: ``error_status`` on the HTTP middleware, and the request id on the
500 answered for an escaping exception."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import log
from clue.log.testing import capture

ID_RE = re.compile(r"[A-Za-z0-9_-]{8}")

# What a request may be asked to do: answer ``status``, optionally after the app logged a
# buffered entry; the middleware's options vary too.
statuses = st.integers(min_value=100, max_value=599)
thresholds = st.one_of(st.none(), st.integers(min_value=100, max_value=600))
modes = st.sampled_from(["print", "info", "filtered", "silent"])


def _options(threshold: int | None, mode: str) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if threshold is not None:
        opts["error_status"] = lambda status: status >= threshold
    if mode == "info":
        opts["request_log_func"] = log.info
    elif mode == "filtered":
        opts["path_filters"] = [r"^/x$"]
    elif mode == "silent":
        opts["disable_request_logging"] = True
    return opts


def _check_outcome(
    dicts: list[dict[str, Any]], status: int, threshold: int | None, mode: str
) -> None:
    failed = status >= (500 if threshold is None else threshold)
    msgs = [d["msg"] for d in dicts]
    # The buffered entry is written exactly when the status is a failure.
    assert msgs.count("handling") == (1 if failed else 0)
    ends = [d for d in dicts if d["msg"] == "end"]
    logs_lines = mode in ("print", "info")
    if logs_lines and (failed or mode == "print"):
        (end,) = ends
        assert end["http.status"] == status
        assert end["level"] == ("error" if failed else "info")
    else:
        assert ends == []
    if failed:
        assert len({d["request_id"] for d in dicts}) == 1


def _asgi_app(status: int) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        log.info("handling")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    return app


async def _call_asgi(app: Any, path: str = "/x") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 1),
    }
    with contextlib.suppress(RuntimeError):
        await app(scope, receive, send)
    return sent


@settings(max_examples=150, deadline=None)
@given(status=statuses, threshold=thresholds, mode=modes)
def test_asgi_outcome_decides(status: int, threshold: int | None, mode: str) -> None:
    """ASGI: a status matching error_status writes the buffered context and an error end
    line; any other status writes nothing buffered."""
    app = log.ASGIMiddleware(_asgi_app(status), **_options(threshold, mode))
    with capture(log.format_json) as logs:
        sent = asyncio.run(_call_asgi(app))
        dicts = logs.dicts()
    headers = dict(sent[0]["headers"])
    assert ID_RE.fullmatch(headers[b"x-request-id"].decode())
    _check_outcome(dicts, status, threshold, mode)


def _wsgi_app(status: int) -> Any:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        log.info("handling")
        start_response(f"{status} Whatever", [("Content-Type", "text/plain")])
        return [b"x"]

    return app


def _call_wsgi(app: Any, path: str = "/x") -> tuple[str, list[tuple[str, str]], bytes]:
    got: list[Any] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        got[:] = [status, headers]
        return lambda data: None

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "REMOTE_ADDR": "127.0.0.1"}
    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        body.close()
    return got[0], got[1], data


@settings(max_examples=150, deadline=None)
@given(status=statuses, threshold=thresholds, mode=modes)
def test_wsgi_outcome_decides(status: int, threshold: int | None, mode: str) -> None:
    """WSGI: a status matching error_status writes the buffered context and an error end
    line; any other status writes nothing buffered."""
    app = log.WSGIMiddleware(_wsgi_app(status), **_options(threshold, mode))
    with capture(log.format_json) as logs:
        _, headers, _ = _call_wsgi(app)
        dicts = logs.dicts()
    assert ID_RE.fullmatch(dict(headers)["X-Request-Id"])
    _check_outcome(dicts, status, threshold, mode)


@pytest.mark.parametrize("middleware", [log.ASGIMiddleware, log.WSGIMiddleware])
@pytest.mark.parametrize("bad", [500, "5xx", [500]])
def test_error_status_must_be_callable(middleware: Any, bad: object) -> None:
    """A non-callable error_status is a ValueError naming the option."""
    with pytest.raises(ValueError, match="error_status"):
        middleware(_asgi_app(200), error_status=bad)


def test_raising_predicate_falls_back_to_5xx() -> None:
    """A user predicate that raises never breaks the request: the default rule decides."""

    def broken(status: int) -> bool:
        raise RuntimeError("broken predicate")

    for status, written in ((200, False), (503, True)):
        app = log.WSGIMiddleware(_wsgi_app(status), error_status=broken)
        with capture(log.format_json) as logs:
            assert _call_wsgi(app)[0].startswith(str(status))
            assert ("handling" in logs.messages) is written


class _AsyncPredicate:
    """A callable object whose ``__call__`` is async."""

    async def __call__(self, status: int) -> bool:
        return status == 200


async def _is_error(status: int) -> bool:
    return status >= 500


@pytest.mark.parametrize("middleware", [log.ASGIMiddleware, log.WSGIMiddleware])
@pytest.mark.parametrize("predicate", [_is_error, _AsyncPredicate()])
def test_async_error_status_is_refused(middleware: Any, predicate: Any) -> None:
    """An async predicate would answer a coroutine, true for every status: it is a
    ValueError naming the option, at construction time."""
    with pytest.raises(ValueError, match="error_status"):
        middleware(_asgi_app(200), error_status=predicate)


@settings(max_examples=60, deadline=None)
@given(status=statuses, mode=modes)
def test_predicate_answering_an_awaitable_falls_back_to_5xx(status: int, mode: str) -> None:
    """A predicate whose answer is an awaitable (not a verdict) is ignored like one that
    raises: the default rule decides, and the coroutine is closed, never left unawaited."""
    # Not recognisable up front: a plain function answering a coroutine.
    opts = {**_options(None, mode), "error_status": lambda status: _is_error(status)}
    with capture(log.format_json) as logs:
        assert _call_wsgi(log.WSGIMiddleware(_wsgi_app(status), **opts))[0].startswith(str(status))
        _check_outcome(logs.dicts(), status, None, mode)
    with capture(log.format_json) as logs:
        asyncio.run(_call_asgi(log.ASGIMiddleware(_asgi_app(status), **opts)))
        _check_outcome(logs.dicts(), status, None, mode)


# ------------------------------------------------------------ escaping exceptions


async def _asgi_boom(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    log.info("handling")
    if scope["path"] == "/silent":
        return  # returns without answering
    raise RuntimeError("boom")


@pytest.mark.parametrize("path", ["/boom", "/silent"])
def test_asgi_500_carries_request_id(logs: Any, serve_asgi: Any, path: str) -> None:
    """Under uvicorn, the 500 for an app that raised (or never answered) carries the same
    X-Request-Id as the request's written context."""
    url = serve_asgi(log.ASGIMiddleware(_asgi_boom))
    r = httpx.get(url + path, headers={"X-Request-Id": "quote-me-42"})
    assert r.status_code == 500
    assert r.text == "Internal Server Error"
    assert r.headers["x-request-id"] == "quote-me-42"
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    assert "handling" in [e["msg"] for e in entries]
    assert {e["request_id"] for e in entries} == {"quote-me-42"}
    (end,) = [e for e in entries if e["msg"] == "end"]
    assert (end["level"], end["http.status"]) == ("error", 500)


def _wsgi_boom(environ: Any, start_response: Any) -> list[bytes]:
    log.info("handling")
    start_response("200 OK", [("Content-Type", "text/plain")])  # then changes its mind
    raise RuntimeError("boom")


def test_wsgi_500_carries_request_id(logs: Any, serve_wsgi: Any) -> None:
    """Under a WSGI server, the 500 for an app that raised carries the request's
    X-Request-Id, the error's traceback is written once, and the end line is an error."""
    url = serve_wsgi(log.WSGIMiddleware(_wsgi_boom))
    r = httpx.get(url + "/boom", headers={"X-Request-Id": "quote-me-43"})
    assert r.status_code == 500
    assert r.text == "Internal Server Error"
    assert r.headers["x-request-id"] == "quote-me-43"
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    assert [e["msg"] for e in entries] == ["start", "handling", "unhandled exception", "end"]
    assert "Traceback" in str(entries[2])
    assert {e["request_id"] for e in entries} == {"quote-me-43"}
    assert (entries[3]["level"], entries[3]["http.status"]) == ("error", 500)


def test_wsgi_error_after_write_is_reraised() -> None:
    """Once the app has written bytes, the middleware cannot answer: the exception goes to
    the server, logged once."""

    def app(environ: Any, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"partial")
        raise RuntimeError("late boom")

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        if exc_info is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        return lambda data: None

    with capture(log.format_json) as logs:
        with pytest.raises(RuntimeError, match="late boom"):
            log.WSGIMiddleware(app)({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, start_response)
        assert logs.messages.count("unhandled exception") == 1


# Where a WSGI app can fail: before start_response, after it, after a write(), in the body
# iterator before its first chunk, after an empty chunk, or after a non-empty chunk.
FAIL_POINTS = ["call", "after_start", "after_write", "first_next", "after_empty", "mid_body"]


class _Pep3333Server:
    """What a WSGI server does: headers go out with the first write or non-empty chunk;
    start_response with exc_info after that re-raises; an exception escaping before the
    headers went out is answered with the server's own 500 (without a request id)."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent = False
        self.body = b""
        self.server_500 = False
        self.escaped: BaseException | None = None

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        self.sent = True
        self.body += data

    def run(self, app: Any) -> None:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "REMOTE_ADDR": "127.0.0.1"}
        body: Any = None
        try:
            body = app(environ, self.start_response)
            for chunk in body:
                if chunk:
                    self.write(chunk)
        except Exception as exc:
            self.escaped = exc
            if not self.sent:
                self.server_500 = True
                self.status, self.headers = "500 Internal Server Error", []
        finally:
            if body is not None:
                body.close()


def _failing_app(point: str) -> Any:
    def body() -> Iterator[bytes]:
        log.info("streaming")
        if point == "first_next":
            raise RuntimeError("boom")
        yield b""
        if point == "after_empty":
            raise RuntimeError("boom")
        yield b"part"
        raise RuntimeError("boom")  # mid_body

    def app(environ: Any, start_response: Any) -> Any:
        log.info("handling")
        if point == "call":
            raise RuntimeError("boom")
        write = start_response("200 OK", [("Content-Length", "4")])
        if point == "after_start":
            raise RuntimeError("boom")
        if point == "after_write":
            write(b"part")
            raise RuntimeError("boom")
        return body()

    return app


@settings(max_examples=60, deadline=None)
@given(point=st.sampled_from(FAIL_POINTS), mode=st.sampled_from(["print", "info"]))
def test_wsgi_failure_anywhere(point: str, mode: str) -> None:
    """Wherever a WSGI app fails, the exception is logged once with the buffered context
    before it, the request ends once with its ``end`` line at error severity, and while
    nothing was sent the client gets the middleware's 500 with the request id (the
    exception does not reach the server)."""
    server = _Pep3333Server()
    with capture(log.format_json) as logs:
        server.run(log.WSGIMiddleware(_failing_app(point), **_options(None, mode)))
        dicts = logs.dicts()
    msgs = [d["msg"] for d in dicts]
    assert msgs.count("unhandled exception") == 1
    assert msgs.count("end") == 1
    assert msgs.index("handling") < msgs.index("unhandled exception")
    assert len({d["request_id"] for d in dicts}) == 1
    answered = point in ("call", "after_start", "first_next", "after_empty")
    if answered:
        assert server.escaped is None
        assert server.status == "500 Internal Server Error"
        assert dict(server.headers)["X-Request-Id"] == dicts[0]["request_id"]
        assert server.body == b"Internal Server Error"
        (end,) = [d for d in dicts if d["msg"] == "end"]
        assert (end["level"], end["http.status"]) == ("error", 500)
    else:
        assert isinstance(server.escaped, RuntimeError)
        assert not server.server_500
        # The status sent was 200, but an exception escaped: the request failed.
        (end,) = [d for d in dicts if d["msg"] == "end"]
        assert (end["level"], end["http.status"]) == ("error", 200)


@settings(max_examples=40, deadline=None)
@given(
    point=st.sampled_from(["before_start", "after_start", "mid_body"]),
    mode=st.sampled_from(["print", "info"]),
)
def test_asgi_failure_anywhere(point: str, mode: str) -> None:
    """Wherever an ASGI app fails, the exception is logged once after the buffered context,
    the request ends once with its ``end`` line at error severity, the exception reaches
    the server, and when nothing was sent the middleware's 500 carries the request id."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        log.info("handling")
        if point == "before_start":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if point == "mid_body":
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("boom")

    escaped: list[BaseException] = []

    async def call() -> list[dict[str, Any]]:
        try:
            return await _call_asgi_raising(log.ASGIMiddleware(app, **_options(None, mode)))
        except RuntimeError as exc:
            escaped.append(exc)
            return _SENT

    with capture(log.format_json) as logs:
        _SENT.clear()
        sent = asyncio.run(call())
        dicts = logs.dicts()
    msgs = [d["msg"] for d in dicts]
    assert msgs.count("unhandled exception") == 1
    assert msgs.count("end") == 1
    assert msgs.index("handling") < msgs.index("unhandled exception")
    assert len(escaped) == 1  # servers expect the exception
    headers = dict(sent[0]["headers"])
    assert headers[b"x-request-id"].decode() == dicts[0]["request_id"]
    if point == "before_start":
        assert sent[0]["status"] == 500
        assert sent[1]["body"] == b"Internal Server Error"
    (end,) = [d for d in dicts if d["msg"] == "end"]
    assert end["level"] == "error"
    assert end["http.status"] == (500 if point == "before_start" else 200)


def test_background_task_failing_after_the_response(logs: Any, serve_asgi: Any) -> None:
    """Under uvicorn, a Starlette ``BackgroundTask`` that fails after the 200 went out fails
    the request: its buffered context and the traceback are written, and the ``end`` line
    (the real status, 200) is at error severity."""
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def send_receipt() -> None:
        log.info("sending receipt")
        raise RuntimeError("mail server down")

    async def order(request: Any) -> PlainTextResponse:
        log.info("order placed")
        return PlainTextResponse("ok", background=BackgroundTask(send_receipt))

    app = Starlette(routes=[Route("/order", order)])
    app.add_middleware(log.ASGIMiddleware, request_log_func=log.info)
    r = httpx.get(serve_asgi(app) + "/order", headers={"X-Request-Id": "bg-1"})
    assert (r.status_code, r.headers["x-request-id"]) == (200, "bg-1")
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    assert [e["msg"] for e in entries] == [
        "start",
        "order placed",
        "sending receipt",
        "unhandled exception",
        "end",
    ]
    assert "mail server down" in str(entries[3]["err"])
    assert {e["request_id"] for e in entries} == {"bg-1"}
    assert (entries[4]["level"], entries[4]["http.status"]) == ("error", 200)


def test_wsgi_body_close_that_raises_fails_the_request() -> None:
    """A body whose ``close()`` raises after the whole response was sent (cleanup that
    fails) fails the request: the context is written, the ``end`` line is an error."""

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"ok"

        def close(self) -> None:
            log.info("releasing connection")
            raise RuntimeError("pool corrupted")

    def app(environ: Any, start_response: Any) -> Body:
        log.info("handling")
        start_response("200 OK", [])
        return Body()

    server = _Pep3333Server()
    with capture(log.format_json) as logs:
        with pytest.raises(RuntimeError, match="pool corrupted"):
            server.run(log.WSGIMiddleware(app, request_log_func=log.info))
        dicts = logs.dicts()
    assert [d["msg"] for d in dicts] == [
        "start",
        "handling",
        "releasing connection",
        "unhandled exception",
        "end",
    ]
    assert (dicts[4]["level"], dicts[4]["http.status"]) == ("error", 200)


_SENT: list[dict[str, Any]] = []


async def _call_asgi_raising(app: Any) -> list[dict[str, Any]]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        _SENT.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
    await app(scope, receive, send)
    return _SENT


@pytest.mark.parametrize("name", ["django.request", "flask.app", "uvicorn.error"])
def test_framework_error_record_flushes_the_request(name: str) -> None:
    """An ERROR record a framework logs inside a request (through StdlibHandler) writes the
    request's buffered context and the record's traceback, whatever the status."""
    logger = logging.getLogger(name)
    handler = log.StdlibHandler()
    logger.addHandler(handler)

    def app(environ: Any, start_response: Any) -> list[bytes]:
        log.info("handling")
        try:
            raise KeyError("order-7")
        except KeyError:
            logger.error("Internal Server Error: /x", exc_info=True)
        start_response("200 OK", [])
        return [b"ok"]

    try:
        with capture(log.format_json) as logs:
            _call_wsgi(log.WSGIMiddleware(app, request_log_func=log.info))
            dicts = logs.dicts()
    finally:
        logger.removeHandler(handler)
    assert [d["msg"] for d in dicts] == ["start", "handling", "Internal Server Error: /x", "end"]
    assert dicts[2]["logger"] == name
    assert "KeyError: 'order-7'" in dicts[2]["exception"]
    assert len({d["request_id"] for d in dicts}) == 1
