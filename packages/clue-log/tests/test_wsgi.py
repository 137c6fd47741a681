"""log.WSGIMiddleware: raw WSGI and Flask apps under a real WSGI server."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from clue import log

ID_RE = re.compile(r"[A-Za-z0-9_-]{8}")


def hello(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    """A raw WSGI app streaming its body from a generator that logs as it goes."""
    log.info("handling", path=environ["PATH_INFO"])
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom before the body")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _chunks(environ["PATH_INFO"])


def _chunks(path: str) -> Iterator[bytes]:
    for chunk in (b"hello", b" ", b"world"):
        log.info("chunk", size=len(chunk))
        yield chunk
    if path == "/midway":
        raise RuntimeError("boom in the body")


def test_start_and_end_lines(logs: Any, serve_wsgi: Any) -> None:
    """A request writes start and end lines; bytes are counted over the streamed body."""
    url = serve_wsgi(log.WSGIMiddleware(hello))
    r = httpx.get(url + "/hello?q=2")
    assert r.text == "hello world"
    rid = r.headers["x-request-id"]
    assert ID_RE.fullmatch(rid)
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    start, end = entries
    assert start["msg"] == "start"
    assert start["http.method"] == "GET"
    assert start["http.url"] == "/hello?q=2"
    assert start["http.remote_addr"].startswith("127.0.0.1")
    assert end["msg"] == "end"
    assert end["http.status"] == 200
    assert end["http.bytes"] == 11
    assert end["http.time_ms"] >= 0
    assert start["request_id"] == end["request_id"] == rid


def test_error_in_body_flushes_context(logs: Any, serve_wsgi: Any) -> None:
    """An exception raised while the body is iterated flushes the entries logged so far."""
    url = serve_wsgi(log.WSGIMiddleware(hello, request_log_func=log.info))
    # Headers are out: the server can only cut the connection, which the client may
    # or may not notice depending on framing.
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(url + "/midway")
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    msgs = [e["msg"] for e in entries]
    assert msgs == ["start", "handling", "chunk", "chunk", "chunk", "unhandled exception", "end"]
    assert "boom in the body" in entries[5]["err"]
    assert entries[6]["http.bytes"] == 11
    assert len({e["request_id"] for e in entries}) == 1


def test_error_before_body(logs: Any, serve_wsgi: Any) -> None:
    """An exception raised by the app call logs an error with traceback and a 500 end."""
    url = serve_wsgi(log.WSGIMiddleware(hello, request_log_func=log.info))
    assert httpx.get(url + "/boom").status_code == 500
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    assert [e["msg"] for e in entries] == ["start", "handling", "unhandled exception", "end"]
    assert any("Traceback" in str(v) for v in entries[2].values())
    assert entries[3]["http.status"] == 500


def test_successful_buffered_request_writes_nothing(logs: Any) -> None:
    """With request_log_func=log.info a successful request writes nothing."""
    mw = log.WSGIMiddleware(hello, request_log_func=log.info)
    with httpx.Client(transport=httpx.WSGITransport(app=mw), base_url="http://t") as client:
        assert client.get("/hello").text == "hello world"
    assert logs.entries() == []


def test_context_covers_body_and_is_reset_on_close(logs: Any) -> None:
    """The log context is current while the body is iterated and gone after close()."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        log.bind(user="alice")

        def body() -> Iterator[bytes]:
            log.error("inside body")
            yield b"x"

        return body()

    mw = log.WSGIMiddleware(app, disable_request_logging=True)
    headers: list[Any] = []
    body = mw({"PATH_INFO": "/", "REQUEST_METHOD": "GET"}, lambda s, h, e=None: headers.append(h))
    assert list(body) == [b"x"]
    body.close()  # type: ignore[attr-defined]
    log.print("after")
    inside, after = logs.entries()
    assert inside["user"] == "alice"
    assert inside["request_id"] == dict(headers[0])["X-Request-Id"]
    assert "user" not in after
    assert "request_id" not in after


def test_early_close_is_not_an_error(logs: Any) -> None:
    """A body closed before its end (client gone) logs end with the bytes sent, no error."""
    closed = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            for _ in range(1000):
                yield b"abc"
        finally:
            closed.set()

    body = log.WSGIMiddleware(app)(
        {"PATH_INFO": "/", "REQUEST_METHOD": "GET"}, lambda s, h, e=None: None
    )
    it = iter(body)
    next(it)
    next(it)
    body.close()  # type: ignore[attr-defined]
    assert closed.is_set()
    _, end = logs.entries()
    assert end["msg"] == "end"
    assert end["http.bytes"] == 6
    assert end["level"] == "info"


