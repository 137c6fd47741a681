"""The HTTP middleware's fast path writes what its general path writes, for any request.

``ASGIMiddleware`` and ``WSGIMiddleware`` under their common options (request ids on,
start/end lines on, no path filter, the default ``error_status``; any
``request_log_func``) take a path written for speed. Here every request Hypothesis can
think of -- incoming request ids well- and ill-formed, an app that sets its own, every
status, bodies streamed or not, exceptions before, during and after the response, a client
that goes away, a ``request_log_func`` that raises -- goes through both paths, and the
lines written, the messages the server receives, the exception that escapes and the
metrics must be the same.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue import log
from clue.log import _metrics, _wsgi

_ID = re.compile(r"[A-Za-z0-9_-]{8}")
_FRAME = re.compile(r"line \d+, in (_http_fast|_http)\b")
_GOOD_ID = "req-42.a:b"

_id_values = st.sampled_from(
    [_GOOD_ID.encode(), b"", b"bad id", b"x" * 200, b"\xff\xfe", b"ok\r\nx-forged: 1"]
)
_id_names = st.sampled_from([b"x-request-id", b"X-Request-Id", b"x-request-ids"])


def _raising(msg: Any = None, /, *args: Any, **kv: Any) -> None:
    raise RuntimeError("request_log_func failed")


_LOG_FUNCS = {"info": log.info, "print": log.print, "raising": _raising}


def _normalize(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        doc = json.loads(line)
        doc.pop("time", None)
        if "http.time_ms" in doc:
            ms = doc["http.time_ms"]
            assert isinstance(ms, float)
            assert ms >= 0
            doc["http.time_ms"] = "<ms>"
        rid = doc.get("request_id")
        if rid is not None and rid != _GOOD_ID:
            assert _ID.fullmatch(rid), rid
            doc["request_id"] = "<new>"
        if "exception" in doc:
            doc["exception"] = _FRAME.sub("line N, in _http", doc["exception"])
        out.append(doc)
    return out


def _booked() -> tuple[int, ...]:
    _metrics.fold()
    t = _metrics.totals
    return (
        t.contexts_written,
        t.contexts_discarded,
        t.entries_written,
        t.entries_discarded,
        t.entries_dropped,
    )


def _delta(before: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a - b for a, b in zip(_booked(), before, strict=True))


# --------------------------------------------------------------------------- ASGI


@st.composite
def asgi_requests(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "method": draw(st.sampled_from(["GET", "POST"])),
        "path": draw(st.sampled_from(["/", "/orders/42", "/ä b"])),
        "raw_path": draw(st.sampled_from([None, b"", b"/orders%2F42"])),
        "query": draw(st.sampled_from([b"", b"x=1&y=%C3%A9"])),
        "client": draw(st.sampled_from([None, ("10.0.0.7", 51234), ["::1", 1]])),
        "ids": draw(st.lists(st.tuples(_id_names, _id_values), max_size=2)),
        "status": draw(st.sampled_from([200, 204, 404, 499, 500, 503, "200", None])),
        "app_id": draw(st.sampled_from([None, b"x-request-id", b"X-REQUEST-ID"])),
        "headers_kind": draw(st.sampled_from(["list", "tuple", "generator", "missing"])),
        "chunks": draw(st.lists(st.binary(max_size=4), max_size=3)),
        "raise_at": draw(st.sampled_from([None, "before", "after_start", "after_body"])),
        "exc": draw(st.sampled_from(["error", "cancelled"])),
        "gone": draw(st.sampled_from([None, "send", "receive"])),
        "lines": draw(st.integers(0, 2)),
        "log_func": draw(st.sampled_from(sorted(_LOG_FUNCS))),
    }


def _asgi_app(case: dict[str, Any]) -> Any:
    def fail() -> BaseException:
        if case["exc"] == "cancelled":
            return asyncio.CancelledError()
        return RuntimeError("boom")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for i in range(case["lines"]):
            log.info("step", i=i)
        if case["gone"] == "receive":
            await receive()
        if case["raise_at"] == "before":
            raise fail()
        if case["status"] is not None:
            headers: list[tuple[bytes, bytes]] = [(b"content-type", b"text/plain")]
            if case["app_id"] is not None:
                headers.append((case["app_id"], b"from-app"))
            start: dict[str, Any] = {"type": "http.response.start", "status": case["status"]}
            kind = case["headers_kind"]
            if kind == "list":
                start["headers"] = headers
            elif kind == "tuple":
                start["headers"] = tuple(headers)
            elif kind == "generator":
                start["headers"] = (h for h in headers)
            await send(start)
            if case["raise_at"] == "after_start":
                raise fail()
            for chunk in case["chunks"]:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"!"})
        if case["raise_at"] == "after_body":
            raise fail()

    return app


async def _drive_asgi(mw: Any, case: dict[str, Any]) -> tuple[list[Any], str | None]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": case["method"],
        "path": case["path"],
        "query_string": case["query"],
        "headers": [(b"host", b"example"), *case["ids"]],
    }
    if case["raw_path"] is not None:
        scope["raw_path"] = case["raw_path"]
    if case["client"] is not None:
        scope["client"] = case["client"]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        if case["gone"] == "receive":
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if case["gone"] == "send" and message["type"] == "http.response.body":
            raise OSError("client gone")
        headers = message.get("headers")
        if headers is not None:
            normalized = []
            for name, value in headers:
                # An id made for the request differs from run to run.
                new = name == b"x-request-id" and _ID.fullmatch(value.decode("latin-1"))
                normalized.append((name, b"<new>" if new else value))
            message = {**message, "headers": normalized}
        sent.append(dict(message))

    raised = None
    try:
        await mw(scope, receive, send)
    except BaseException as exc:
        raised = type(exc).__name__
    return sent, raised


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=asgi_requests())
def test_asgi_fast_path_writes_what_the_general_path_writes(case: dict[str, Any]) -> None:
    """Any request through ASGIMiddleware's fast path writes the lines, sends the messages,
    raises the exception and counts the metrics its general path does."""
    results = []
    for fast in (True, False):
        out = io.StringIO()
        log.configure(output=out, format=log.format_json)
        mw = log.ASGIMiddleware(_asgi_app(case), request_log_func=_LOG_FUNCS[case["log_func"]])
        assert mw._fast  # the common options take the fast path
        mw._fast = fast
        before = _booked()
        sent, raised = asyncio.run(_drive_asgi(mw, case))
        results.append((_normalize(out.getvalue()), sent, raised, _delta(before)))
    assert results[0] == results[1]


def test_asgi_other_options_take_the_general_path() -> None:
    """A path filter, no request id, no request lines or a custom error_status: general."""

    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    assert log.ASGIMiddleware(app)._fast
    assert not log.ASGIMiddleware(app, path_filters=["^/livez$"])._fast
    assert not log.ASGIMiddleware(app, disable_request_id=True)._fast
    assert not log.ASGIMiddleware(app, disable_request_logging=True)._fast
    assert not log.ASGIMiddleware(app, error_status=lambda s: s >= 400)._fast


# --------------------------------------------------------------------------- WSGI


class _Closing(list[bytes]):
    """A list body with a ``close()`` (not a plain list: the app's close must run)."""

    closed = 0

    def close(self) -> None:
        type(self).closed += 1


@st.composite
def wsgi_requests(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "method": draw(st.sampled_from(["GET", "POST", None])),
        "script": draw(st.sampled_from(["", "/app"])),
        "path": draw(st.sampled_from(["/", "/orders/42"])),
        "query": draw(st.sampled_from([None, "", "x=1"])),
        "addr": draw(st.sampled_from([None, "10.0.0.7"])),
        "port": draw(st.sampled_from([None, "", "51234"])),
        "id": draw(st.one_of(st.none(), _id_values.map(lambda b: b.decode("latin-1")))),
        "status": draw(st.sampled_from(["200 OK", "204 No Content", "404 X", "500 E", "xyz"])),
        "app_id": draw(st.sampled_from([None, "X-Request-Id", "x-request-id"])),
        "body": draw(st.sampled_from(["list", "closing", "generator", "write"])),
        "chunks": draw(st.lists(st.binary(max_size=4), max_size=3)),
        "raise_at": draw(st.sampled_from([None, "before", "first_chunk", "last_chunk"])),
        "exc": draw(st.sampled_from(["error", "exit"])),
        "server_refuses": draw(st.booleans()),
        "close_early": draw(st.booleans()),
        "lines": draw(st.integers(0, 2)),
        "log_func": draw(st.sampled_from(sorted(_LOG_FUNCS))),
    }


def _wsgi_app(case: dict[str, Any]) -> Any:
    def fail() -> BaseException:
        return SystemExit(3) if case["exc"] == "exit" else RuntimeError("boom")

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        for i in range(case["lines"]):
            log.info("step", i=i)
        if case["raise_at"] == "before":
            raise fail()
        headers = [("Content-Type", "text/plain")]
        if case["app_id"] is not None:
            headers.append((case["app_id"], "from-app"))
        write = start_response(case["status"], headers)
        chunks = list(case["chunks"])
        if case["body"] == "write":
            for chunk in chunks:
                write(chunk)
            return []
        if case["body"] == "list":
            return chunks
        if case["body"] == "closing":
            return _Closing(chunks)

        def gen() -> Iterator[bytes]:
            for i, chunk in enumerate(chunks):
                if case["raise_at"] == "first_chunk" and i == 0:
                    raise fail()
                yield chunk
            if case["raise_at"] == "last_chunk":
                raise fail()

        return gen()

    return app


def _drive_wsgi(mw: Any, case: dict[str, Any]) -> tuple[list[Any], str | None]:
    given = {
        "REQUEST_METHOD": case["method"],
        "QUERY_STRING": case["query"],
        "REMOTE_ADDR": case["addr"],
        "REMOTE_PORT": case["port"],
        "HTTP_X_REQUEST_ID": case["id"],
    }
    environ: dict[str, Any] = {"SCRIPT_NAME": case["script"], "PATH_INFO": case["path"]}
    environ.update({key: value for key, value in given.items() if value is not None})
    seen: list[Any] = []
    sent = [False]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None and (sent[0] or case["server_refuses"]):
            raise exc_info[1].with_traceback(exc_info[2])
        normalized = []
        for name, value in headers:
            # An id made for the request differs from run to run.
            new = name == "X-Request-Id" and _ID.fullmatch(value)
            normalized.append((name, "<new>" if new else value))
        seen.append(("start", status, normalized, exc_info is not None))

        def write(data: bytes) -> None:
            sent[0] = True
            seen.append(("write", data))

        return write

    raised = None
    body: Any = None
    try:
        body = mw(environ, start_response)
        for chunk in body:
            if chunk:
                sent[0] = True
            seen.append(("chunk", chunk))
            if case["close_early"]:
                break
    except BaseException as exc:
        raised = type(exc).__name__
    finally:
        if body is not None:
            try:
                body.close()
            except BaseException as exc:
                raised = raised or type(exc).__name__
    return seen, raised


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=wsgi_requests())
def test_wsgi_fast_path_writes_what_the_general_path_writes(case: dict[str, Any]) -> None:
    """Any request through WSGIMiddleware's fast path writes the lines, hands the server
    the same response, raises the exception and counts the metrics its general path does."""
    results = []
    for fast in (True, False):
        out = io.StringIO()
        log.configure(output=out, format=log.format_json)
        mw = log.WSGIMiddleware(_wsgi_app(case), request_log_func=_LOG_FUNCS[case["log_func"]])
        assert mw._exchange is _wsgi._FastExchange  # the common options take the fast path
        if not fast:
            mw._exchange = _wsgi._Exchange
        closed = _Closing.closed
        before = _booked()
        seen, raised = _drive_wsgi(mw, case)
        results.append(
            (_normalize(out.getvalue()), seen, raised, _delta(before), _Closing.closed - closed)
        )
    assert results[0] == results[1]


def test_wsgi_other_options_take_the_general_path() -> None:
    """A path filter, no request id, no request lines or a custom error_status: general."""

    def app(environ: Any, start_response: Any) -> list[bytes]:
        return []

    assert log.WSGIMiddleware(app)._exchange is _wsgi._FastExchange
    for mw in (
        log.WSGIMiddleware(app, path_filters=["^/livez$"]),
        log.WSGIMiddleware(app, disable_request_id=True),
        log.WSGIMiddleware(app, disable_request_logging=True),
        log.WSGIMiddleware(app, error_status=lambda s: s >= 400),
    ):
        assert mw._exchange is _wsgi._Exchange
