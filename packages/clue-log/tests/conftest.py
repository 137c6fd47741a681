"""Shared fixtures: a fresh clue and structlog configuration for every test, log capture,
real servers on 127.0.0.1 free ports, and the gRPC test servicer."""

from __future__ import annotations

import io
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from clue import log
from clue.log.testing import clue_logs, reset

__all__ = ["clue_logs"]


@pytest.fixture(autouse=True)
def _fresh_clue() -> Iterator[None]:
    reset()
    yield
    reset()


class JsonOut(io.StringIO):
    """An output stream whose lines parse as JSON documents."""

    def docs(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]

    def msgs(self) -> list[object]:
        return [d.get("msg") for d in self.docs()]


@pytest.fixture
def out() -> JsonOut:
    """clue configured to write JSON lines into memory."""
    stream = JsonOut()
    log.configure(output=stream, format=log.format_json)
    return stream


@pytest.fixture
def sampled_tracer() -> trace.Tracer:
    return TracerProvider(sampler=ALWAYS_ON).get_tracer("test")


@pytest.fixture
def unsampled_tracer() -> trace.Tracer:
    return TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")


# The generated gRPC modules import each other by plain name.
sys.path.insert(0, str(Path(__file__).parent / "integrations"))


class Capture:
    """The lines written by clue.log, parsed from JSON."""

    def __init__(self) -> None:
        self.out = io.StringIO()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines() if line]

    def msgs(self, msg: str) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e.get("msg") == msg]

    def wait_for(
        self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Poll the captured entries until ``pred`` holds (server threads log late)."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.entries()
            if pred(entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.005)


@pytest.fixture
def logs() -> Iterator[Capture]:
    """Capture clue.log output as JSON lines for the duration of a test."""
    cap = Capture()
    log.configure(output=cap.out, format=log.format_json)
    yield cap
    log.configure(output=io.StringIO(), format=log.format_json)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@pytest.fixture
def serve_asgi() -> Iterator[Callable[[Any], str]]:
    """Run ASGI apps under uvicorn in a thread; return the base URL."""
    import uvicorn

    running: list[tuple[Any, threading.Thread]] = []

    def start(app: Any, ws: str = "none") -> str:
        sock = _free_socket()
        config = uvicorn.Config(app, log_level="warning", ws=ws, lifespan="auto")  # type: ignore[arg-type]
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        host, port = sock.getsockname()
        return f"http://{host}:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(10)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[[Any], str]]:
    """Run WSGI apps under wsgiref's server in a thread; return the base URL."""
    running: list[tuple[WSGIServer, threading.Thread]] = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(10)


# --------------------------------------------------------------------------- gRPC


def _fail(request: Any) -> Any:
    import grpc

    return getattr(grpc.StatusCode, request.fail) if request.fail else None


def _incoming_id(context: Any) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return str(value)
    return ""


class SyncEcho:
    """The sync test servicer: logs one buffered entry per request message."""

    def _check(self, request: Any, context: Any) -> None:
        log.info("handling", text=request.text)
        if request.crash:
            raise RuntimeError("boom: " + request.text)
        code = _fail(request)
        if code is not None:
            context.abort(code, "failed: " + request.text)

    def Unary(self, request: Any, context: Any) -> Any:
        import cluelog_echo_pb2 as pb

        self._check(request, context)
        return pb.EchoReply(text=request.text, request_id=_incoming_id(context))

    def ServerStream(self, request: Any, context: Any) -> Iterator[Any]:
        import cluelog_echo_pb2 as pb

        for i in range(request.count):
            log.info("sending", i=i)
            yield pb.EchoReply(text=f"{request.text}-{i}")
        self._check(request, context)

    def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        import cluelog_echo_pb2 as pb

        texts = []
        for request in request_iterator:
            self._check(request, context)
            texts.append(request.text)
        return pb.EchoReply(text="+".join(texts))

    def Bidi(self, request_iterator: Any, context: Any) -> Iterator[Any]:
        import cluelog_echo_pb2 as pb

        for request in request_iterator:
            self._check(request, context)
            yield pb.EchoReply(text=request.text)


class AioEcho:
    """The grpc.aio test servicer, same behaviour as SyncEcho."""

    async def _check(self, request: Any, context: Any) -> None:
        log.info("handling", text=request.text)
        if request.crash:
            raise RuntimeError("boom: " + request.text)
        code = _fail(request)
        if code is not None:
            await context.abort(code, "failed: " + request.text)

    async def Unary(self, request: Any, context: Any) -> Any:
        import cluelog_echo_pb2 as pb

        await self._check(request, context)
        return pb.EchoReply(text=request.text, request_id=_incoming_id(context))

    async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[Any]:
        import cluelog_echo_pb2 as pb

        for i in range(request.count):
            log.info("sending", i=i)
            yield pb.EchoReply(text=f"{request.text}-{i}")
        await self._check(request, context)

    async def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        import cluelog_echo_pb2 as pb

        texts = []
        async for request in request_iterator:
            await self._check(request, context)
            texts.append(request.text)
        return pb.EchoReply(text="+".join(texts))

    async def Bidi(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        import cluelog_echo_pb2 as pb

        async for request in request_iterator:
            await self._check(request, context)
            yield pb.EchoReply(text=request.text)


@pytest.fixture
def grpc_sync_server() -> Iterator[Callable[..., str]]:
    """Start a real grpc.server with the given interceptors; return its address."""
    import cluelog_echo_pb2_grpc as pb_grpc
    import grpc

    servers: list[Any] = []

    def start(*interceptors: Any) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=list(interceptors))
        pb_grpc.add_EchoServicer_to_server(SyncEcho(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None).wait(10)


@pytest.fixture
async def grpc_aio_server() -> AsyncIterator[Callable[..., Any]]:
    """Start a real grpc.aio.server with the given interceptors; return its address."""
    import cluelog_echo_pb2_grpc as pb_grpc
    import grpc

    servers: list[Any] = []

    async def start(*interceptors: Any) -> str:
        server = grpc.aio.server(interceptors=list(interceptors))
        pb_grpc.add_EchoServicer_to_server(AioEcho(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        await server.stop(None)


@pytest.fixture
def e2e_server() -> Iterator[Callable[[str], tuple[str, Callable[[], list[dict[str, Any]]]]]]:
    """Run tests/integrations/e2e_server.py as a real process; stop it to read its logs."""
    import subprocess

    procs: list[subprocess.Popen[str]] = []

    def start(kind: str) -> tuple[str, Callable[[], list[dict[str, Any]]]]:
        script = Path(__file__).parent / "integrations" / "e2e_server.py"
        proc = subprocess.Popen(
            [sys.executable, str(script), kind],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("PORT "), first + (proc.stderr.read() if proc.stderr else "")
        url = f"http://127.0.0.1:{first.split()[1]}"

        def stop() -> list[dict[str, Any]]:
            proc.terminate()
            out, err = proc.communicate(timeout=20)
            # uvicorn re-raises the SIGTERM it handled once shut down gracefully.
            assert proc.returncode in (0, -signal.SIGTERM), err
            return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

        return url, stop

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture
def http_backend() -> Iterator[str]:
    """A local HTTP server: /ok 200, /missing 404, /boom 500, /big 500, /gzip 500, /close."""
    import gzip
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/ok":
                self._answer(200, b"fine")
            elif path == "/missing":
                self._answer(404, b"not here")
            elif path == "/boom":
                self._answer(
                    500, b'{"error":"database down"}', {"Content-Type": "application/json"}
                )
            elif path == "/big":
                self._answer(
                    500, "é".encode() * 5000, {"Content-Type": "text/plain; charset=utf-8"}
                )
            elif path == "/gzip":
                self._answer(
                    503, gzip.compress(b"compressed failure"), {"Content-Encoding": "gzip"}
                )
            elif path == "/close":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                self._answer(400, b"?")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(10)
