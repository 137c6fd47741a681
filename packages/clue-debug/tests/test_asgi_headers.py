"""ASGI request headers are read whatever the case of their names."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from clue import debug


def spellings(name: str) -> st.SearchStrategy[str]:
    """Any spelling of ``name``: ASGI servers send it lower-case, hand-built scopes may not."""
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(name, upper, strict=True))
    )


def _debug_on(trigger_header: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the app saw debug on, served one request behind the middleware."""
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(debug.get_log_control().debug_enabled())

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    middleware = debug.ASGIMiddleware(app, trigger_header=trigger_header)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    asyncio.run(middleware(scope, receive, send))
    (on,) = seen
    return on


@given(configured=spellings("x-clue-debug"), sent=spellings("x-clue-debug"))
def test_trigger_header_matches_in_any_case(configured: str, sent: str) -> None:
    """The trigger header turns debug on for its request however either side spells its
    name; with another value, or absent, debug stays off."""
    name = sent.encode("ascii")
    assert _debug_on(configured, [(b"Host", b"x"), (name, b"on")])
    assert not _debug_on(configured, [(name, b"off")])
    assert not _debug_on(configured, [(b"Host", b"x")])
