"""The P7 application: one handler logging 10 lines, under one of five logging setups.

``CLUE_P7_VARIANT`` picks the setup (``none``, ``bare``, ``clue``, ``structlog``,
``stdlib``); ``asgi`` is a Starlette app (served by uvicorn), ``wsgi`` a Flask app (served
by gunicorn). Two more split clue's cost into its parts on the real server: ``clue-quiet``
(clue's middleware with its buffered start/end lines, a handler that logs nothing) and
``clue-ctx`` (clue's middleware with ``disable_request_logging=True``: the log context,
the request id and the plumbing, no line at all). Every written line goes to
``/dev/null``, so the figures are the logging libraries' own costs, not a disk's.

``GC_PATH`` answers, in front of every setup (no middleware sees it), the garbage
collections the server process has run so far per generation and the seconds spent in
them, counted by a ``gc.callbacks`` hook: the bench reads it around each load run.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from clue import log

VARIANT = os.environ.get("CLUE_P7_VARIANT", "none")

if os.environ.get("CLUE_P7_PROFILE"):  # the bench's ``CLUE_P7_PROFILE``: this thread's calls
    import atexit
    import cProfile

    _profile = cProfile.Profile()

    def _dump() -> None:
        _profile.disable()
        _profile.dump_stats(os.environ["CLUE_P7_PROFILE"])

    atexit.register(_dump)
    _profile.enable()

LINES = 10
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the server

if VARIANT.startswith("clue"):
    log.configure(output=DEVNULL, format=log.format_json)
elif VARIANT == "structlog":
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=DEVNULL),
        cache_logger_on_first_use=True,
    )
elif VARIANT == "stdlib":
    handler = logging.StreamHandler(DEVNULL)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s %(request_id)s"))
    logging.getLogger("p7").addHandler(handler)
    logging.getLogger("p7").setLevel(logging.INFO)
    logging.getLogger("p7").propagate = False

GC_PATH = "/__p7/gc"
_gc = {"collections": [0, 0, 0], "seconds": 0.0, "since": 0.0}


def _gc_hook(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc["since"] = time.perf_counter()
    else:
        _gc["collections"][info["generation"]] += 1  # type: ignore[index]
        _gc["seconds"] += time.perf_counter() - _gc["since"]  # type: ignore[operator]


gc.callbacks.append(_gc_hook)


def _gc_report() -> bytes:
    return json.dumps({"collections": _gc["collections"], "seconds": _gc["seconds"]}).encode()


_slog = structlog.get_logger()
_std = logging.getLogger("p7")


def work(order: str) -> None:
    """The handler's logging: LINES calls with a message and three small keywords."""
    if VARIANT == "clue":
        for i in range(LINES):
            log.info("step", order=order, i=i, ok=True)
    elif VARIANT == "structlog":
        for i in range(LINES):
            _slog.info("step", order=order, i=i, ok=True)
    elif VARIANT == "stdlib":
        for i in range(LINES):
            _std.info("step order=%s i=%d ok=%s", order, i, True, extra=_extra())


def _extra() -> dict[str, str]:
    return {"request_id": structlog.contextvars.get_contextvars().get("request_id", "-")}


# --------------------------------------------------------------------------- ASGI


async def _order(request: Any) -> PlainTextResponse:
    work(request.path_params["id"])
    return PlainTextResponse("ok")


class BareASGI:
    """Only the plumbing: wrap send to see the status, set one response header."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex[:16].encode()

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid)]
            await send(message)

        await self.app(scope, receive, wrapped)


class LoggingASGI(BareASGI):
    """The bare middleware plus start/end lines through structlog or the stdlib."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=rid)
        _start(scope["method"], scope["path"])
        status = 0

        async def wrapped(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            _end(status)
            structlog.contextvars.clear_contextvars()


def _start(method: str, path: str) -> None:
    if VARIANT == "structlog":
        _slog.info("start", **{"http.method": method, "http.url": path})
    else:
        _std.info("start %s %s", method, path, extra=_extra())


def _end(status: int) -> None:
    if VARIANT == "structlog":
        _slog.info("end", **{"http.status": status})
    else:
        _std.info("end %d", status, extra=_extra())


def _asgi() -> Any:
    app: Any = Starlette(routes=[Route("/orders/{id}", _order)])
    if VARIANT == "bare":
        return BareASGI(app)
    if VARIANT in {"clue", "clue-quiet"}:
        return log.ASGIMiddleware(app, request_log_func=log.info)
    if VARIANT == "clue-ctx":
        return log.ASGIMiddleware(app, disable_request_logging=True)
    if VARIANT in {"structlog", "stdlib"}:
        return LoggingASGI(app)
    return app


def _with_gc_report(app: Any) -> Any:
    async def served(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == GC_PATH:
            body = _gc_report()
            headers = [(b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return served


asgi = _with_gc_report(_asgi())

# --------------------------------------------------------------------------- WSGI

_flask = Flask(__name__)


@_flask.route("/orders/<id>")
def _flask_order(id: str) -> str:
    work(id)
    return "ok"


def bare_wsgi(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Only the plumbing: wrap start_response to see the status, set one header."""

    def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        rid = uuid.uuid4().hex[:16]

        def wrapped(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, ("X-Request-Id", rid)], exc_info)

        return app(environ, wrapped)

    return middleware


def logging_wsgi(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The bare middleware plus start/end lines through structlog or the stdlib."""

    def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        rid = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=rid)
        _start(environ["REQUEST_METHOD"], environ["PATH_INFO"])
        status = ["0"]

        def wrapped(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = code
            return start_response(code, [*headers, ("X-Request-Id", rid)], exc_info)

        try:
            return list(app(environ, wrapped))
        finally:
            _end(int(status[0].split()[0]))
            structlog.contextvars.clear_contextvars()

    return middleware


def _wsgi() -> Any:
    app: Any = _flask.wsgi_app
    if VARIANT == "bare":
        return bare_wsgi(app)
    if VARIANT in {"clue", "clue-quiet"}:
        return log.WSGIMiddleware(app, request_log_func=log.info)
    if VARIANT == "clue-ctx":
        return log.WSGIMiddleware(app, disable_request_logging=True)
    if VARIANT in {"structlog", "stdlib"}:
        return logging_wsgi(app)
    return app


_flask.wsgi_app = _wsgi()  # type: ignore[method-assign]


def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ["PATH_INFO"] == GC_PATH:
        body = _gc_report()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    return _flask(environ, start_response)
