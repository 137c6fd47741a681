"""The server matrix: clue under the servers services run on, as real subprocesses.

Each server runs ``clue_example.served`` (set up in one call per package at import, no
server hook) on 127.0.0.1, exporting to its own ``clue.otel.testing`` receiver with
batch delays long enough that nothing leaves before shutdown. Under a bounded load
(``REQUESTS`` requests, ``FAILING`` of them failing) and then SIGTERM to the server:

- every failed request's full log context is written exactly once, and nothing of a
  successful request is written;
- nothing was exported before SIGTERM, and every span, metric point and log record
  queued is exported before the process exits, none twice (the span queued at import
  by a ``--preload`` parent is exported once, by the parent);
- the server exits by itself within its deadline, with the status it would have had
  without clue (uvicorn alone dies of the SIGTERM it re-raises).

``MATRIX`` prints one line per server with its counts (``-s`` or the report section).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clue.otel.testing import OTLPReceiver
from clue_example.harness import wait_for
from clue_example.launcher import free_port, http_get

REQUESTS = 40
FAILING = frozenset(i for i in range(REQUESTS) if i % 20 == 7)  # 2 of 40: 5 %
SHUTDOWN_TIMEOUT = 5.0
# A server must be gone this long after SIGTERM (its graceful shutdown plus ours).
EXIT_DEADLINE = 30.0


@dataclass(frozen=True)
class Server:
    """One cell of the matrix: how to start it and what its processes do."""

    name: str
    argv: tuple[str, ...]  # after ``python -m``; ``{port}`` is replaced
    workers: int  # processes serving requests
    importers: int  # processes importing the app (one per worker, or the preloading parent)
    exit_status: int  # of the top process after SIGTERM


WSGI, ASGI = "clue_example.served:wsgi", "clue_example.served:asgi"
_GUNICORN = ("gunicorn", "-b", "127.0.0.1:{port}", "-w", "2", "--no-control-socket")
_UVICORN = ("uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning")
_UVICORN_WORKER = (*_GUNICORN, "-k", "uvicorn_worker.UvicornWorker")
_TERM = -signal.SIGTERM

SERVERS = [
    Server("gunicorn sync", (*_GUNICORN, WSGI), 2, 2, 0),
    Server("gunicorn gthread", (*_GUNICORN, "-k", "gthread", "--threads", "4", WSGI), 2, 2, 0),
    Server("gunicorn sync --preload", (*_GUNICORN, "--preload", WSGI), 2, 1, 0),
    Server("gunicorn uvicorn worker", (*_UVICORN_WORKER, ASGI), 2, 2, 0),
    Server("gunicorn uvicorn worker --preload", (*_UVICORN_WORKER, "--preload", ASGI), 2, 1, 0),
    Server("uvicorn", (*_UVICORN, ASGI), 1, 1, _TERM),
    Server("uvicorn --workers 2", (*_UVICORN, "--workers", "2", ASGI), 2, 2, 0),
    Server("hypercorn", ("hypercorn", "-b", "127.0.0.1:{port}", ASGI), 1, 1, 0),
]

MATRIX: list[str] = []


@dataclass
class Running:
    """A started server and where its output goes."""

    popen: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line]

    def stderr_tail(self) -> str:
        return self.stderr.read_text()[-3000:]


@pytest.fixture(scope="module", autouse=True)
def matrix_report() -> Iterator[None]:
    """Print the matrix once every cell has run."""
    yield
    print("\nserver matrix:")
    for line in MATRIX:
        print("  " + line)


def start(server: Server, rx: OTLPReceiver, tmp: Path, **env: str) -> Running:
    """Start ``server`` with its output in ``tmp``; wait until every worker answers."""
    port = free_port()
    argv = [sys.executable, "-m", *(a.replace("{port}", str(port)) for a in server.argv)]
    environ = {
        **os.environ,
        "CLUE_SERVED_OTLP": rx.grpc_endpoint,
        "CLUE_SERVED_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        # Nothing leaves a process before its shutdown: what SIGTERM finds is queued.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "OTEL_BLRP_SCHEDULE_DELAY": "600000",
        **env,
    }
    stdout, stderr = tmp / "stdout.jsonl", tmp / "stderr.log"
    # O_APPEND: the workers' writes of one flush land whole, never interleaved.
    with stdout.open("ab") as out, stderr.open("ab") as err:
        popen = subprocess.Popen(argv, env=environ, stdout=out, stderr=err, cwd=tmp)
    running = Running(popen, port, stdout, stderr)
    pids: set[int] = set()

    def all_workers() -> bool:
        if popen.poll() is not None:
            raise AssertionError(f"{server.name} exited: {running.stderr_tail()}")
        try:
            pids.add(http_get(running.url("/pid"), timeout=2.0).json()["pid"])
        except OSError:
            return False
        return len(pids) >= server.workers

    try:
        wait_for(all_workers, timeout=60.0, what=f"{server.workers} workers of {server.name}")
    except BaseException:
        popen.kill()
        popen.wait()
        raise
    return running


def load(running: Running) -> dict[int, int]:
    """Send the bounded load; return each request's status."""
    statuses = {}
    for i in range(REQUESTS):
        path = "/fail" if i in FAILING else "/ok"
        statuses[i] = http_get(running.url(f"{path}?i={i}")).status
    return statuses


