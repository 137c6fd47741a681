"""``ASGIMiddleware``: one log context per HTTP request or websocket connection.

Pure ASGI (no framework base class), so the log context opened here is the one the
application sees: contextvars set in ``__call__`` are visible to the wrapped app and to
anything it awaits in the same task.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from time import perf_counter
from typing import Any

from clue.log import _api, _context, _keys
from clue.log._asgi_scope import file_bytes as _file_bytes
from clue.log._asgi_scope import header as _header
from clue.log._asgi_scope import remote_addr as _remote_addr
from clue.log._asgi_scope import url as _url
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
from clue.log._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ASGIMiddleware"]

_REQUEST_ID = b"x-request-id"
_REQUEST_ID_LEN = len(_REQUEST_ID)
_ERROR_TEXT = b"Internal Server Error"
_INF = float("inf")
_FILE_BODIES = frozenset({"http.response.pathsend", "http.response.zerocopysend"})
_get = _current.get
_set = _current.set
_reset = _current.reset


class ASGIMiddleware:
    """ASGI middleware that gives every request its own log context.

    Per HTTP request it opens a log context (reset when the request ends), binds
    ``request_id`` (a well-formed incoming ``X-Request-Id`` is reused, else a short random
    id is made; either way it is sent back in the ``X-Request-Id`` response header), and
    logs a ``start`` line (``http.method``, ``http.url``, ``http.remote_addr``) and an
    ``end`` line (``http.status``, ``http.time_ms``, ``http.bytes`` over the whole streamed
    body). The outcome decides: a response whose status matches ``error_status`` (default
    ``>= 500``) is a failure even when no exception escaped (frameworks answer 500 for
    exceptions themselves) -- the request's buffered context is written and the ``end``
    line is logged at error severity. An exception escaping the app logs an error with its
    traceback, which flushes the request's buffer; when nothing was sent yet the middleware
    answers ``500 Internal Server Error`` itself, carrying the request's ``X-Request-Id``,
    then re-raises (as Starlette's ``ServerErrorMiddleware`` does) so the server still
    sees the failure. A client that goes away mid-response is not an application error:
    the request just ends. Websocket connections get a log context and
    a request id for their lifetime, and a handler that raises (its client still there)
    writes the connection's context with the error; ``lifespan`` and other scopes pass
    through untouched. The server's own ``send`` and ``receive`` run in the log context
    that was current around the middleware, so nothing the server keeps from them (a
    keep-alive timer) holds a request's buffer past the request's end.

    Args:
        app: the ASGI application to wrap.
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
        >>> from clue import log
        >>> async def app(scope, receive, send):
        ...     ...
        >>> app = log.ASGIMiddleware(app, path_filters=[r"^/livez$"])

    With Starlette or FastAPI: ``app.add_middleware(log.ASGIMiddleware)``.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``error_status``.
    """

    __slots__ = ("_fast", "_opts", "app")

    def __init__(
        self,
        app: ASGIApp,
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
        # The common options (any ``request_log_func``): every request takes ``_http_fast``.
        self._fast = (
            opts.request_ids
            and opts.log_requests
            and not opts.filters
            and opts.error_status is server_error
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self._fast:
                await self._http_fast(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # Hot path, written for speed on purpose: with the common options, every request goes
    # through here, in one frame. It is ``_http`` with the options' checks decided at
    # construction and the common end (a status below 500 sent, no exception) inline; any
    # other end takes ``_http``'s own code (``_Response.log_end``, ``_failed``), and a
    # Hypothesis property test checks that the two write the same lines.
    async def _http_fast(self, scope: Scope, receive: Receive, send: Send) -> None:
        outer = _get()
        rid = None
        for name, value in scope.get("headers") or ():  # ``_header``, inline: the first one
            if len(name) == _REQUEST_ID_LEN and name.lower() == _REQUEST_ID:
                rid = request_id_from(bytes(value)) if value else new_request_id()
                break
        if rid is None:
            rid = new_request_id()
        token = _set(_child_of(outer, (_keys.REQUEST_ID_KEY, rid)))
        try:
            response = _Response(receive, send, outer)
            response.rid_header = (_REQUEST_ID, rid.encode("ascii"))
            log_func = self._opts.log_func
            kv: dict[str, Any] = {
                _keys.HTTP_METHOD_KEY: scope["method"],
                _keys.HTTP_URL_KEY: _url(scope),
                _keys.HTTP_FROM_KEY: _remote_addr(scope),
            }
            try:  # noqa: SIM105 - cheaper than contextlib.suppress() on the hot path
                log_func("start", **kv)
            except Exception:  # noqa: S110 - a failing request_log_func never reaches the app
                pass
            start = perf_counter()
            try:
                await self.app(scope, response.receive, response.send)
            except BaseException as exc:
                await self._failed(scope, response, exc, True, start)
                raise
            status = response.status
            if type(status) is int and status < 500:
                us = (perf_counter() - start) * 1e6  # ``elapsed_ms``, inline
                kv = {  # ``Response.log_end``'s line, inline
                    _keys.HTTP_STATUS_KEY: status,
                    _keys.HTTP_DURATION_KEY: round(us) / 1000 if 0.0 <= us < _INF else 0.0,
                    _keys.HTTP_BYTES_KEY: response.bytes,
                }
                try:  # noqa: SIM105 - cheaper than contextlib.suppress() on the hot path
                    log_func("end", **kv)
                except Exception:  # noqa: S110 - a failing request_log_func never reaches the app
                    pass
            else:
                await self._unanswered(response, True, start)
        finally:
            _reset(token)

    # Hot path, written for speed on purpose: every request goes through here. The log
    # context is opened and reset by hand (what ``log.context()`` does) and the request id
    # bound straight onto it.
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        opts = self._opts
        outer = _current.get()
        ctx = _new_context()
        token = _current.set(ctx)
        try:
            response = _Response(receive, send, outer)
            if opts.request_ids:
                incoming = _header(scope, _REQUEST_ID)
                rid = request_id_from(incoming) if incoming else new_request_id()
                ctx.bound = (*ctx.bound, (_keys.REQUEST_ID_KEY, rid))
                response.rid_header = (_REQUEST_ID, rid.encode("ascii"))
            logs = opts.log_requests and (not opts.filters or opts.logs(scope["path"]))
            if logs:
                log_line(
                    opts.log_func,
                    "start",
                    {
                        _keys.HTTP_METHOD_KEY: scope["method"],
                        _keys.HTTP_URL_KEY: _url(scope),
                        _keys.HTTP_FROM_KEY: _remote_addr(scope),
                    },
                )
            start = perf_counter()
            try:
                await self.app(scope, response.receive, response.send)
            except BaseException as exc:
                await self._failed(scope, response, exc, logs, start)
                raise
            await self._unanswered(response, logs, start)
        finally:
            _current.reset(token)

    async def _failed(
        self, scope: Scope, response: _Response, exc: BaseException, logs: bool, start: float
    ) -> None:
        """End a request the app left with ``exc`` (the caller re-raises it)."""
        opts = self._opts
        if not isinstance(exc, Exception):
            # Cancellation or shutdown: not an application error.
            if logs:
                response.log_end(opts, logs, start, judge=False)
            return
        if response.disconnected:
            # The client went away: not an application error.
            if logs:
                response.log_end(opts, logs, start, judge=False)
            return
        _api.error(
            "unhandled exception",
            err=exc,
            **{
                _keys.HTTP_METHOD_KEY: scope["method"],
                _keys.HTTP_URL_KEY: _url(scope),
            },
        )
        if response.status is None:
            try:
                await response.send_error()
            finally:  # cancelled while answering (a server shutting down): still ended
                response.log_end(opts, logs, start, failed=True)
            return
        response.log_end(opts, logs, start, failed=True)

    async def _unanswered(self, response: _Response, logs: bool, start: float) -> None:
        """End a request the app returned from, by what it sent."""
        opts = self._opts
        if response.status is None:
            if response.disconnected:
                # The client went away before any answer (Django's ASGI handler then
                # returns without one): not an application error.
                if logs:
                    response.log_end(opts, logs, start, judge=False)
                return
            # Returned without answering: the server would send a 500 without the id.
            try:
                await response.send_error()
            finally:  # cancelled while answering (a server shutting down): still ended
                response.log_end(opts, logs, start)
            return
        response.log_end(opts, logs, start)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        outer = _current.get()  # the server's own send and receive run in it (``_Response``)
        with _context.context():
            if self._opts.request_ids:
                rid = request_id_from(_header(scope, _REQUEST_ID))
                _context.bind(**{_keys.REQUEST_ID_KEY: rid})
                rid_header = (_REQUEST_ID, rid.encode("ascii"))
            else:
                rid_header = None
            disconnected = False
            closed = False  # by the app: the disconnect read afterwards is its own doing

            async def receive_watched() -> Message:
                nonlocal disconnected
                token = _current.set(outer)
                try:
                    message = await receive()
                finally:
                    _current.reset(token)
                if message["type"] == "websocket.disconnect" and not closed:
                    disconnected = True
                return message

            async def send_with_id(message: Message) -> None:
                nonlocal disconnected, closed
                kind = message["type"]
                if kind == "websocket.close":
                    closed = True
                elif rid_header is not None and kind == "websocket.accept":
                    headers = list(message.get("headers") or ())
                    if not _has_request_id(headers):
                        headers.append(rid_header)
                        message = {**message, "headers": headers}
                token = _current.set(outer)
                try:
                    await send(message)
                except OSError:
                    # The client has gone away (uvicorn's ClientDisconnected).
                    disconnected = True
                    raise
                finally:
                    _current.reset(token)

            try:
                await self.app(scope, receive_watched, send_with_id)
            except Exception as exc:
                # A failed connection writes what it buffered, as a failed request does;
                # a client that went away is not an application error.
                if not disconnected:
                    _api.error(
                        "unhandled exception",
                        err=exc,
                        **{_keys.HTTP_URL_KEY: _url(scope)},
                    )
                raise


class _Response:
    """Watches the exchange: status and body bytes sent, and a client gone away.

    The server's ``receive`` and ``send`` run outside the request's log context (in the
    one that was current around the middleware). A server keeps what its own code
    schedules: uvicorn arms the connection's keep-alive timer inside the last ``send``,
    and asyncio copies the current ``contextvars`` context into that timer, which the
    event loop holds for seconds after the timer is cancelled. Inside the request's log
    context, that copy would keep the request's buffer (about 40 objects for 12 entries)
    alive past its end, through the garbage collector's young generations into the old
    one; outside it, the buffer goes when the request ends.
    """

    __slots__ = (
        "_outer",
        "_receive",
        "_send",
        "bytes",
        "complete",
        "disconnected",
        "rid_header",
        "status",
    )

    def __init__(self, receive: Receive, send: Send, outer: _context.LogContext | None) -> None:
        self._receive = receive
        self._send = send
        self._outer = outer
        self.rid_header: tuple[bytes, bytes] | None = None
        self.status: int | None = None
        self.bytes = 0
        self.complete = False
        self.disconnected = False

    async def receive(self) -> Message:
        token = _set(self._outer)
        try:
            message = await self._receive()
        finally:
            _reset(token)
        if message["type"] == "http.disconnect" and not self.complete:
            # Once the whole response went out, servers answer every read with
            # ``http.disconnect`` (Starlette's StreamingResponse reads while it streams):
            # that is no client gone away, and what fails afterwards (a background task)
            # is the app's failure.
            self.disconnected = True
        return message

    # Hot path: called for every message of every response.
    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            self.bytes += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True  # before the server's send, which may wake a reader
        elif kind == "http.response.start":
            rid_header = self.rid_header
            if rid_header is not None:
                headers = message.get("headers") or ()
                if type(headers) is not list and type(headers) is not tuple:
                    # Any iterable is legal (a generator, ``map``...): read it once, and
                    # hand the server the pairs read, not the spent iterator.
                    headers = list(headers)
                    message = {**message, "headers": headers}
                for name, _ in headers:
                    # Only a name of the right length is lower-cased (no bytes made).
                    if len(name) == _REQUEST_ID_LEN and name.lower() == _REQUEST_ID:
                        break  # the app set its own
                else:
                    message = {**message, "headers": [*headers, rid_header]}
        elif kind in _FILE_BODIES:
            # The extensions' bodies (Starlette's ``FileResponse`` under a server with
            # ``http.response.pathsend``): what the server will send of the file.
            self.bytes += _file_bytes(message, kind)
            if not message.get("more_body", False):
                self.complete = True
        token = _set(self._outer)
        try:
            await self._send(message)
        except OSError:
            # ASGI servers raise OSError (uvicorn's ClientDisconnected) from send once
            # the client has gone away.
            self.disconnected = True
            raise
        finally:
            _reset(token)
        if kind == "http.response.start":
            # Once the server took it: a start it refused (h11 refuses a header value with
            # a line break) sent nothing, and the request is still unanswered.
            status = message.get("status", 200)
            # Starlette sends the ``status_code`` it was given: an ``IntEnum`` member
            # (``HTTPStatus.CREATED``) is logged and judged as the plain int servers send.
            self.status = status if type(status) is int else _as_int(status)

    async def send_error(self) -> None:
        """Answer 500 for an app that failed before sending anything, with the request id.

        The server's own 500 would not carry it.
        """
        try:
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", b"%d" % len(_ERROR_TEXT)),
                    ],
                }
            )
            await self.send({"type": "http.response.body", "body": _ERROR_TEXT})
        except Exception:  # noqa: S110 - the client is gone; the exception is re-raised
            pass

    def log_end(
        self,
        opts: ServerOptions,
        logs: bool,
        start: float,
        *,
        judge: bool = True,
        failed: bool = False,
    ) -> None:
        """Log the ``end`` line.

        When ``judge``, a failing status (or ``failed``: an exception escaped, whatever status was
        sent) writes the context.
        """
        status = self.status
        if status is None:
            # Nothing was sent: the server answers 500 for an app that fails or returns
            # without a response.
            status = 500
        kv: dict[str, Any] = {
            _keys.HTTP_STATUS_KEY: status,
            _keys.HTTP_DURATION_KEY: elapsed_ms(start, perf_counter()),
            _keys.HTTP_BYTES_KEY: self.bytes,
        }
        if judge:
            log_end(opts, logs, kv, failed=failed)
        elif logs:
            log_line(opts.log_func, "end", kv)


def _as_int(status: Any) -> int:
    """The status a server took, as the int it sends: an int subclass's value, else 500."""
    # An int subclass's plain value, whatever it overrides (never raises).
    return int.__int__(status) if isinstance(status, int) else 500


def _has_request_id(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == _REQUEST_ID for name, _ in headers)
