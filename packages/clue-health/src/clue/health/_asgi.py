"""The health endpoints as ASGI applications."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clue.health._checker import Checker
from clue.health._respond import Query, Response, health_response, method_not_allowed, not_found
from clue.health._types import ASGIApp, Receive, Scope, Send, header_values

if TYPE_CHECKING:
    from clue.health._probes import Probes


def asgi_handler(checker: Checker) -> ASGIApp:
    """An ASGI app answering the health report, wherever it is mounted.

    Same answers as ``wsgi_handler``, without blocking the event loop (``acheck()``).
    Mount it in Starlette/FastAPI with ``Mount("/healthz", app=asgi_handler(checker))``.

    Example:
        >>> import asyncio
        >>> sent = []
        >>> async def send(message):
        ...     sent.append(message)
        >>> async def receive():
        ...     return {"type": "http.request"}
        >>> scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
        >>> asyncio.run(asgi_handler(Checker())(scope, receive, send))
        >>> sent[0]["status"]
        200

    .. versionadded:: 0.1.0
    """
    if not isinstance(checker, Checker):
        raise TypeError(f"checker must be a clue.health.Checker, got {checker!r}")

    async def health_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await _not_http(scope, receive, send, None)
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _send(method_not_allowed(), method, send)
            return
        health, healthy = await checker.acheck()
        await _send(health_response(health, healthy, _header(scope, b"accept")), method, send)

    return health_app


def probes_asgi(probes: Probes, app: ASGIApp | None) -> ASGIApp:
    """See ``Probes.asgi``."""

    async def probes_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if app is not None:
                await app(scope, receive, send)
            else:
                await _not_http(scope, receive, send, probes)
            return
        route = probes.route(_path(scope))
        method = scope.get("method", "GET")
        if route is None:
            if app is not None:
                await app(scope, receive, send)
            else:
                await _send(not_found(), method, send)
            return
        if method not in ("GET", "HEAD"):
            await _send(method_not_allowed(), method, send)
            return
        query = Query.parse(bytes(scope.get("query_string", b"")).decode("latin-1"))
        health = (await probes.checker.acheck())[0] if probes.needs_check(route, query) else None
        await _send(probes.respond(route, query, _header(scope, b"accept"), health), method, send)

    return probes_app


async def _not_http(scope: Scope, receive: Receive, send: Send, probes: Probes | None) -> None:
    """Lifespan: complete start-up and shutdown (shutdown turns readiness off).

    Websocket: refuse the connection.
    """
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})
        return
    if scope["type"] != "lifespan":
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if probes is not None:
                probes.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _path(scope: Scope) -> str:
    path: str = scope.get("path", "") or "/"
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


def _header(scope: Scope, name: bytes) -> str | None:
    # Repeated field lines joined as RFC 9110 (5.3) combines them: "a, b".
    values = header_values(scope, name)
    return b", ".join(values).decode("latin-1") if values else None


async def _send(response: Response, method: str, send: Send) -> None:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.head(method)})
