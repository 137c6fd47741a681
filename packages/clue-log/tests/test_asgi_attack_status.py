"""Attacks on ``ASGIMiddleware``'s ``http.status``: statuses an ASGI app may send.

Starlette keeps a response's ``status_code`` as the app gave it, so
``Response(status_code=HTTPStatus.CREATED)`` sends an ``IntEnum`` member in
``http.response.start``, and servers take it (h11 turns any ``int`` into a plain one).
The README promises ``http.status`` as the real status, an int.
"""

from __future__ import annotations

import asyncio
import enum
from http import HTTPStatus
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue import log

_OPTIONS = {"fast": {}, "general": {"path_filters": [r"^/never$"]}}


class _Status(enum.IntEnum):
    TEAPOT = 418
    BROKEN = 503


async def _serve(app: Any, **options: Any) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/x",
        "raw_path": b"/x",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 5),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            int(message["status"])  # what h11 does with it
        sent.append(message)

    await log.ASGIMiddleware(app, **options)(scope, receive, send)
    return sent


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.sampled_from(list(HTTPStatus)) | st.sampled_from(list(_Status)),
    path=st.sampled_from(sorted(_OPTIONS)),
)
def test_an_int_enum_status_is_logged_as_an_int(out: Any, status: int, path: str) -> None:
    """An ``IntEnum`` status (``HTTPStatus.CREATED``) is written as the plain int it
    is, and judged as one, on the fast and the general path."""
    out.truncate(0)
    out.seek(0)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        log.info("handling")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"abc"})

    sent = asyncio.run(_serve(app, **_OPTIONS[path]))
    assert sent[0]["status"] is status  # the server gets what the app sent
    ends = [d for d in out.docs() if d["msg"] == "end"]
    assert len(ends) == 1, out.docs()
    (end,) = ends
    assert type(end["http.status"]) is int
    assert end["http.status"] == int(status)
    assert end["http.bytes"] == 3
    if int(status) >= 500:
        assert end["level"] == "error"
        assert [d["msg"] for d in out.docs()] == ["start", "handling", "end"]
    else:
        assert end["level"] == "info"
        assert [d["msg"] for d in out.docs()] == ["start", "end"]
