"""Attacks on ``ASGIMiddleware``: a request cancelled while the middleware answers its 500.

A server shutting down cancels the tasks still running; one may be inside the
middleware's own ``500`` answer to an app that failed (or returned without answering),
waiting on the server's ``send``. The request must still end once, with its ``end``
line, and the cancellation must reach the server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue import log

_OPTIONS = {"fast": {}, "general": {"path_filters": [r"^/never$"]}}


async def _cancelled_in_the_answer(app: Any, **options: Any) -> BaseException | None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "raw_path": b"/x",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 5),
    }
    answering = asyncio.Event()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        answering.set()
        await asyncio.Event().wait()  # the server never takes it: stuck until cancelled

    task = asyncio.ensure_future(log.ASGIMiddleware(app, **options)(scope, receive, send))
    await answering.wait()
    task.cancel()
    try:
        await task
    except BaseException as exc:
        return exc
    return None


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raises=st.booleans(), path=st.sampled_from(sorted(_OPTIONS)))
def test_a_request_cancelled_while_answering_its_500_still_ends(
    out: Any, raises: bool, path: str
) -> None:
    """Whether the app raised or returned without answering, a cancellation while the
    middleware sends its 500 leaves the request with one ``end`` line (after the error
    and its buffered context when the app raised), and the cancellation goes on."""
    out.truncate(0)
    out.seek(0)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        log.info("handling")
        if raises:
            raise ValueError("failed")

    escaped = asyncio.run(_cancelled_in_the_answer(app, **_OPTIONS[path]))
    assert isinstance(escaped, asyncio.CancelledError)
    msgs = [d["msg"] for d in out.docs()]
    if raises:
        assert msgs == ["start", "handling", "unhandled exception", "end"]
    else:
        assert msgs == ["start", "handling", "end"]
    assert out.docs()[-1]["level"] == "error"
