"""log.HttpxTransport and log.AsyncHttpxTransport against a local HTTP server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clue import log

MSG = "finished client HTTP request"


def test_sync_statuses(logs: Any, http_backend: str) -> None:
    """200 is a plain line; 404 and 500 are errors with the int status."""
    with httpx.Client(transport=log.HttpxTransport(), base_url=http_backend) as client:
        assert client.get("/ok").text == "fine"
        assert client.get("/missing").status_code == 404
        assert client.get("/boom").status_code == 500
    entries = logs.entries()
    assert [(e["level"], e["http.status"]) for e in entries] == [
        ("info", 200),
        ("error", 404),
        ("error", 500),
    ]
    assert entries[0]["msg"] == MSG
    assert entries[0]["http.method"] == "GET"
    assert entries[0]["http.url"] == http_backend + "/ok"


def test_sync_body_on_error_stays_readable(logs: Any, http_backend: str) -> None:
    """The capped, decoded error body is logged and the response stays readable."""
    transport = log.HttpxTransport(log_body_on_error=True, max_body_size=10)
    with httpx.Client(transport=transport, base_url=http_backend) as client:
        assert client.get("/boom").json() == {"error": "database down"}
        with client.stream("GET", "/big") as r:
            assert "".join(r.iter_text()) == "é" * 5000
        r = client.get("/gzip")
        assert r.text == "compressed failure"
        assert r.elapsed.total_seconds() >= 0
    boom, big, gz = logs.entries()
    assert boom["http.body"] == '{"error":"'
    assert big["http.body"] == "é" * 10
    assert gz["http.body"] == "compressed"


def test_sync_transport_failure(logs: Any, http_backend: str) -> None:
    """A closed connection is logged as an error and re-raised."""
    transport = log.HttpxTransport()
    with (
        httpx.Client(transport=transport, base_url=http_backend) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.get("/close")
    (entry,) = logs.entries()
    assert entry["level"] == "error"
    assert entry["http.url"] == http_backend + "/close"


async def test_async_transport(logs: Any, http_backend: str) -> None:
    """The async transport logs like the sync one, body on error included."""
    transport = log.AsyncHttpxTransport(log_body_on_error=True, request_log_func=log.info)
    async with httpx.AsyncClient(transport=transport, base_url=http_backend) as client:
        with log.context():
            log.info("buffered")
            assert (await client.get("/ok")).text == "fine"
        with log.context():
            log.info("before failure")
            assert (await client.get("/boom")).json() == {"error": "database down"}
            with pytest.raises(httpx.TransportError):
                await client.get("/close")
    entries = logs.entries()
    assert [(e["msg"], e["level"]) for e in entries] == [
        ("before failure", "info"),
        (MSG, "error"),
        (MSG, "error"),
    ]
    assert entries[1]["http.body"] == '{"error":"database down"}'
    assert "http.status" not in entries[2]


def test_credentials_never_logged(logs: Any, http_backend: str) -> None:
    """User and password in the URL are removed from http.url."""
    url = http_backend.replace("http://", "http://bob:hunter2@") + "/ok"
    with httpx.Client(transport=log.HttpxTransport()) as client:
        client.get(url)
    assert logs.entries()[0]["http.url"] == http_backend + "/ok"
    assert "hunter2" not in logs.out.getvalue()
