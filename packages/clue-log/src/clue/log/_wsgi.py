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
import sys
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from types import TracebackType
from typing import Any, Protocol, TypeAlias

from clue.log import _api, _keys
from clue.log._context import child_of as _child_of
from clue.log._context import current as _current
from clue.log._context import new_context as _new_context
from clue.log._request_id import new_request_id, request_id_from
from clue.log._server_options import (
    ErrorStatus,
    RequestLogFunc,
    ServerOptions,
    elapsed_ms,
    log_end,
    log_line,
    server_error,
)

__all__ = ["WSGIMiddleware"]

_ERROR_TEXT = b"Internal Server Error"
_INF = float("inf")
_BYTES_LIKE = (bytes, bytearray, memoryview)
_get = _current.get
_set = _current.set
_reset = _current.reset

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
    ``http.bytes`` counted over the streamed body). The outcome decides: a response whose
    status matches ``error_status`` (default ``>= 500``) is a failure even when no
    exception escaped (Flask and Django answer 500 for exceptions themselves) -- the
    request's buffered context is written and the ``end`` line is logged at error
    severity. An exception escaping the app logs an error with its traceback, which
    flushes the request's buffer; when no byte of the response was sent yet, the
    middleware answers ``500 Internal Server Error`` itself through ``start_response``
    with ``exc_info`` (PEP 3333's error pattern), carrying the request's
    ``X-Request-Id`` -- a server's own 500 would not; that holds too for a body iterator
    that raises before its first non-empty chunk. Once the response has started, the
    exception is re-raised for the server to cut the response. A body closed before its
    end (a client gone away) is not an error.

    Args:
        app: the WSGI application to wrap.
        path_filters: regexes searched in the request path; matching requests (health
            checks...) still get a log context but no start/end lines.
        disable_request_logging: no start/end lines at all.
        disable_request_id: neither bind nor return a request id.
        request_log_func: writes the start/end lines; default ``log.print`` (written at
            once); ``log.info`` makes them buffered like any other entry.
        error_status: ``int -> bool``, whether a response status makes the request a
            failure; default ``status >= 500``. A predicate that raises, or answers an
            awaitable, counts the status by the default rule; an async one is refused.

    Raises:
        ValueError: an option is malformed (for example an invalid regex or an
            ``error_status`` that is not callable).

    Example:
        >>> import flask
        >>> from clue import log
        >>> app = flask.Flask(__name__)
        >>> app.wsgi_app = log.WSGIMiddleware(app.wsgi_app)

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``error_status``.
    """

    __slots__ = ("_exchange", "_opts", "app")

    def __init__(
        self,
        app: WSGIApp,
        *,
        path_filters: Iterable[str | re.Pattern[str]] | None = None,
        disable_request_logging: bool = False,
        disable_request_id: bool = False,
        request_log_func: RequestLogFunc | None = None,
        error_status: ErrorStatus | None = None,
    ) -> None:
        self.app = app
        self._opts = ServerOptions(
            path_filters,
            disable_request_logging,
            disable_request_id,
            request_log_func,
            error_status,
        )
        opts = self._opts
        # The common options (any ``request_log_func``): every request is a ``_FastExchange``.
        fast = (
            opts.request_ids
            and opts.log_requests
            and not opts.filters
            and opts.error_status is server_error
        )
        self._exchange = _FastExchange if fast else _Exchange

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        ctx = contextvars.copy_context()
        exchange = self._exchange(ctx, self.app, self._opts, environ, start_response)
        ctx.run(exchange.call)
        return exchange


class _Exchange:
    """One request: runs the app and is the response body the server iterates.

    The app runs in its own ``contextvars.Context``; iterating counts bytes, and ``close()`` ends
    the request.
    """

    __slots__ = (
        "_body",
        "_ctx",
        "_it",
        "_logged",
        "_sent",
        "_start_response",
        "_token",
        "_write",
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
        self,
        ctx: contextvars.Context,
        app: WSGIApp,
        opts: ServerOptions,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> None:
        self._ctx = ctx
        self.app = app
        self.opts = opts
        self.environ = environ
        self._start_response = start_response
        self._token: contextvars.Token[Any] | None = None
        self._body: Iterable[bytes] = ()
        self._it: Iterator[bytes] | None = None
        self._write: Write | None = None
        self._sent = False
        self._logged = False
        self.rid: str | None = None
        self.status: int | None = None
        self.bytes = 0
        self.logs = False
        self.start = 0.0

    # Runs once per request inside the request's own contextvars.Context: the request's
    # start (``open``), then the app.
    def call(self) -> None:
        self.open()
        self.start = perf_counter()
        try:
            self._body = self.app(self.environ, self.start_response)
        except Exception as exc:
            if self._sent or not self.answer_error(exc):
                self.fail(exc)
                raise
            self._body = [_ERROR_TEXT]
        except BaseException as exc:
            self.fail(exc)
            raise

    def open(self) -> None:
        """Open the request's log context, bind its id and log its start line.

        The log context is opened by hand (what ``log.context()`` does) and the request id
        bound straight onto it.
        """
        opts = self.opts
        environ = self.environ
        ctx = _new_context()
        self._token = _current.set(ctx)
        if opts.request_ids:
            incoming = environ.get("HTTP_X_REQUEST_ID")
            self.rid = rid = request_id_from(incoming) if incoming else new_request_id()
            ctx.bound = (*ctx.bound, (_keys.REQUEST_ID_KEY, rid))
        self.logs = logs = opts.log_requests and (
            not opts.filters or opts.logs(environ.get("PATH_INFO", ""))
        )
        if logs:
            log_line(
                opts.log_func,
                "start",
                {
                    _keys.HTTP_METHOD_KEY: environ.get("REQUEST_METHOD", ""),
                    _keys.HTTP_URL_KEY: _url(environ),
                    _keys.HTTP_FROM_KEY: _remote_addr(environ),
                },
            )

    def answer_error(self, exc: Exception) -> bool:
        """Log ``exc`` and answer 500 with the request id.

        False when the server refuses (the response has started: it re-raises ``exc_info``).
        """
        self.log_exception(exc)
        try:
            self.start_response(
                "500 Internal Server Error",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(_ERROR_TEXT))),
                ],
                sys.exc_info(),  # type: ignore[arg-type]  # inside the except block
            )
        except Exception:
            self._logged = True
            return False
        return True

    def start_response(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = None, /
    ) -> Write:
        try:
            self.status = int(status[:3])
        except ValueError:
            self.status = None
        rid = self.rid
        if rid is not None:
            for name, _ in headers:
                if name.lower() == "x-request-id":
                    break  # the app set its own
            else:
                headers = [*headers, ("X-Request-Id", rid)]
        if exc_info is None:
            self._write = self._start_response(status, headers)
        else:
            self._write = self._start_response(status, headers, exc_info)
        return self.write

    def write(self, data: bytes) -> object:
        """The ``write()`` callable handed to the app: counted, then passed on."""
        self.bytes += len(data)
        self._sent = True
        assert self._write is not None  # returned by start_response only
        return self._write(data)

    def __iter__(self) -> Iterator[bytes]:
        body = self._body
        if type(body) is list:
            # No app code runs while a list of bytes is iterated: count it at once and
            # let the server iterate it at C speed. Anything else in it is checked chunk
            # by chunk (``_next``).
            n = 0
            for chunk in body:
                if type(chunk) is not bytes:
                    return self
                n += len(chunk)
            self.bytes += n
            return iter(body)
        return self

    def __bool__(self) -> bool:
        # A body is truthy whatever its length: ``if body:`` must never call __len__.
        return True

    def __len__(self) -> int:
        # Servers use len() to set Content-Length for one-block bodies; a generator
        # raises TypeError here, which they expect.
        return len(self._body)  # type: ignore[arg-type]  # TypeError is the protocol

    def __next__(self) -> bytes:
        return self._ctx.run(self._next)

    def _next(self) -> bytes:
        try:
            it = self._it
            if it is None:
                # The app's ``__iter__`` runs here: a body that is not iterable (``None``
                # from a forgotten ``return``) fails before its first chunk.
                it = self._it = iter(self._body)
            chunk = next(it)
            if type(chunk) is not bytes and not isinstance(chunk, _BYTES_LIKE):
                # PEP 3333: a body yields bytes; every server refuses the rest (a ``str``,
                # ``None``) with its own 500, which would carry no request id.
                raise TypeError(f"a WSGI body must yield bytes, not {type(chunk).__name__}")
        except StopIteration:
            raise
        except Exception as exc:
            if self._sent or not self.answer_error(exc):
                self.fail(exc)
                raise
            # Nothing was sent yet: the middleware's 500 replaces the rest of the body.
            self._it = iter(())
            chunk = _ERROR_TEXT
        except BaseException as exc:
            self.fail(exc)
            raise
        if chunk:
            self._sent = True  # the server sends the headers with the first non-empty chunk
        self.bytes += len(chunk)
        return chunk

    def close(self) -> None:
        """Close the app's body and end the request (the server calls this once)."""
        if type(self._body) is list:  # nothing of the app's to close: end the request
            self._ctx.run(self.end)
        else:
            self._ctx.run(self._close)

    def _close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            self.fail(exc)
            raise
        finally:
            self.end()

    def fail(self, exc: BaseException) -> None:
        """Log an exception escaping the app, end the request and its log context."""
        failed = isinstance(exc, Exception)
        if isinstance(exc, Exception) and not self._logged:
            self.log_exception(exc)
        self.end(500 if self.status is None else self.status, failed=failed)

    def log_exception(self, exc: Exception) -> None:
        """The error line of an escaping exception, with its traceback (flushes)."""
        _api.error(
            "unhandled exception",
            err=exc,
            **{
                _keys.HTTP_METHOD_KEY: self.environ.get("REQUEST_METHOD", ""),
                _keys.HTTP_URL_KEY: _url(self.environ),
            },
        )

    def end(self, status: int | None = None, *, failed: bool = False) -> None:
        """Log the end line and reset the log context (at most once).

        The end line is at error severity when ``failed`` (an exception escaped).
        """
        token = self._token
        if token is None:
            return
        self._token = None
        try:
            log_end(
                self.opts,
                self.logs,
                {
                    _keys.HTTP_STATUS_KEY: status or self.status or 500,
                    _keys.HTTP_DURATION_KEY: elapsed_ms(self.start, perf_counter()),
                    _keys.HTTP_BYTES_KEY: self.bytes,
                },
                failed=failed,
            )
        finally:
            _current.reset(token)


class _FastExchange(_Exchange):
    """A request under the common options: ``open`` and the common ``end`` inline.

    Hot path, written for speed on purpose: what ``_Exchange`` does with the options'
    checks decided at construction, ``log_line`` and ``log_end``'s common case (a status
    below 500, no exception) written inline. A Hypothesis property test checks that the
    two write the same lines.
    """

    __slots__ = ()

    def open(self) -> None:
        environ = self.environ
        incoming = environ.get("HTTP_X_REQUEST_ID")
        self.rid = rid = request_id_from(incoming) if incoming else new_request_id()
        self._token = _set(_child_of(_get(), (_keys.REQUEST_ID_KEY, rid)))
        self.logs = True
        kv: dict[str, Any] = {
            _keys.HTTP_METHOD_KEY: environ.get("REQUEST_METHOD", ""),
            _keys.HTTP_URL_KEY: _url(environ),
            _keys.HTTP_FROM_KEY: _remote_addr(environ),
        }
        try:  # noqa: SIM105 - cheaper than contextlib.suppress() on the hot path
            self.opts.log_func("start", **kv)
        except Exception:  # noqa: S110 - a failing request_log_func never reaches the app
            pass

    def end(self, status: int | None = None, *, failed: bool = False) -> None:
        token = self._token
        if token is None:
            return
        self._token = None
        try:
            status = status or self.status or 500
            us = (perf_counter() - self.start) * 1e6  # ``elapsed_ms``, inline
            kv: dict[str, Any] = {
                _keys.HTTP_STATUS_KEY: status,
                _keys.HTTP_DURATION_KEY: round(us) / 1000 if 0.0 <= us < _INF else 0.0,
                _keys.HTTP_BYTES_KEY: self.bytes,
            }
            if failed or status >= 500:
                log_end(self.opts, True, kv, failed=failed)
            else:
                try:  # noqa: SIM105 - cheaper than contextlib.suppress() on the hot path
                    self.opts.log_func("end", **kv)
                except Exception:  # noqa: S110 - a failing request_log_func never reaches the app
                    pass
        finally:
            _reset(token)


def _url(environ: dict[str, Any]) -> str:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


def _remote_addr(environ: dict[str, Any]) -> str:
    addr = environ.get("REMOTE_ADDR", "")
    port = environ.get("REMOTE_PORT")
    return f"{addr}:{port}" if port else addr
