"""Shared fixtures: real local dependencies, real servers, an in-memory span exporter."""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import socketserver
import struct
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clue import health

# The global tracer provider can be set once per process: one exporter, cleared per test.
EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The in-memory span exporter, empty at the start of the test."""
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


@pytest.fixture(autouse=True)
def _health_globals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the module's own VERSION and STARTED_AT."""
    monkeypatch.setattr(health, "VERSION", health.VERSION)
    monkeypatch.setattr(health, "STARTED_AT", health.STARTED_AT)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds, failing the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


@pytest.fixture
def poll() -> Callable[..., None]:
    """``poll(predicate, timeout=5)``: wait on a condition with a deadline."""
    return wait_for


# --- Pingers -------------------------------------------------------------------------


class FakePinger:
    """A programmable in-process pinger: ok, raise, block until released, async or not."""

    def __init__(self, name: str, *, error: BaseException | None = None, block: bool = False):
        self.name = name
        self.error = error
        self.block = block
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def ping(self) -> None:
        with self._lock:
            self.calls += 1
        self.started.set()
        if self.block:
            self.release.wait(30)
        if self.error is not None:
            raise self.error


class AsyncFakePinger:
    """The async twin of ``FakePinger``; records whether it was cancelled."""

    def __init__(self, name: str, *, error: BaseException | None = None, block: bool = False):
        self.name = name
        self.error = error
        self.block = block
        self.calls = 0
        self.cancelled = threading.Event()

    async def ping(self) -> None:
        self.calls += 1
        if self.block:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if self.error is not None:
            raise self.error


@dataclass
class Pingers:
    """Factories for fake pingers; blocked ones are released at teardown."""

    made: list[FakePinger] = field(default_factory=list)

    def sync(self, name: str, **kw: Any) -> FakePinger:
        p = FakePinger(name, **kw)
        self.made.append(p)
        return p

    def aio(self, name: str, **kw: Any) -> AsyncFakePinger:
        return AsyncFakePinger(name, **kw)


@pytest.fixture
def pingers() -> Iterator[Pingers]:
    """Make fake pingers; every blocked sync ping is released when the test ends."""
    made = Pingers()
    yield made
    for p in made.made:
        p.release.set()


# --- A real HTTP dependency ------------------------------------------------------------


class _DependencyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, dep: Dependency) -> None:
        self.dep = dep
        self.to_reset: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), _DependencyHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.dep.lock:
            self.dep.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        if request in self.to_reset:  # close with SO_LINGER 0: the peer sees a reset
            self.to_reset.discard(request)
            request.close()
            return
        super().shutdown_request(request)


class _DependencyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _DependencyServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        dep = self.server.dep
        with dep.lock:
            dep.calls += 1
            dep.requests.append((self.path, dict(self.headers)))
        mode = dep.mode
        if mode == "hang":
            dep.release.wait(30)
            self.close_connection = True
            return
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.server.to_reset.add(self.connection)
            self.close_connection = True
            return
        if mode == "slow":
            dep.release.wait(dep.delay)
        status, body = {
            "200": (200, b"ok"),
            "204": (204, b""),
            "503": (503, b"unavailable"),
            "301": (301, b""),
            "big": (200, b"x" * (1 << 20)),
            "slow": (200, b"ok"),
        }[mode]
        self.send_response(status)
        if status == 301:
            self.send_header("Location", "/elsewhere")
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Dependency:
    """A real HTTP service on 127.0.0.1 whose health endpoint behaves as ``mode`` says.

    Modes: ``200``, ``204``, ``503``, ``301``, ``big`` (1 MiB body), ``slow`` (answers
    200 after ``delay`` seconds), ``hang`` (never answers), ``reset`` (resets the
    connection).
    """

    def __init__(self) -> None:
        self.mode = "200"
        self.delay = 0.2
        self.calls = 0
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self._server = _DependencyServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def dependency() -> Iterator[Dependency]:
    """A real local HTTP dependency (see ``Dependency``), stopped at teardown."""
    dep = Dependency()
    yield dep
    dep.close()


@pytest.fixture
def closed_addr() -> str:
    """A 127.0.0.1 address where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


# --- Serving a WSGI app for real --------------------------------------------------------


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 1024


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class Served:
    """A WSGI app served on 127.0.0.1, with a tiny client."""

    port: int

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[[Any], Served]]:
    """``serve_wsgi(app)`` serves ``app`` on a free loopback port until the test ends."""
    servers: list[WSGIServer] = []

    def start(app: Any) -> Served:
        server = make_server(
            "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        servers.append(server)
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return Served(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- Calling an ASGI app in process -----------------------------------------------------


@dataclass
class ASGIResult:
    status: int
    headers: dict[str, str]
    body: bytes


async def call_asgi(
    app: Any,
    path: str = "/",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    query: str = "",
    root_path: str = "",
) -> ASGIResult:
    """Send one HTTP request through an ASGI app and collect its answer."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return ASGIResult(start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body)


@pytest.fixture
def asgi() -> Callable[..., Any]:
    """``await asgi(app, path, method=..., headers=..., query=..., root_path=...)``."""
    return call_asgi


def _fork_while_held(lock: Any, child: Callable[[], object], timeout: float = 30.0) -> int:
    """Fork while another thread holds ``lock``; run ``child()`` in the child.

    Returns the child's exit code: 0 when ``child()`` returned, 1 when it raised, -9 when
    it hung past ``timeout`` (killed).
    """
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(timeout)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(timeout)
    with warnings.catch_warnings():  # 3.12+: forking a multi-threaded process warns
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: the holder thread does not exist here
        code = 1
        try:
            child()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    release.set()
    holder.join(timeout)
    deadline = time.monotonic() + timeout
    while True:  # poll the child with a deadline
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -9
        time.sleep(0.01)


@pytest.fixture
def fork_while_held() -> Callable[..., int]:
    """``fork_while_held(lock, child) -> exit code``: fork while a thread holds ``lock``."""
    return _fork_while_held
