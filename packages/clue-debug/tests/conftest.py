"""Shared fixtures: the fake log control, real loopback servers, HTTP and pprof helpers."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import signal
import socket
import threading
import time
import traceback
import tracemalloc
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import structlog

from clue import debug
from clue.debug.testing import FakeLogControl, reset


@pytest.fixture(autouse=True)
def control() -> Iterator[FakeLogControl]:
    """A fake LogControl in force for every test; switch and override reset afterwards."""
    fake = FakeLogControl()
    debug.set_log_control(fake)
    yield fake
    reset()


@pytest.fixture(autouse=True)
def _no_tracemalloc_leak() -> Iterator[None]:
    was = tracemalloc.is_tracing()
    yield
    if tracemalloc.is_tracing() and not was:
        tracemalloc.stop()


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """structlog events captured during the test."""
    with structlog.testing.capture_logs() as captured:
        yield captured


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.005)


@pytest.fixture
def poll() -> Callable[..., None]:
    """``poll(predicate, timeout=10)``: wait for a condition with a deadline."""
    return wait_for


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float = 0.0

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    """One HTTP request over loopback; HTTP errors are replies too."""
    started = time.monotonic()
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Reply(resp.status, dict(resp.headers), resp.read(), time.monotonic() - started)
    except urllib.error.HTTPError as err:
        return Reply(err.code, dict(err.headers), err.read(), time.monotonic() - started)


@pytest.fixture
def http() -> Callable[..., Reply]:
    """``http(url, headers=None, method="GET") -> Reply``."""
    return fetch


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@pytest.fixture
def wsgi_server() -> Iterator[Callable[[Any], str]]:
    """``wsgi_server(app) -> base_url``: a threaded wsgiref server on 127.0.0.1."""
    servers: list[tuple[WSGIServer, threading.Thread]] = []

    def start(app: Any) -> str:
        server = make_server(
            "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_Quiet
        )
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def asgi_server() -> Iterator[Callable[[Any], str]]:
    """``asgi_server(app) -> base_url``: uvicorn on 127.0.0.1 in a thread."""
    import uvicorn

    running: list[tuple[Any, threading.Thread]] = []

    def start(app: Any) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="auto", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
        thread.daemon = True
        thread.start()
        wait_for(lambda: server.started)
        running.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def go() -> str:
    """The ``go`` binary; its absence fails (CI installs golang-go before the tests)."""
    path = shutil.which("go") or ("/usr/bin/go" if os.path.exists("/usr/bin/go") else None)
    if path is None:
        pytest.fail(
            "the `go` tool is required to check profiles with `go tool pprof` "
            "(install Debian's golang-go); this test does not skip"
        )
    return path


@pytest.fixture
def go_pprof_top(go, tmp_path) -> Callable[..., str]:
    """``go_pprof_top(source, *flags) -> stdout`` of ``go tool pprof -top``; fails on error."""
    import subprocess

    def run(source: str, *flags: str) -> str:
        env = {"HOME": str(tmp_path), "PPROF_TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
        done = subprocess.run(
            [go, "tool", "pprof", "-top", *flags, source],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


@dataclass
class Busy:
    """A named thread spinning in a recognisable function until stopped."""

    name: str
    stop: threading.Event = field(default_factory=threading.Event)
    spins: int = 0


def clue_busy_spin(state: Busy) -> None:
    """The function a profile must find."""
    x = 0
    while not state.stop.is_set():
        for i in range(2000):
            x += i * i
        state.spins += 1


@pytest.fixture
def busy_thread() -> Iterator[Busy]:
    """A CPU-busy thread named ``clue-busy`` running ``clue_busy_spin``."""
    state = Busy("clue-busy")
    thread = threading.Thread(target=clue_busy_spin, args=(state,), name=state.name, daemon=True)
    thread.start()
    wait_for(lambda: state.spins > 0)
    yield state
    state.stop.set()
    thread.join(5)


# ---- a tiny protobuf decoder, independent of the encoder under test -------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def decode_message(buf: bytes) -> dict[int, list[int | bytes]]:
    """Field number -> values (ints for varints, bytes for length-delimited)."""
    fields: dict[int, list[int | bytes]] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            fields.setdefault(number, []).append(value)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            fields.setdefault(number, []).append(buf[pos : pos + length])
            pos += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return fields


def _packed_ints(values: list[int | bytes]) -> list[int]:
    out: list[int] = []
    for v in values:
        if isinstance(v, int):
            out.append(v)
        else:
            pos = 0
            while pos < len(v):
                n, pos = _varint(v, pos)
                out.append(n)
    return out


@dataclass
class Decoded:
    strings: list[str]
    sample_types: list[tuple[str, str]]
    samples: list[tuple[list[tuple[str, str, int]], list[int], dict[str, str]]]
    comments: list[str]
    period: int


def decode_profile(data: bytes) -> Decoded:
    """Gunzip and decode a pprof Profile into names, stacks (leaf first) and values."""
    top = decode_message(gzip.decompress(data))
    strings = [bytes(s).decode("utf-8") for s in top.get(6, [])]
    assert strings, "empty string table"
    assert strings[0] == ""
    functions = {}
    for raw in top.get(5, []):
        f = decode_message(raw)
        functions[f[1][0]] = (strings[f.get(2, [0])[0]], strings[f.get(4, [0])[0]])
    locations = {}
    for raw in top.get(4, []):
        loc = decode_message(raw)
        line = decode_message(loc[4][0])
        name, filename = functions[line[1][0]]
        locations[loc[1][0]] = (name, filename, line.get(2, [0])[0])
    sample_types = []
    for raw in top.get(1, []):
        vt = decode_message(raw)
        sample_types.append((strings[vt.get(1, [0])[0]], strings[vt.get(2, [0])[0]]))
    samples = []
    for raw in top.get(2, []):
        s = decode_message(raw)
        stack = [locations[i] for i in _packed_ints(s.get(1, []))]
        values = _packed_ints(s.get(2, []))
        labels = {}
        for lraw in s.get(3, []):
            lab = decode_message(lraw)
            labels[strings[lab[1][0]]] = strings[lab.get(2, [0])[0]]
        samples.append((stack, values, labels))
    comments = [strings[i] for i in top.get(13, [])]
    period = top.get(12, [0])[0]
    return Decoded(strings, sample_types, samples, comments, int(period))


@pytest.fixture(scope="session")
def varint() -> Callable[[bytes, int], tuple[int, int]]:
    """``varint(buf, pos) -> (value, next_pos)``: the decoder's varint reader."""
    return _varint


@pytest.fixture(scope="session")
def pprof() -> Callable[[bytes], Decoded]:
    """``pprof(data) -> Decoded``: the tiny independent decoder."""
    return decode_profile


@pytest.fixture
def event_loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop running in a background thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="clue-test-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


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
