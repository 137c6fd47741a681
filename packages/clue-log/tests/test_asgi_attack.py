"""ASGI middleware against odd-but-legal applications: what the app sends reaches the server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from clue import log
from clue.log.testing import capture

# Header names an application may send, the request id's among them in any case.
_NAMES = st.one_of(
    st.sampled_from([b"content-type", b"x-other", b"set-cookie", b"x-request-ix"]),
    st.lists(st.booleans(), min_size=12, max_size=12).map(
        lambda upper: "".join(
            c.upper() if u else c for c, u in zip("x-request-id", upper, strict=True)
        ).encode("ascii")
    ),
)
_HEADERS = st.lists(st.tuples(_NAMES, st.binary(max_size=6)), max_size=5)

# The ASGI spec types response headers as any iterable of pairs: each of these is legal.
_KINDS: dict[str, Callable[[list[tuple[bytes, bytes]]], Iterable[tuple[bytes, bytes]]]] = {
    "list": list,
    "tuple": tuple,
    "iterator": iter,
    "generator": lambda pairs: (p for p in pairs),
    "map": lambda pairs: map(tuple, pairs),
}


def _serve(app: Any, scope_headers: list[tuple[bytes, bytes]] | None = None) -> list[Any]:
    """Run one request through the middleware; the messages the server got, headers listed."""
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        if "headers" in message:
            message = {**message, "headers": list(message["headers"])}
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": scope_headers or []}
    asyncio.run(log.ASGIMiddleware(app)(scope, receive, send))
    return sent


@given(headers=_HEADERS, kind=st.sampled_from(sorted(_KINDS)))
def test_every_response_header_reaches_the_server_whatever_iterable_holds_them(
    headers: list[tuple[bytes, bytes]], kind: str
) -> None:
    """The app's response headers reach the server, in order, whatever iterable holds them."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _KINDS[kind](headers)})
        await send({"type": "http.response.body", "body": b"ok"})

    with capture():
        start = _serve(app, [(b"x-request-id", b"req-1")])[0]
    own = [n for n, _ in headers if n.lower() == b"x-request-id"]
    expected = headers if own else [*headers, (b"x-request-id", b"req-1")]
    assert start["headers"] == expected
