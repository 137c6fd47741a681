"""WSGI bodies an app gets wrong, under gunicorn's gthread worker as a real subprocess.

A body that yields text instead of bytes, or that is not iterable at all, fails the
request: the client gets the middleware's 500 with the request's ``X-Request-Id`` (not
gunicorn's own, which has none), and the log has the error and an error ``end`` line
under that id. Clients that go away mid-stream are no error. Afterwards every context has
been counted once and the process-wide buffer budget is back to zero.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from clue_example.harness import wait_for
from clue_example.launcher import free_port, http_get

_APP = """
import gc, json, sys
from clue import log
from clue.log import _metrics

log.configure(output=sys.stdout, format=log.format_json)


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    log.info("handling", path=path)
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/text":
        return ["text"]
    if path == "/none":
        return None
    def stream():
        for i in range(10_000):
            log.info("chunk", i=i)
            yield b"x" * 65536
    return stream()


logged = log.WSGIMiddleware(_app, request_log_func=log.info)


def app(environ, start_response):
    if environ["PATH_INFO"] != "/stats":
        return logged(environ, start_response)
    gc.collect()
    _metrics.fold()
    t = _metrics.totals
    stats = {"buffered": _metrics.buffered(), "contexts": t.contexts_written + t.contexts_discarded}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(stats).encode()]
"""


def _stats(base: str) -> dict[str, Any]:
    reply = http_get(f"{base}/stats")
    assert reply.status == 200
    return reply.json()  # type: ignore[no-any-return]


def test_bad_bodies_and_gone_clients_under_gunicorn_gthread(tmp_path: Path) -> None:
    (tmp_path / "bodies_app.py").write_text(_APP)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "out.log"
    with out.open("wb") as stdout, (tmp_path / "err.log").open("wb") as stderr:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "1",
                "-k",
                "gthread",
                "--threads",
                "4",
                "--no-control-socket",
                "--chdir",
                str(tmp_path),
                "bodies_app:app",
            ],
            stdout=stdout,
            stderr=stderr,
        )
    try:

        def ready() -> dict[str, Any] | None:
            try:
                return _stats(base)
            except OSError:
                return None

        before = wait_for(ready, what="gunicorn answering")
        replies = {path: http_get(f"{base}{path}") for path in ("/text", "/none")}
        gone = 4
        for _ in range(gone):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
                sock.recv(65536)  # the stream has started; then the client goes away
        requests = len(replies) + gone

        def settled() -> dict[str, Any] | None:
            stats = _stats(base)
            done = stats["contexts"] - before["contexts"] == requests
            return stats if done and stats["buffered"] == 0 else None

        wait_for(settled, timeout=30, what="every request counted and the budget back")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    docs = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    for path, reply in replies.items():
        assert reply.status == 500, path
        rid = reply.headers["x-request-id"]
        mine = [d for d in docs if d.get("request_id") == rid]
        assert [d["msg"] for d in mine] == ["start", "handling", "unhandled exception", "end"]
        assert mine[-1]["level"] == "error"
        assert mine[-1]["http.status"] == 500
    # The streams cut by their clients wrote nothing: no error, nothing buffered.
    assert [d for d in docs if d.get("path") == "/stream"] == []
