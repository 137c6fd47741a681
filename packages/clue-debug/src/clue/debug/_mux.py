"""``Mux``: a tiny router that is both a WSGI and an ASGI application."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any, overload

from clue.debug._fork import reinit_after_fork
from clue.debug._guard import HostPolicy, guard, host_refused
from clue.debug._http import (
    AuthHook,
    Handler,
    Request,
    Response,
    request_from_asgi,
    request_from_wsgi,
)
from clue.debug._types import Receive, Scope, Send

__all__ = ["Mux"]

# WSGI's call shape, spelled out so that mypy checks both entry points (ASGI's: _types).
StartResponse = Callable[..., object]


class Mux:
    """A standalone router for the debug endpoints, served over WSGI or ASGI.

    Routes are exact paths. Called with ``(environ, start_response)`` it is a WSGI app;
    called with ``(scope, receive, send)`` it is an ASGI app (lifespan included), so the
    same object runs under ``wsgiref``, gunicorn, uvicorn or hypercorn.

    Every request is first checked for its ``Host`` (DNS rebinding): only IP addresses,
    ``localhost`` (and ``.localhost`` names) and ``allowed_hosts`` are answered; any
    other name answers 403, whatever the path.

    Args:
        auth: an optional hook consulted for every request before routing; returning
            anything but ``True`` answers 403.
        allowed_hosts: more names this listener serves (``"name"``, ``".name"`` for a
            domain and its subdomains, ``"*"`` for any, e.g. behind a proxy that checks
            ``Host`` itself).

    Raises:
        ValueError: an ``allowed_hosts`` entry is not a host name.

    Example:
        >>> from clue import debug
        >>> mux = debug.Mux()
        >>> debug.mount_debug_log_enabler(mux)
        >>> debug.mount_pprof_handlers(mux)
        >>> "/debug" in mux.paths()
        True

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, *, auth: AuthHook | None = None, allowed_hosts: Iterable[str] | None = None
    ) -> None:
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._auth = auth
        self.host_policy = HostPolicy(allowed_hosts)
        reinit_after_fork(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def handle(self, path: str, handler: Handler) -> None:
        """Serve ``handler`` at exactly ``path``.

        Raises:
            ValueError: ``path`` does not start with ``/``.
        """
        if not path.startswith("/"):
            msg = f"path must start with '/', got {path!r}"
            raise ValueError(msg)
        with self._lock:
            self._routes[path] = handler

    def paths(self) -> list[str]:
        """The mounted paths, sorted."""
        with self._lock:
            return sorted(self._routes)

    def dispatch(self, request: Request) -> Response:
        """Answer ``request`` (403 for a ``Host`` not served, 404 for an unknown path)."""
        if not self.host_policy.allows(request.headers.get("host")):
            return host_refused()
        handler = self._routes.get(request.path)
        if handler is None:
            return Response(404, b"not found\n")
        if self._auth is not None:
            return guard(handler, auth=self._auth, methods=_ANY_METHOD)(request)
        return handler(request)

    @overload
    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse, /
    ) -> Iterable[bytes]: ...

    @overload
    def __call__(self, scope: Scope, receive: Receive, send: Send, /) -> Awaitable[None]: ...

    def __call__(self, *args: Any) -> Iterable[bytes] | Awaitable[None]:
        """WSGI with two arguments, ASGI with three."""
        if len(args) == 2:
            return self.wsgi(args[0], args[1])
        if len(args) == 3:
            return self.asgi(args[0], args[1], args[2])
        msg = f"Mux is called as WSGI (2 arguments) or ASGI (3), got {len(args)}"
        raise TypeError(msg)

    def wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application."""
        response = self.dispatch(request_from_wsgi(environ))
        start_response(_status_line(response.status), response.header_list())
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [response.body]

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 application (HTTP and lifespan; websockets are closed)."""
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        request = request_from_asgi(scope)
        # Handlers are synchronous and a profile blocks for its duration: off the loop.
        response = await asyncio.to_thread(self.dispatch, request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in response.header_list()
                ],
            }
        )
        body = b"" if scope.get("method") == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})


def _mark_coroutine(fn: Callable[..., object]) -> None:
    if hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+
        inspect.markcoroutinefunction(fn)
    else:  # Python 3.11: asyncio.iscoroutinefunction reads this marker
        fn._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]  # documented marker of 3.11


_ANY_METHOD = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {phrase}"


# ASGI servers (uvicorn, hypercorn) tell ASGI 3 from ASGI 2 by whether __call__ is a
# coroutine function: flag it as one. WSGI servers do not look, and get a plain call.
_mark_coroutine(Mux.__call__)
