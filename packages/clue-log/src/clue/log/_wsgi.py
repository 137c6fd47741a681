"""``WSGIMiddleware``: one log context per request, covering the whole response body.

A WSGI request does not end when the app returns: the server then iterates the response
body and finally calls its ``close()``. The log context must cover all of that, on
whatever thread the server uses, and must never outlive the request. So each request runs
in its own ``contextvars.Context``: the app call, every step of the body iteration and
``close()`` run inside it, and the worker thread's own context is never touched.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from types import TracebackType
from typing import Any, Protocol, TypeAlias

from clue.log import _api, _context, _keys
from clue.log._request_id import request_id_from
from clue.log._server_options import RequestLogFunc, ServerOptions, elapsed_ms, log_line

__all__ = ["WSGIMiddleware"]

ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
Headers: TypeAlias = list[tuple[str, str]]
Write: TypeAlias = Callable[[bytes], object]


class StartResponse(Protocol):
    """The WSGI ``start_response`` callable."""

    def __call__(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = ..., /
    ) -> Write: ...


WSGIApp: TypeAlias = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class WSGIMiddleware:
    """WSGI middleware that gives every request its own log context.

    Per request it opens a log context that covers the app call, the iteration of the
    response body and its ``close()`` (and is reset then), binds ``request_id`` (a
    well-formed incoming ``X-Request-Id`` is reused, else a short random id is made;
    either way it is sent back in the ``X-Request-Id`` response header), and logs a
    ``start`` line (``http.method``, ``http.url``, ``http.remote_addr``) and, when the
    server closes the body, an ``end`` line (``http.status``, ``http.time_ms``,
    ``http.bytes`` counted over the streamed body). An exception escaping the app or the
    body iteration logs an error with its traceback, which flushes the request's buffer,
    and is re-raised. A body closed before its end (a client gone away) is not an error.

    Args:
        app: the WSGI application to wrap.
        path_filters: regexes searched in the request path; matching requests (health
            checks...) still get a log context but no start/end lines.
        disable_request_logging: no start/end lines at all.
        disable_request_id: neither bind nor return a request id.
        request_log_func: writes the start/end lines; default ``log.print`` (written at
            once); ``log.info`` makes them buffered like any other entry.

    Raises:
        ValueError: an option is malformed (for example an invalid regex).

    Example:
        >>> import flask
        >>> from clue import log
        >>> app = flask.Flask(__name__)
        >>> app.wsgi_app = log.WSGIMiddleware(app.wsgi_app)
    """

    __slots__ = ("_opts", "app")

    def __init__(
        self,
        app: WSGIApp,
        *,
        path_filters: Iterable[str | re.Pattern[str]] | None = None,
        disable_request_logging: bool = False,
        disable_request_id: bool = False,
        request_log_func: RequestLogFunc | None = None,
    ) -> None:
        self.app = app
        self._opts = ServerOptions(
            path_filters, disable_request_logging, disable_request_id, request_log_func
        )

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = _Request(self, environ, start_response)
        ctx = contextvars.copy_context()
        body = ctx.run(request.call)
        return _Body(ctx, request, body)


class _Request:
    """The state of one request, used only inside its own ``contextvars.Context``."""

    __slots__ = (
        "_cm",
        "_start_response",
        "app",
        "bytes",
        "environ",
        "logs",
        "opts",
        "rid",
        "start",
        "status",
    )

    def __init__(
        self, mw: WSGIMiddleware, environ: dict[str, Any], start_response: StartResponse
    ) -> None:
        self.app = mw.app
        self.opts = mw._opts
        self.environ = environ
        self._start_response = start_response
        self._cm: _context.context | None = _context.context()
        self.rid: str | None = None
        self.status: int | None = None
        self.bytes = 0
        self.logs = False
        self.start = 0.0

    # Hot path: runs once per request inside the request's own contextvars.Context.
    def call(self) -> Iterable[bytes]:
        opts = self.opts
        environ = self.environ
        assert self._cm is not None  # entered once, before any end()
        self._cm.__enter__()
        if opts.request_ids:
            self.rid = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
            _context.bind(**{_keys.REQUEST_ID_KEY: self.rid})
        self.logs = opts.logs(environ.get("PATH_INFO", ""))
        if self.logs:
            log_line(
                opts.log_func,
                "start",
                {
                    _keys.HTTP_METHOD_KEY: environ.get("REQUEST_METHOD", ""),
                    _keys.HTTP_URL_KEY: _url(environ),
                    _keys.HTTP_FROM_KEY: _remote_addr(environ),
                },
            )
        self.start = perf_counter()
        try:
            return self.app(environ, self.start_response)
        except BaseException as exc:
            self.fail(exc)
            raise

    def start_response(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = None, /
    ) -> Write:
        try:
            self.status = int(status[:3])
        except ValueError:
            self.status = None
        if self.rid is not None and not any(k.lower() == "x-request-id" for k, _ in headers):
            headers = [*headers, ("X-Request-Id", self.rid)]
        if exc_info is None:
            write = self._start_response(status, headers)
        else:
            write = self._start_response(status, headers, exc_info)

        def counting_write(data: bytes) -> object:
            self.bytes += len(data)
            return write(data)

        return counting_write

    def fail(self, exc: BaseException) -> None:
        """Log an exception escaping the app, end the request and its log context."""
        if isinstance(exc, Exception):
            _api.error(
                "unhandled exception",
                err=exc,
                **{
                    _keys.HTTP_METHOD_KEY: self.environ.get("REQUEST_METHOD", ""),
                    _keys.HTTP_URL_KEY: _url(self.environ),
                },
            )
        self.end(500 if self.status is None else self.status)

    def end(self, status: int | None = None) -> None:
        """Log the end line and reset the log context (at most once)."""
        cm = self._cm
        if cm is None:
            return
        self._cm = None
        try:
            if self.logs:
                log_line(
                    self.opts.log_func,
                    "end",
                    {
                        _keys.HTTP_STATUS_KEY: status or self.status or 500,
                        _keys.HTTP_DURATION_KEY: elapsed_ms(self.start, perf_counter()),
                        _keys.HTTP_BYTES_KEY: self.bytes,
                    },
                )
        finally:
            cm.__exit__(None, None, None)


class _Body:
    """The response body as the server sees it: counted, and ending the request on close."""

    __slots__ = ("_ctx", "_it", "_request", "_wrapped")

    def __init__(
        self, ctx: contextvars.Context, request: _Request, wrapped: Iterable[bytes]
    ) -> None:
        self._ctx = ctx
        self._request = request
        self._wrapped = wrapped
        self._it: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return self._ctx.run(self._next)

    def _next(self) -> bytes:
        if self._it is None:
            self._it = iter(self._wrapped)
        try:
            chunk = next(self._it)
        except StopIteration:
            raise
        except BaseException as exc:
            self._request.fail(exc)
            raise
        self._request.bytes += len(chunk)
        return chunk

    def close(self) -> None:
        self._ctx.run(self._close)

    def _close(self) -> None:
        try:
            close = getattr(self._wrapped, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            self._request.fail(exc)
            raise
        finally:
            self._request.end()


def _url(environ: dict[str, Any]) -> str:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


def _remote_addr(environ: dict[str, Any]) -> str:
    addr = environ.get("REMOTE_ADDR", "")
    port = environ.get("REMOTE_PORT")
    return f"{addr}:{port}" if port else addr
