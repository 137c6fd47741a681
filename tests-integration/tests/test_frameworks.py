"""clue-log's framework recipes, run as the README writes them, under real servers.

Each recipe (FastAPI under uvicorn, Flask under gunicorn, Django under gunicorn and
under uvicorn) is copied out of clue-log's README into a temporary directory and served
by a real server subprocess on 127.0.0.1: a request that fails the framework's way writes
its full context once, a successful one writes nothing, the response's X-Request-Id is
the request_id of its lines, and the health and debug endpoints answer with their status
codes.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "packages" / "clue-log" / "README.md"
RECIPES = dict(
    re.findall(r"^```python file=(\S+)\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)
)

DJANGO_BASE_SETTINGS = """\
SECRET_KEY = "not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, object] = {}
"""

DJANGO_URLS = """\
import asyncio

from django.http import JsonResponse
from django.urls import path

from clue import log


def order(request, oid):
    log.info("loading order", oid=oid)
    if oid == "crash":
        raise RuntimeError("database timeout")
    if oid == "down":
        return JsonResponse({"error": "inventory is down"}, status=503)
    return JsonResponse({"oid": oid})


async def wait(request):
    log.info("waiting for stock")  # buffered
    log.print("waiting")  # written at once: the request has started
    try:
        await asyncio.sleep(60)  # the client goes away before this ends
    except asyncio.CancelledError:
        log.print("cancelled")  # Django cancels the view when its client has gone
        raise
    return JsonResponse({})


