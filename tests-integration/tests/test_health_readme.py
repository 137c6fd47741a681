"""clue-health's README examples (a guide of the documentation site) run, in order, in
one namespace as a reader would paste them: the dependency they ping is a local server,
servers are driven by one request instead of serving forever, SIGTERM hooks are undone."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import signal
import threading
import wsgiref.simple_server
import wsgiref.util
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "packages" / "clue-health" / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)


class _Livez(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/livez" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def users() -> Iterator[str]:
    """The ``users`` dependency the examples ping, on a free local port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Livez)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


class _OneRequest:
    """``make_server(...)``'s stand-in: ``serve_forever()`` answers one GET /healthz."""

    answers: ClassVar[list[str]] = []

    def __init__(self, host: str, port: int, app: Any) -> None:
        self.app = app

    def serve_forever(self) -> None:
        environ: dict[str, Any] = {"PATH_INFO": "/healthz"}
        wsgiref.util.setup_testing_defaults(environ)
        status: list[str] = []
        body = b"".join(self.app(environ, lambda s, h, e=None: status.append(s)))
        self.answers.append(f"{status[0]} {body.decode()}")


class _Redis:
    async def ping(self) -> bool:
        return True


def _run(code: str, namespace: dict[str, Any]) -> None:
    compiled = compile(code, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)


def test_health_readme_examples_run(users: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ```python example of clue-health's README runs and does what it says."""
    assert len(BLOCKS) == 6
    monkeypatch.setattr(wsgiref.simple_server, "make_server", _OneRequest)
    previous = signal.getsignal(signal.SIGTERM)
    namespace: dict[str, Any] = {"__name__": "readme_example", "client": _Redis()}
    try:
        for block in BLOCKS:
            code = block.replace("users.internal:8080", users)
            code = code.replace('"[::]:50051"', '"127.0.0.1:0"')
            code = code.replace("server.wait_for_termination()", "server.stop(None).wait()")
            _run(code, namespace)
    finally:
        signal.signal(signal.SIGTERM, previous)
    # The quick start answered 200 with both dependencies OK.
    assert len(_OneRequest.answers) == 1
    assert _OneRequest.answers[0].startswith("200 ")
    assert '"postgresql":"OK"' in _OneRequest.answers[0].replace(" ", "")
    # The check block: healthy, with the report the comment shows.
    assert namespace["healthy"] is True
    assert dict(namespace["report"].status) == {"postgresql": "OK", "redis": "OK"}
    # The FastAPI app serves the probes and the mounted report.
    transport = httpx.ASGITransport(app=namespace["app"])

    async def get(path: str) -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return (await http.get(path, follow_redirects=True)).status_code

    assert asyncio.run(get("/livez")) == 200
    assert asyncio.run(get("/status")) == 200
