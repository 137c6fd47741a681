"""Framework-neutral requests, responses and handlers for the debug endpoints.

Every debug endpoint is a plain synchronous function ``Request -> Response``: the WSGI
side calls it directly, the ASGI side runs it in a worker thread (a CPU profile blocks
for its whole duration), and the framework adapters translate their own request objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, overload, runtime_checkable
from urllib.parse import parse_qs

__all__ = [
    "AuthHook",
    "Handler",
    "Request",
    "Response",
    "Router",
    "json_response",
    "request_from_asgi",
    "request_from_wsgi",
    "seconds_param",
    "text_response",
]


@dataclass(frozen=True)
class Request:
    """What a debug endpoint (and an auth hook) sees of an HTTP request.

    Attributes:
        method: upper-case HTTP method.
        path: the request path, without the query string.
        query: query parameters (the first value of each name).
        headers: request headers, names lower-case.
        client: the peer's address (``host`` or ``host:port``) when known.

    .. versionadded:: 0.1.0
    """

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    client: str | None = None


@dataclass(frozen=True)
class Response:
    """A debug endpoint's answer.

    .. versionadded:: 0.1.0
    """

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    def header_list(self) -> list[tuple[str, str]]:
        """All response headers, content type and length included."""
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            *self.headers,
        ]


Handler = Callable[[Request], Response]
"""A debug endpoint."""

AuthHook = Callable[[Request], bool]
"""Consulted before every debug endpoint: ``True`` lets the request through."""


@runtime_checkable
class Router(Protocol):
    """Anything clue can register debug endpoints on (``Mux``, ``adapt(app)``).

    .. versionadded:: 0.1.0
    """

    def handle(self, path: str, handler: Handler) -> None:
        """Serve ``handler`` for requests to exactly ``path``."""
        ...


def text_response(status: int, text: str, *, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """A ``text/plain`` response."""
    return Response(status, text.encode("utf-8"), headers=tuple(headers))


def json_response(status: int, value: object) -> Response:
    """A compact JSON response."""
    body = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return Response(status, body, content_type="application/json")


@overload
def seconds_param(request: Request, default: float, maximum: float) -> float | Response: ...
@overload
def seconds_param(request: Request, default: None, maximum: float) -> float | Response | None: ...
def seconds_param(
    request: Request, default: float | None, maximum: float
) -> float | Response | None:
    """The ``seconds`` query parameter, or a 400 response naming the limit.

    A positive number of at most ``maximum``, ``default`` when absent.
    """
    raw = request.query.get("seconds")
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= maximum:  # NaN and infinities fail too
        return text_response(400, f"seconds must be a positive number of at most {maximum:g}\n")
    return value


def _parse_query(qs: str) -> dict[str, str]:
    parsed = parse_qs(qs, keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def request_from_wsgi(environ: Mapping[str, object]) -> Request:
    """Build a ``Request`` from a WSGI environ."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        value = environ.get(key)
        if isinstance(value, str) and value:
            headers[key.replace("_", "-").lower()] = value
    addr = environ.get("REMOTE_ADDR")
    path = environ.get("PATH_INFO", "/")
    return Request(
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        path=_wsgi_text(str(path)) or "/",
        query=_parse_query(str(environ.get("QUERY_STRING", ""))),
        headers=headers,
        client=str(addr) if addr else None,
    )


def _wsgi_text(value: str) -> str:
    # PEP 3333 carries the path as latin-1-decoded bytes; undo that to get UTF-8 back.
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def request_from_asgi(scope: Mapping[str, object]) -> Request:
    """Build a ``Request`` from an ASGI HTTP scope."""
    headers: dict[str, str] = {}
    raw = scope.get("headers") or []
    if isinstance(raw, Iterable):
        for item in raw:
            name, value = item
            key = bytes(name).decode("latin-1").lower()
            text = bytes(value).decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
    client = scope.get("client")
    peer = None
    if isinstance(client, list | tuple) and client:
        peer = str(client[0])
    qs = scope.get("query_string", b"")
    query = _parse_query(qs.decode("latin-1") if isinstance(qs, bytes) else "")
    return Request(
        method=str(scope.get("method", "GET")).upper(),
        path=str(scope.get("path", "/")),
        query=query,
        headers=headers,
        client=peer,
    )
