"""ASGI's call shapes, and the one way to read a request header from an ASGI scope.

The same text in every clue package that speaks ASGI: packages never import each other's
internals, so each keeps its copy, and a difference between the copies is drift.

ASGI hands a request's headers over as ``(name, value)`` byte pairs. The ASGI
specification asks servers to send the names in lower case (uvicorn, hypercorn and
daphne do), but a scope built by hand, by a test client or by another middleware may
not, so a lookup takes the wanted name in lower case and compares it with each name
lower-cased: every clue package reads the same request the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

# ASGI's messages are plain dicts; like structlog's EventDict, Any is their accepted type.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def header_values(scope: Scope, name: bytes) -> list[bytes]:
    """The values of request header ``name`` (given in lower case), in the order received.

    Example:
        >>> header_values({"headers": [(b"Accept", b"text/html"), (b"accept", b"*/*")]}, b"accept")
        [b'text/html', b'*/*']
    """
    size = len(name)  # most names differ in length: only the others are lower-cased
    return [bytes(v) for k, v in scope.get("headers") or () if len(k) == size and k.lower() == name]
