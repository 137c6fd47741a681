"""ASGI request headers are read whatever the case of their names."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from clue import log
from clue.log.testing import capture

# Any spelling of the header's name: ASGI servers send it lower-case, hand-built scopes,
# test clients and other middleware may not.
NAMES = st.lists(st.booleans(), min_size=12, max_size=12).map(
    lambda upper: "".join(
        c.upper() if u else c for c, u in zip("x-request-id", upper, strict=True)
    ).encode("ascii")
)
IDS = st.from_regex(r"[A-Za-z0-9._:+/=-]{1,128}", fullmatch=True)
OTHER = st.lists(
    st.tuples(st.sampled_from([b"accept", b"Host", b"X-Other"]), st.binary(max_size=8)),
    max_size=4,
)


async def ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _served(scope: dict[str, Any]) -> list[Any]:
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    with capture():
        asyncio.run(log.ASGIMiddleware(ok)(scope, receive, send))
    return sent


@given(name=NAMES, rid=IDS, before=OTHER, after=OTHER)
def test_incoming_request_id_is_reused_whatever_the_case_of_its_name(
    name: bytes, rid: str, before: list[tuple[bytes, bytes]], after: list[tuple[bytes, bytes]]
) -> None:
    """A well-formed X-Request-Id is reused (and sent back) whatever the case of its name."""
    headers = [*before, (name, rid.encode("ascii")), *after]
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    start = _served(scope)[0]
    assert start["type"] == "http.response.start"
    assert (b"x-request-id", rid.encode("ascii")) in start["headers"]
