"""Attacks on ``WSGIMiddleware``: bodies and statuses a WSGI app may hand back.

Every case is driven the way a WSGI server drives an app (call it, iterate the body, call
``close()``), through the fast path (the common options) and the general path (a path
filter that matches nothing), and the request must end as the README says: an exception
escaping the app is logged once with its traceback, the request ends once, and while
nothing was sent the middleware answers 500 with the request id.
"""

from __future__ import annotations

import gc
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue import log
from clue.log import _metrics

_OPTIONS = {"fast": {}, "general": {"path_filters": [r"^/never$"]}}


class _IterRaises:
    """A body whose ``__iter__`` raises."""

    def __iter__(self) -> Any:
        raise ValueError("no iterator")


class _IterNotIterator:
    """A body whose ``__iter__`` answers something that is not an iterator."""

    def __iter__(self) -> Any:
        return 42


_BAD_BODIES = {
    "None": lambda: None,
    "int": lambda: 7,
    "iter raises": _IterRaises,
    "iter not an iterator": _IterNotIterator,
}


def _serve(app: Any, **options: Any) -> dict[str, Any]:
    """Drive ``app`` wrapped in the middleware as a WSGI server does."""
    seen: dict[str, Any] = {"starts": []}

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen["starts"].append((status, dict(headers), exc_info is not None))
        return lambda data: None

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/p",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_NAME": "s",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "HTTP_X_REQUEST_ID": "req-1",
    }
    body = log.WSGIMiddleware(app, request_log_func=log.info, **options)(environ, start_response)
    try:
        seen["body"] = b"".join(body)
    except Exception as exc:  # what would reach the server
        seen["raised"] = exc
    finally:
        body.close()
    return seen


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.sampled_from(sorted(_BAD_BODIES)),
    path=st.sampled_from(sorted(_OPTIONS)),
    started=st.booleans(),
)
def test_a_body_that_cannot_be_iterated_fails_the_request(
    out: Any, body: str, path: str, started: bool
) -> None:
    """An app returning a body that is not iterable (a forgotten ``return``: ``None``) or
    whose ``__iter__`` raises fails in the body before its first chunk: the exception is
    logged once after the buffered context, the middleware answers 500 with the request
    id, and the request ends once at error severity."""
    out.truncate(0)
    out.seek(0)

    def app(environ: Any, start_response: Any) -> Any:
        log.info("handling")
        if started:
            start_response("200 OK", [("Content-Type", "text/plain")])
        return _BAD_BODIES[body]()

    seen = _serve(app, **_OPTIONS[path])
    assert "raised" not in seen, seen
    status, headers, with_exc_info = seen["starts"][-1]
    assert status.startswith("500")
    assert with_exc_info
    assert headers["X-Request-Id"] == "req-1"
    assert seen["body"] == b"Internal Server Error"
    docs = out.docs()
    assert [d["msg"] for d in docs] == ["start", "handling", "unhandled exception", "end"]
    assert docs[2]["level"] == "error"
    assert "Traceback" in docs[2]["exception"]
    assert docs[3]["level"] == "error"
    assert docs[3]["http.status"] == 500
    assert {d["request_id"] for d in docs} == {"req-1"}
    gc.collect()
    assert _metrics.buffered() == 0


def _serve_strictly(app: Any, **options: Any) -> dict[str, Any]:
    """Drive ``app`` as wsgiref does: every chunk must be ``bytes``, else ``TypeError``."""
    seen: dict[str, Any] = {"starts": [], "chunks": []}

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen["starts"].append((status, dict(headers), exc_info is not None))
        return lambda data: None

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/p",
        "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_REQUEST_ID": "req-1",
    }
    body = log.WSGIMiddleware(app, request_log_func=log.info, **options)(environ, start_response)
    try:
        for chunk in body:
            if type(chunk) is not bytes:
                raise TypeError("write() argument must be a bytes instance")  # wsgiref's
            seen["chunks"].append(chunk)
    except Exception as exc:  # what the server meets
        seen["raised"] = exc
    finally:
        body.close()
    return seen


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bad=st.sampled_from([None, "text", 5, object()]),
    after=st.sampled_from([b"", b"ok"]) | st.none(),
    as_list=st.booleans(),
    path=st.sampled_from(sorted(_OPTIONS)),
)
def test_a_body_yielding_something_not_bytes_fails_the_request(
    out: Any, bad: Any, after: bytes | None, as_list: bool, path: str
) -> None:
    """A body item that is not bytes (``str``, ``None``: every server refuses it, PEP
    3333) fails the request as a body raising there: before the first non-empty chunk
    the middleware answers 500 with the request id, after it the exception reaches the
    server; either way it is logged and the ``end`` line is at error severity with the
    status sent, never a 200 the client did not get."""
    out.truncate(0)
    out.seek(0)
    items = ([] if after is None else [after]) + [bad]

    def app(environ: Any, start_response: Any) -> Any:
        log.info("handling")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return list(items) if as_list else iter(items)

    seen = _serve_strictly(app, **_OPTIONS[path])
    docs = out.docs()
    assert [d["msg"] for d in docs] == ["start", "handling", "unhandled exception", "end"]
    assert docs[3]["level"] == "error"
    assert {d["request_id"] for d in docs} == {"req-1"}
    if after:  # the response had started: the server cuts it
        assert isinstance(seen["raised"], TypeError)
        assert docs[3]["http.status"] == 200
    else:
        assert "raised" not in seen, seen
        status, headers, with_exc_info = seen["starts"][-1]
        assert status.startswith("500")
        assert with_exc_info
        assert headers["X-Request-Id"] == "req-1"
        assert docs[3]["http.status"] == 500
    gc.collect()
    assert _metrics.buffered() == 0