def test_write_callable_counted(logs: Any) -> None:
    """Bytes written through start_response's write() callable are counted."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("201 Created", [])
        write(b"12345")
        return [b"678"]

    written: list[bytes] = []
    mw = log.WSGIMiddleware(app)
    body = mw({"PATH_INFO": "/", "REQUEST_METHOD": "POST"}, lambda s, h, e=None: written.append)
    assert list(body) == [b"678"]
    body.close()  # type: ignore[attr-defined]
    assert written == [b"12345"]
    end = logs.msgs("end")[0]
    assert end["http.status"] == 201
    assert end["http.bytes"] == 8


def test_path_filters_and_disable_request_id(logs: Any) -> None:
    """Filtered paths write no start/end lines; disable_request_id sends no header."""
    mw = log.WSGIMiddleware(hello, path_filters=[r"^/health"], disable_request_id=True)
    with httpx.Client(transport=httpx.WSGITransport(app=mw), base_url="http://t") as client:
        r = client.get("/healthz")
        client.get("/hello")
    assert "x-request-id" not in r.headers
    assert [e["msg"] for e in logs.entries()] == ["start", "end"]
    assert logs.entries()[0]["http.url"] == "/hello"


def test_reused_threads_see_no_previous_context(logs: Any, serve_wsgi: Any) -> None:
    """Concurrent requests on server threads never see each other's key/values."""
    from concurrent.futures import ThreadPoolExecutor
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIServer, make_server

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        n = environ["QUERY_STRING"]
        log.bind(n=n)
        log.info("work", n=n)
        start_response("200 OK", [])
        if int(n) % 5 == 0:
            log.error("failed")
        return [n.encode()]

    class Threading(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    server = make_server(
        "127.0.0.1", 0, log.WSGIMiddleware(app, request_log_func=log.info), server_class=Threading
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with httpx.Client(base_url=base) as client, ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda i: client.get(f"/?{i}").text, range(40)))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert bodies == [str(i) for i in range(40)]
    entries = logs.wait_for(lambda es: sum(e.get("msg") == "end" for e in es) == 8)
    by_id: dict[str, list[Any]] = {}
    for e in entries:
        by_id.setdefault(e["request_id"], []).append(e)
    assert len(by_id) == 8
    for group in by_id.values():
        assert [e["msg"] for e in group] == ["start", "work", "failed", "end"]
        assert len({e.get("n") for e in group[1:3]}) == 1


def test_flask_app(logs: Any, serve_wsgi: Any) -> None:
    """A Flask app wrapped with app.wsgi_app = log.WSGIMiddleware(app.wsgi_app) logs requests."""
    import flask

    app = flask.Flask("clue_test")
    # Let unhandled exceptions reach the middleware (else Flask answers 500 itself and
    # reports through the stdlib logging module: see log.StdlibHandler).
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.get("/orders/<oid>")
    def order(oid: str) -> Any:
        log.info("lookup", oid=oid)
        if oid == "bad":
            raise KeyError(oid)
        if oid == "missing":
            flask.abort(404)
        return {"oid": oid}

    app.wsgi_app = log.WSGIMiddleware(app.wsgi_app, request_log_func=log.info)  # type: ignore[method-assign]
    url = serve_wsgi(app)
    assert httpx.get(url + "/orders/1").json() == {"oid": "1"}
    assert httpx.get(url + "/orders/missing").status_code == 404
    assert logs.entries() == []  # 404 is a response, not a failure
    assert httpx.get(url + "/orders/bad").status_code == 500
    entries = logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    assert [e["msg"] for e in entries] == ["start", "lookup", "unhandled exception", "end"]
    assert entries[0]["http.url"] == "/orders/bad"
    assert entries[1]["oid"] == "bad"
    assert entries[-1]["http.status"] == 500


def test_end_to_end_under_wsgi_server_process(e2e_server: Any) -> None:
    """Under a real WSGI server process, a failed request writes its context, a good one nothing."""
    url, stop = e2e_server("wsgi")
    assert httpx.get(url + "/ok").text == "ok"
    assert httpx.get(url + "/fail").status_code == 500
    entries = stop()
    assert [e["msg"] for e in entries] == ["start", "handling", "unhandled exception", "end"]
    assert entries[1]["path"] == "/fail"
    assert entries[3]["http.status"] == 500
    assert len({e["request_id"] for e in entries}) == 1


def test_failing_request_log_func_never_reaches_the_app(logs: Any) -> None:
    """A request_log_func that raises does not break the request."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("broken log func")

    mw = log.WSGIMiddleware(hello, request_log_func=broken)
    with httpx.Client(transport=httpx.WSGITransport(app=mw), base_url="http://t") as client:
        assert client.get("/hello").text == "hello world"


def test_single_block_body_keeps_content_length(logs: Any, serve_wsgi: Any) -> None:
    """A one-element list body still lets the server set Content-Length, and is counted."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"abc"]

    url = serve_wsgi(log.WSGIMiddleware(app))
    r = httpx.get(url + "/")
    assert r.headers["content-length"] == "3"
    logs.wait_for(lambda es: any(e.get("msg") == "end" for e in es))
    assert logs.msgs("end")[0]["http.bytes"] == 3


def test_body_len_and_truth(logs: Any) -> None:
    """len() of the body follows the app's body (TypeError for a generator); it is truthy."""
    environ = {"PATH_INFO": "/", "REQUEST_METHOD": "GET"}
    listed = log.WSGIMiddleware(lambda e, sr: (sr("200 OK", []), [b"a"])[1])(environ, _noop)
    streamed = log.WSGIMiddleware(hello)(environ, _noop)
    assert len(listed) == 1  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        len(streamed)  # type: ignore[arg-type]
    assert bool(listed)
    assert bool(streamed)
    assert list(listed) == [b"a"]
    assert list(streamed) == [b"hello", b" ", b"world"]
    for body in (listed, streamed):
        body.close()  # type: ignore[attr-defined]
    assert [e["http.bytes"] for e in logs.msgs("end")] == [1, 11]


def _noop(status: str, headers: Any, exc_info: Any = None) -> Any:
    return lambda data: None
