"""The HTTP server middleware against hostile clocks: ``http.time_ms`` stays finite and >= 0."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clue import log
from clue.log import _asgi, _wsgi
from clue.log._server_options import elapsed_ms
from clue.log.testing import capture


def _serve(app: Any) -> list[Any]:
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    asyncio.run(log.ASGIMiddleware(app)(scope, receive, send))
    return sent


# Readings a clock patched by a test (freezegun travelling back, a fake clock) may give.
_READINGS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**12), 10**12).map(float),
)


@given(start=_READINGS, now=_READINGS)
def test_elapsed_is_never_negative_and_always_finite(start: float, now: float) -> None:
    """A duration is a finite, non-negative float, whatever two clock readings it is given."""
    got = elapsed_ms(start, now)
    assert type(got) is float
    assert math.isfinite(got)
    assert got >= 0.0


def _clock(readings: list[float]) -> Callable[[], float]:
    it: Iterator[float] = iter(readings)
    last = [0.0]

    def perf_counter() -> float:
        last[0] = next(it, last[0])
        return last[0]

    return perf_counter


@pytest.mark.parametrize(
    "readings",
    [[10.0, 4.0], [0.0, math.nan], [0.0, math.inf], [math.inf, math.inf], [5.0, -math.inf]],
    ids=["backwards", "nan", "inf", "inf-inf", "minus-inf"],
)
def test_a_hostile_clock_never_breaks_the_request(
    monkeypatch: pytest.MonkeyPatch, readings: list[float]
) -> None:
    """A clock gone backwards or non-finite gives an end line with a finite, non-negative time."""
    monkeypatch.setattr(_asgi, "perf_counter", _clock(readings))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with capture() as cap:
        sent = _serve(app)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    (end,) = [d for d in cap.dicts() if d["msg"] == "end"]
    assert math.isfinite(end["http.time_ms"])
    assert end["http.time_ms"] >= 0.0


@pytest.mark.parametrize(
    "readings",
    [[10.0, 4.0], [0.0, math.nan], [0.0, math.inf], [math.inf, math.inf], [5.0, -math.inf]],
    ids=["backwards", "nan", "inf", "inf-inf", "minus-inf"],
)
def test_a_hostile_clock_never_breaks_a_wsgi_request(
    monkeypatch: pytest.MonkeyPatch, readings: list[float]
) -> None:
    """Under WSGI too, a clock gone backwards or non-finite gives a finite, non-negative time."""
    monkeypatch.setattr(_wsgi, "perf_counter", _clock(readings))

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    with capture() as cap:
        body = log.WSGIMiddleware(app)(environ, lambda *a: None)
        assert b"".join(body) == b"ok"
        body.close()  # type: ignore[attr-defined]
    (end,) = [d for d in cap.dicts() if d["msg"] == "end"]
    assert math.isfinite(end["http.time_ms"])
    assert end["http.time_ms"] >= 0.0
