"""Attacks on ``ASGIMiddleware``'s ``http.bytes``: bodies not sent as ``http.response.body``.

A server advertising the ``http.response.pathsend`` extension (Granian, and others)
gets Starlette's ``FileResponse`` as one ``http.response.pathsend`` message naming the
file, and the ``http.response.zerocopysend`` extension sends a body from an open file.
The README promises ``http.bytes`` counted over the whole body.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route

from clue import log

_OPTIONS = {"fast": {}, "general": {"path_filters": [r"^/never$"]}}


async def _serve(app: Any, extensions: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/file",
        "raw_path": b"/file",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 5),
        "server": ("127.0.0.1", 80),
        "extensions": extensions,
    }
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}  # every read once the response went out

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await log.ASGIMiddleware(app, **options)(scope, receive, send)
    return sent


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 70_000), path=st.sampled_from(sorted(_OPTIONS)))
def test_a_file_sent_by_path_is_counted_in_http_bytes(
    out: Any, tmp_path: Path, size: int, path: str
) -> None:
    """Starlette's ``FileResponse`` under a server with ``http.response.pathsend``:
    ``http.bytes`` is the file's size, on the fast and the general path."""
    out.truncate(0)
    out.seek(0)
    file = tmp_path / "f.bin"
    file.write_bytes(b"x" * size)
    app = Starlette(routes=[Route("/file", lambda request: FileResponse(file))])
    sent = asyncio.run(_serve(app, {"http.response.pathsend": {}}, **_OPTIONS[path]))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    (end,) = (d for d in out.docs() if d["msg"] == "end")
    assert end["http.status"] == 200
    assert end["http.bytes"] == size


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    size=st.integers(0, 5000),
    offset=st.none() | st.integers(0, 6000),
    count=st.none() | st.integers(0, 6000),
    path=st.sampled_from(sorted(_OPTIONS)),
)
def test_a_zero_copy_body_is_counted_in_http_bytes(
    out: Any, tmp_path: Path, size: int, offset: int | None, count: int | None, path: str
) -> None:
    """``http.response.zerocopysend`` messages count what they send: ``count`` bytes of
    the file (an object or its descriptor) from ``offset`` (the file's own position when
    none), at most to its end."""
    out.truncate(0)
    out.seek(0)
    file = tmp_path / "f.bin"
    file.write_bytes(b"x" * size)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with file.open("rb") as f:
            message: dict[str, Any] = {"type": "http.response.zerocopysend", "file": f}
            if offset is not None:
                message["offset"] = offset
            if count is not None:
                message["count"] = count
            await send({**message, "more_body": True})
            await send({"type": "http.response.zerocopysend", "file": f.fileno(), "count": 3})

    asyncio.run(_serve(app, {"http.response.zerocopysend": {}}, **_OPTIONS[path]))
    start = 0 if offset is None else offset
    first = max(0, size - start) if count is None else max(0, min(count, size - start))
    # The second message reads from the file's own position, which the first left alone.
    second = min(3, size)
    (end,) = (d for d in out.docs() if d["msg"] == "end")
    assert end["http.bytes"] == first + second
    assert os.stat(file).st_size == size