def terminate(running: Running, server: Server) -> int:
    """SIGTERM the server and wait (bounded) for it to exit; return its status."""
    running.popen.send_signal(signal.SIGTERM)
    try:
        return running.popen.wait(timeout=EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        running.popen.kill()
        running.popen.wait()
        pytest.fail(f"{server.name} still running {EXIT_DEADLINE} s after SIGTERM")


@pytest.mark.parametrize("server", SERVERS, ids=lambda s: s.name)
def test_server_matrix(server: Server, tmp_path: Path) -> None:
    """Failures write their context once, successes nothing; SIGTERM exports all, once."""
    with OTLPReceiver() as rx:
        running = start(server, rx, tmp_path)
        statuses = load(running)
        exported_early = len(rx.spans()) + len(rx.logs()) + len(rx.metrics())
        status = terminate(running, server)
        # Read at once: what was not exported before the exit never will be.
        spans, records, metrics = rx.spans(), rx.logs(), rx.metrics("served.requests")
    diagnostics = running.stderr_tail()

    assert statuses == {i: 500 if i in FAILING else 200 for i in range(REQUESTS)}
    contexts = _contexts_written(running.entries())
    assert contexts == dict.fromkeys(FAILING, 1), diagnostics
    assert exported_early == 0
    assert status == server.exit_status, diagnostics

    request_spans = Counter(s.attributes["i"] for s in spans if s.name == "served.request")
    assert request_spans == Counter(range(REQUESTS)), diagnostics
    assert sum(s.name == "served.boot" for s in spans) == server.importers
    failed_spans = {s.attributes["i"] for s in spans if s.status_code == "ERROR"}
    assert failed_spans == FAILING
    log_records = Counter(r.attributes.get("i") for r in records)
    assert log_records == Counter(range(REQUESTS)), diagnostics
    counted = sum(p.value or 0 for m in metrics for p in m.points)
    assert counted == REQUESTS, diagnostics

    MATRIX.append(
        f"{server.name:36} requests={REQUESTS} failures={len(FAILING)} "
        f"contexts_written={sum(contexts.values())} spans_at_shutdown={len(spans)} "
        f"log_records_at_shutdown={len(records)} metric_sum={counted} exit={status}"
    )


@pytest.mark.parametrize("server", SERVERS, ids=lambda s: s.name)
def test_ctrl_c_exports_what_is_queued(server: Server, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to every process of the server) exports every span, record and point."""
    with OTLPReceiver() as rx:
        running = start(server, rx, tmp_path)
        load(running)
        # A terminal's Ctrl-C signals the whole foreground process group at once.
        for pid in [running.popen.pid, *_descendants(running.popen.pid)]:
            os.kill(pid, signal.SIGINT)
        try:
            status = running.popen.wait(timeout=EXIT_DEADLINE)
        except subprocess.TimeoutExpired:
            running.popen.kill()
            running.popen.wait()
            pytest.fail(f"{server.name} still running {EXIT_DEADLINE} s after Ctrl-C")
        spans, records, metrics = rx.spans(), rx.logs(), rx.metrics("served.requests")
    diagnostics = running.stderr_tail()
    request_spans = Counter(s.attributes["i"] for s in spans if s.name == "served.request")
    assert request_spans == Counter(range(REQUESTS)), diagnostics
    assert Counter(r.attributes.get("i") for r in records) == Counter(range(REQUESTS))
    assert sum(p.value or 0 for m in metrics for p in m.points) == REQUESTS, diagnostics
    assert status == 0, diagnostics


PRELOADED = [s for s in SERVERS if "--preload" in s.argv]


@pytest.mark.parametrize("server", PRELOADED, ids=lambda s: s.name)
def test_forked_workers_are_their_own(server: Server, tmp_path: Path) -> None:
    """Workers forked from a preloaded parent trace on their own: fresh processors, sampler."""
    with OTLPReceiver() as rx:
        running = start(server, rx, tmp_path)
        states = {}

        def both_workers() -> bool:
            state = http_get(running.url("/pid")).json()
            states[state["pid"]] = state
            return len(states) >= server.workers

        wait_for(both_workers, timeout=30.0, what="both workers")
        load(running)
        terminate(running, server)
        spans = rx.spans()
    assert running.popen.pid not in states
    assert all(state["probability"] == 1.0 for state in states.values())
    boot = [s for s in spans if s.name == "served.boot"]
    # The span the parent queued before forking is exported by the parent alone.
    assert [s.attributes["pid"] for s in boot] == [running.popen.pid]
    workers = {s.attributes["pid"] for s in spans if s.name == "served.request"}
    assert workers <= set(states)


def test_shutdown_is_bounded_with_the_collector_down(tmp_path: Path) -> None:
    """With every export refused, uvicorn still exits at SIGTERM, as the signal says."""
    server = next(s for s in SERVERS if s.name == "uvicorn")
    with OTLPReceiver() as rx:
        running = start(server, rx, tmp_path, CLUE_SERVED_SHUTDOWN_TIMEOUT="1")
        load(running)
        rx.fail()  # every export from now on: UNAVAILABLE, retried by the exporter
        status = terminate(running, server)
        refused = [r for r in rx.requests() if not r.accepted]
        accepted = [r for r in rx.requests() if r.accepted]
    assert status == -signal.SIGTERM
    assert refused, "the shutdown export was never attempted"
    assert not accepted
    MATRIX.append(
        f"{'uvicorn, collector refusing':36} requests={REQUESTS} exports_refused={len(refused)} "
        f"exit={status}"
    )


def _contexts_written(entries: list[dict[str, Any]]) -> dict[int, int]:
    # For each request index found in the output: how many times its context was written.
    # A context is the lines of one request id; written once means its three steps
    # appear once each, after its start line, with an error line.
    by_request: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        request_id = entry.get("request_id")
        if request_id is not None:
            by_request.setdefault(str(request_id), []).append(entry)
    written: Counter[int] = Counter()
    for lines in by_request.values():
        indices = {e["i"] for e in lines if "i" in e}
        assert len(indices) == 1, lines
        (i,) = indices
        steps = [e["step"] for e in lines if e.get("msg") == "step"]
        assert steps == ["parse", "load", "render"], lines
        assert lines[0].get("msg") == "start", lines
        assert any(e.get("level") == "error" for e in lines), lines
        written[i] += 1
    stray = [e for e in entries if "i" in e and "request_id" not in e]
    assert not stray, stray
    return dict(written)


def _descendants(pid: int) -> list[int]:
    # Every process below ``pid`` (workers, and a supervisor's workers).
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(c) for c in f.read().split()]
    return [d for c in children for d in (c, *_descendants(c))]