urlpatterns = [path("orders/<str:oid>", order), path("wait", wait)]
"""

# What each framework logs when it turns the exception into a 500 (the line that must
# carry the traceback).
FRAMEWORK_ERROR = {
    "fastapi": "unhandled exception",
    "flask": "Exception on /orders/crash [GET]",
    "django": "Internal Server Error: /orders/crash",
}
# Django also logs every 5xx response it sends at ERROR on django.request.
FRAMEWORK_5XX = {"django": ["Service Unavailable: /orders/down"]}


@dataclass
class Server:
    """A recipe under a real server: its URLs and what it wrote on stdout."""

    name: str
    url: str
    admin: str
    out: Path
    upstream: Upstream

    def lines(self) -> list[dict[str, Any]]:
        text = self.out.read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def request_lines(self, rid: str) -> list[dict[str, Any]]:
        return [d for d in self.lines() if d.get("request_id") == rid]

    def wait_for(
        self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            if pred(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.01)


class Upstream:
    """A dependency for the health check whose /livez answers ``status``."""

    def __init__(self) -> None:
        self.status = 200
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(upstream.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_recipe(root: Path, variant: str) -> None:
    if variant == "fastapi-uvicorn":
        (root / "service.py").write_text(RECIPES["fastapi_service.py"])
    elif variant == "flask-gunicorn":
        (root / "service.py").write_text(RECIPES["flask_service.py"])
    else:
        site = root / "mysite"
        site.mkdir()
        (site / "__init__.py").write_text("")
        (site / "settings.py").write_text(DJANGO_BASE_SETTINGS + RECIPES["mysite/settings.py"])
        (site / "urls.py").write_text(DJANGO_URLS)
        (site / "wsgi.py").write_text(RECIPES["mysite/wsgi.py"])
        (site / "asgi.py").write_text(RECIPES["mysite/asgi.py"])


def _command(variant: str, port: int) -> list[str]:
    bind = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    gunicorn = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1"]
    return {
        "fastapi-uvicorn": [sys.executable, "-m", "uvicorn", "service:app", *bind],
        "flask-gunicorn": [*gunicorn, "service:app"],
        "django-gunicorn": [*gunicorn, "mysite.wsgi"],
        "django-uvicorn": [sys.executable, "-m", "uvicorn", "mysite.asgi:application", *bind],
    }[variant]


VARIANTS = ["fastapi-uvicorn", "flask-gunicorn", "django-gunicorn", "django-uvicorn"]


@pytest.fixture(scope="module", params=VARIANTS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with _serve(request.param, tmp_path_factory.mktemp(request.param)) as srv:
        yield srv


@contextlib.contextmanager
def _serve(variant: str, root: Path) -> Iterator[Server]:
    """Serve the ``variant`` recipe written in ``root`` under its real server."""
    _write_recipe(root, variant)
    upstream = Upstream()
    port, admin_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "USERS_ADDR": upstream.addr,
        "ADMIN_PORT": str(admin_port),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(root),
    }
    out = root / "stdout.log"
    with out.open("wb") as stdout, (root / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(
            _command(variant, port), cwd=root, env=env, stdout=stdout, stderr=stderr
        )
    srv = Server(
        variant.split("-", maxsplit=1)[0],
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{admin_port}",
        out,
        upstream,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{variant} exited: {(root / 'stderr.log').read_text()}")
            try:
                if httpx.get(srv.url + "/livez").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{variant} did not start: {(root / 'stderr.log').read_text()}")
            time.sleep(0.05)
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        upstream.close()


def _get(url: str, rid: str) -> httpx.Response:
    return httpx.get(url, headers={"X-Request-Id": rid}, timeout=10)


def test_crash_writes_full_context_once(server: Server) -> None:
    """An exception the framework turns into a 500 writes the request's full context once
    (the framework's error with its traceback included), and the 500 carries the id."""
    rid = f"crash-{server.name}-{_free_port()}"
    r = _get(server.url + "/orders/crash", rid)
    assert r.status_code == 500
    assert r.headers["x-request-id"] == rid
    server.wait_for(lambda ls: any(d.get("request_id") == rid and d["msg"] == "end" for d in ls))
    lines = server.request_lines(rid)
    msgs = [d["msg"] for d in lines]
    error = FRAMEWORK_ERROR[server.name]
    assert msgs == ["start", "loading order", error, "end"], msgs
    assert lines[1]["oid"] == "crash"
    assert lines[2]["level"] == "error"
    assert "RuntimeError: database timeout" in lines[2]["exception"]
    assert (lines[3]["level"], lines[3]["http.status"]) == ("error", 500)


def test_error_status_writes_context(server: Server) -> None:
    """A 503 answered without any exception escaping is a failure: its context is written."""
    rid = f"down-{server.name}-{_free_port()}"
    r = _get(server.url + "/orders/down", rid)
    assert r.status_code == 503
    assert r.headers["x-request-id"] == rid
    server.wait_for(lambda ls: any(d.get("request_id") == rid and d["msg"] == "end" for d in ls))
    lines = server.request_lines(rid)
    logged = FRAMEWORK_5XX.get(server.name, [])
    assert [d["msg"] for d in lines] == ["start", "loading order", *logged, "end"]
    assert (lines[-1]["level"], lines[-1]["http.status"]) == ("error", 503)


def test_success_writes_nothing(server: Server) -> None:
    """Successful requests write nothing; a failure sent after them is the proof that the
    server has written what it would."""
    ok = [f"ok-{server.name}-{i}-{_free_port()}" for i in range(5)]
    for rid in ok:
        r = _get(server.url + "/orders/7", rid)
        assert r.status_code == 200
        assert r.headers["x-request-id"] == rid
    last = f"after-{server.name}-{_free_port()}"
    assert _get(server.url + "/orders/down", last).status_code == 503
    lines = server.wait_for(
        lambda ls: any(d.get("request_id") == last and d["msg"] == "end" for d in ls)
    )
    assert [d for d in lines if d.get("request_id") in ok] == []


def test_generated_request_id_matches_lines(server: Server) -> None:
    """Without an incoming id, the generated one in the response is the one in the logs."""
    r = httpx.get(server.url + "/orders/crash", timeout=10)
    assert r.status_code == 500
    rid = r.headers["x-request-id"]
    server.wait_for(lambda ls: any(d.get("request_id") == rid and d["msg"] == "end" for d in ls))
    assert next(d["msg"] for d in server.request_lines(rid)) == "start"


def _poll_status(url: str, want: int) -> int:
    deadline = time.monotonic() + 10
    while True:
        status = httpx.get(url, timeout=10).status_code
        if status == want or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_health_endpoints(server: Server) -> None:
    """/livez, /readyz and /healthz answer 200 directly (no redirect) while the dependency
    is up; /readyz and /healthz answer 503 when it is down, /livez stays 200."""
    before = len(server.lines())
    for path in ("/livez", "/readyz", "/healthz"):
        r = httpx.get(server.url + path, timeout=10)
        assert r.status_code == 200, path
    assert httpx.get(server.url + "/healthz").json()["status"] == {"users": "OK"}
    server.upstream.status = 503
    try:
        assert _poll_status(server.url + "/readyz", 503) == 503
        assert httpx.get(server.url + "/healthz").status_code == 503
        assert httpx.get(server.url + "/healthz").json()["status"] == {"users": "NOT OK"}
        assert httpx.get(server.url + "/livez").status_code == 200
    finally:
        server.upstream.status = 200
    assert _poll_status(server.url + "/readyz", 200) == 200
    # Probes answer in front of the framework: no log context, no line.
    assert [d for d in server.lines()[before:] if "http.url" in d] == []


def test_debug_switch(server: Server) -> None:
    """The admin port serves the switch (200, 400 on a bad value) and the profiles index;
    while the switch is on, a successful request writes its lines."""
    assert httpx.get(server.admin + "/debug").json() == {"debug-logs": "off"}
    assert httpx.get(server.admin + "/debug?debug-logs=maybe").status_code == 400
    assert httpx.get(server.admin + "/debug/pprof/").status_code == 200
    assert httpx.get(server.admin + "/debug?debug-logs=on").json() == {"debug-logs": "on"}
    try:
        rid = f"debug-{server.name}-{_free_port()}"
        assert _get(server.url + "/orders/9", rid).status_code == 200
        server.wait_for(
            lambda ls: any(d.get("request_id") == rid and d["msg"] == "end" for d in ls)
        )
        msgs = [d["msg"] for d in server.request_lines(rid)]
        assert msgs == ["start", "loading order", "end"]
    finally:
        off = httpx.get(server.admin + "/debug?debug-logs=off")
    assert off.json() == {"debug-logs": "off"}


def test_django_asgi_client_gone_before_the_response(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Under uvicorn, Django's ASGI handler returns without answering when its client goes
    away mid-view: the request ends without an error, nothing buffered is written."""
    with _serve("django-uvicorn", tmp_path_factory.mktemp("django-gone")) as server:
        rid = f"gone-{_free_port()}"
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"GET /wait HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: {rid}\r\n\r\n".encode()
            )
            server.wait_for(lambda ls: any(d.get("request_id") == rid for d in ls))
        server.wait_for(
            lambda ls: any(d.get("request_id") == rid and d["msg"] == "cancelled" for d in ls)
        )
        # A failing request after it proves the server has written what it would.
        last = f"after-gone-{_free_port()}"
        assert _get(server.url + "/orders/down", last).status_code == 503
        lines = server.wait_for(
            lambda ls: any(d.get("request_id") == last and d["msg"] == "end" for d in ls)
        )
        mine = [(d["msg"], d["level"]) for d in lines if d.get("request_id") == rid]
        assert mine == [("waiting", "info"), ("cancelled", "info")]
