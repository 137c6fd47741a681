"""log.RequestsAdapter against a local HTTP server: 200, 404, 500 and a closed connection."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from clue import log

MSG = "finished client HTTP request"


def session(**options: Any) -> requests.Session:
    s = requests.Session()
    adapter = log.RequestsAdapter(**options)
    s.mount("http://", adapter)
    return s


def test_success_logs_one_line(logs: Any, http_backend: str) -> None:
    """A successful request logs method, url, int status and time."""
    with session() as s:
        assert s.get(http_backend + "/ok?a=1").text == "fine"
    (entry,) = logs.entries()
    assert entry["msg"] == MSG
    assert entry["level"] == "info"
    assert entry["http.method"] == "GET"
    assert entry["http.url"] == http_backend + "/ok?a=1"
    assert entry["http.status"] == 200
    assert entry["http.time_ms"] >= 0


def test_error_status_flushes_buffer(logs: Any, http_backend: str) -> None:
    """A 404 or 500 is an error entry, flushing the caller's buffered entries first."""
    with session(request_log_func=log.info) as s, log.context():
        log.info("before")
        s.get(http_backend + "/ok")
        assert s.get(http_backend + "/missing").status_code == 404
    entries = logs.entries()
    assert [(e["msg"], e["level"]) for e in entries] == [
        ("before", "info"),
        (MSG, "info"),
        (MSG, "error"),
    ]
    assert entries[2]["http.status"] == 404
    assert entries[2]["err"] == "HTTP status 404"
    assert "http.body" not in entries[2]


def test_error_func(logs: Any, http_backend: str) -> None:
    """error_func decides which statuses are errors."""
    with session(error_func=lambda status: status >= 500) as s:
        s.get(http_backend + "/missing")
        s.get(http_backend + "/boom")
    assert [e["level"] for e in logs.entries()] == ["info", "error"]


def test_body_on_error_leaves_body_readable(logs: Any, http_backend: str) -> None:
    """The capped error body is logged and the caller still reads the whole body."""
    with session(log_body_on_error=True, max_body_size=10) as s:
        r = s.get(http_backend + "/boom")
        assert r.json() == {"error": "database down"}
        big = s.get(http_backend + "/big", stream=True)
        assert b"".join(big.iter_content(100)).decode() == "é" * 5000
        s.get(http_backend + "/gzip")
    boom, big_entry, gz = logs.entries()
    assert boom["http.body"] == '{"error":"'
    assert big_entry["http.body"] == "é" * 10
    assert gz["http.body"] == "compressed"


def test_transport_failure_logged_and_raised(logs: Any, http_backend: str) -> None:
    """A closed connection is logged as an error with the exception, then raised."""
    with session() as s, pytest.raises(requests.ConnectionError):
        s.get(http_backend + "/close")
    (entry,) = logs.entries()
    assert entry["level"] == "error"
    assert "http.status" not in entry
    assert entry["http.url"] == http_backend + "/close"
    assert any("Traceback" in str(v) for v in entry.values())


def test_credentials_never_logged(logs: Any, http_backend: str) -> None:
    """User and password in the URL are removed from http.url."""
    url = http_backend.replace("http://", "http://alice:s3cret@") + "/ok"
    with session() as s:
        s.get(url)
    (entry,) = logs.entries()
    assert entry["http.url"] == http_backend + "/ok"
    assert "s3cret" not in logs.out.getvalue()


async def _async_func(*args: Any, **kv: Any) -> bool:
    return True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_func": 400},
        {"log_body_on_error": "yes"},
        {"max_body_size": 0},
        {"max_body_size": True},
        {"request_log_func": "print"},
        {"request_log_func": _async_func},
        {"error_func": _async_func},
    ],
)
def test_bad_options(kwargs: dict[str, Any]) -> None:
    """A malformed option raises ValueError naming it, for requests and httpx alike."""
    name = next(iter(kwargs))
    for factory in (log.RequestsAdapter, log.HttpxTransport, log.AsyncHttpxTransport):
        with pytest.raises(ValueError, match=name):
            factory(**kwargs)
