"""clue-health figures: answer time with a hung dependency, dependency calls in a probe storm.

Run by ``nox -s bench`` (or ``python bench_health.py``). Everything is local: the
dependencies and the service are HTTP servers on 127.0.0.1. Prints each bar with its
measured ratio and PASS/FAIL; exits non-zero when a bar fails.

Bars:
- H1: p99 answer time of the health endpoint with one hung dependency, every probe
  evaluated (no cache), stays under Kubernetes' default 1 s probe timeout.
- H2: 500 concurrent probes against a dependency that takes 300 ms cost that dependency
  exactly one call (single flight + the default 1 s TTL).
"""

from __future__ import annotations

import asyncio
import math
import socketserver
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog

from clue.health import Checker, new_pinger, wsgi_handler

K8S_PROBE_TIMEOUT = 1.0
PROBES_SEQUENTIAL = 100
STORM = 500


class _Dep(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    mode = "ok"
    delay = 0.3
    calls = 0
    release = threading.Event()


class _DepHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Dep

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.server.calls += 1
        if self.server.mode == "hang":
            self.server.release.wait(60)
            self.close_connection = True
            return
        if self.server.mode == "slow":
            self.server.release.wait(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class _Service(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 1024


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def _dependency(mode: str) -> _Dep:
    dep = _Dep(("127.0.0.1", 0), _DepHandler)
    dep.mode = mode
    threading.Thread(target=dep.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return dep


def _serve(checker: Checker) -> WSGIServer:
    server = make_server(
        "127.0.0.1", 0, wsgi_handler(checker), server_class=_Service, handler_class=_Quiet
    )
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


def _addr(server: Any) -> str:
    return f"127.0.0.1:{server.server_address[1]}"


async def _probe(port: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(raw.split(b" ", 2)[1]), time.perf_counter() - t0


def hung_dependency_p99() -> tuple[float, float, float, list[int]]:
    """Sequential probes, each a full evaluation, with one hung and one healthy dependency."""
    hung, ok = _dependency("hang"), _dependency("ok")
    checker = Checker(new_pinger("hung", _addr(hung)), new_pinger("ok", _addr(ok)), cache_ttl=0)
    service = _serve(checker)
    port = service.server_address[1]
    times, statuses = [], []
    for _ in range(PROBES_SEQUENTIAL):
        status, elapsed = asyncio.run(_probe(port))
        statuses.append(status)
        times.append(elapsed)
    hung.release.set()
    for server in (service, hung, ok):
        server.shutdown()
        server.server_close()
    times.sort()
    p99 = times[max(0, math.ceil(0.99 * len(times)) - 1)]  # nearest rank
    return p99, statistics.median(times), times[-1], sorted(set(statuses))


def storm_calls() -> tuple[int, float, list[int]]:
    """500 concurrent probes over real HTTP against a 300 ms dependency (default TTL)."""
    slow = _dependency("slow")
    service = _serve(Checker(new_pinger("slow", _addr(slow), timeout=0.8), timeout=0.8))
    port = service.server_address[1]

    async def storm() -> list[tuple[int, float]]:
        return await asyncio.gather(*(_probe(port) for _ in range(STORM)))

    t0 = time.perf_counter()
    answers = asyncio.run(storm())
    wall = time.perf_counter() - t0
    for server in (service, slow):
        server.shutdown()
        server.server_close()
    return slow.calls, wall, sorted({s for s, _ in answers})


def main() -> int:
    # The hung dependency is logged on every probe; keep the report readable.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))
    failed = False

    p99, p50, worst, statuses = hung_dependency_p99()
    ok = p99 < K8S_PROBE_TIMEOUT and statuses == [503]
    failed |= not ok
    print(
        f"H1 hung dependency, {PROBES_SEQUENTIAL} probes (timeout 0.5 s, no cache): "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms, "
        f"statuses {statuses}; "
        f"p99 / 1 s probe timeout = {p99 / K8S_PROBE_TIMEOUT:.2f} (bar < 1.00) "
        f"{'PASS' if ok else 'FAIL'}"
    )

    calls, wall, statuses = storm_calls()
    ok = calls == 1 and statuses == [200]
    failed |= not ok
    print(
        f"H2 probe storm: {STORM} concurrent probes in {wall:.2f} s, statuses {statuses}, "
        f"dependency calls {calls}; calls / probes = {calls}/{STORM} (bar: 1 call per TTL) "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
