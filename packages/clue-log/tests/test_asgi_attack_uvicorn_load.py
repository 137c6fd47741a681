"""Many concurrent requests of every ending under uvicorn: each one its own lines, each
context counted once, and every reservation of the budget back once they have ended.

Requests that succeed, raise before and after the response started, answer 500, stream,
and clients that go away mid-stream or before any answer, all at once from threads.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clue import log
from clue.log import _metrics

_KINDS = ("ok", "raise", "raise-after", "500", "stream", "gone-mid-stream", "gone-before")


def _booked() -> int:
    _metrics.fold()
    t = _metrics.totals
    return t.contexts_written + t.contexts_discarded


def test_every_request_counted_once_and_the_budget_back_under_uvicorn(
    out: Any, serve_asgi: Any
) -> None:
    gone = threading.Semaphore(0)
    ended = threading.Semaphore(0)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        kind = scope["path"].split("/")[1]
        n = scope["path"].split("/")[2]
        log.bind(n=n)
        log.info("working", n=n)
        if kind == "raise":
            raise ValueError(n)
        if kind == "gone-before":
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.release()
            return
        status = 500 if kind == "500" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        if kind == "raise-after":
            raise ValueError(n)
        if kind == "gone-mid-stream":
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.release()
            for _ in range(100):
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
                await asyncio.sleep(0)
            return
        if kind == "stream":
            for _ in range(3):
                log.info("chunk", n=n)
                await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": n.encode()})

    middleware = log.ASGIMiddleware(app)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        try:
            await middleware(scope, receive, send)
        finally:
            if scope["type"] == "http":
                ended.release()

    host, port = serve_asgi(outer).removeprefix("http://").split(":")
    before = _booked()

    def request(i: int) -> None:
        kind = _KINDS[i % len(_KINDS)]
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"GET /{kind}/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            if kind in ("gone-before", "gone-mid-stream"):
                if kind == "gone-mid-stream":
                    sock.recv(1)
                sock.shutdown(socket.SHUT_RDWR)
                return
            sock.recv(65536)  # the response has started; the request ends on its own

    total = 140
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(request, range(total)))
    for _ in range(total):
        assert ended.acquire(timeout=30)
    gc.collect()
    deadline = time.monotonic() + 20
    while (_booked() - before != total or _metrics.buffered() != 0) and time.monotonic() < deadline:
        gc.collect()
        ended.acquire(timeout=0.05)
    assert _booked() - before == total
    assert _metrics.buffered() == 0
    docs = out.docs()
    by_request: dict[str, set[str]] = {}
    for d in docs:
        if "n" in d:
            by_request.setdefault(str(d["n"]), set()).add(str(d["request_id"]))
    # Every line bound to a request carries that request's one id.
    assert all(len(ids) == 1 for ids in by_request.values()), by_request
    ends = [d for d in docs if d["msg"] == "end"]
    assert len(ends) == total
