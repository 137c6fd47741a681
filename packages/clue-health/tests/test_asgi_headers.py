"""ASGI request headers are read whatever the case of their names, every field line kept."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from clue.health import Checker, asgi_handler


def spellings(name: str) -> st.SearchStrategy[bytes]:
    """Any spelling of ``name``: ASGI servers send it lower-case, hand-built scopes may not."""
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda upper: "".join(
            c.upper() if u else c for c, u in zip(name, upper, strict=True)
        ).encode("ascii")
    )


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    asyncio.run(asgi_handler(Checker())(scope, receive, send))
    return dict(sent[0]["headers"])[b"content-type"]


@given(names=st.lists(spellings("accept"), min_size=1, max_size=3), at=st.integers(0, 2))
def test_accept_is_read_in_any_case_across_its_field_lines(names: list[bytes], at: int) -> None:
    """The XML asked for in one of several Accept field lines, each name spelled in any case,
    is what the health report answers (the lines are combined as RFC 9110 combines them)."""
    values = [b"text/plain;q=0.1"] * len(names)
    values[at % len(names)] = b"application/xml"
    assert _content_type(list(zip(names, values, strict=True))).startswith(b"application/xml")
