"""clue.log.celery with a real worker and a real Redis broker, as clue-log's README writes
the tasks module: a task's context is written when it fails or is retried and discarded
when it succeeds, under the request id and trace id of the code that enqueued it."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from clue import log
from clue.log.testing import reset

README = Path(__file__).resolve().parents[2] / "packages" / "clue-log" / "README.md"
RECIPES = dict(
    re.findall(r"^```python file=(\S+)\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)
)


@dataclass
class Worker:
    """The tasks module (enqueuing side, in this process) and the worker's stdout."""

    tasks: Any
    out: Path

    def lines(self) -> list[dict[str, Any]]:
        text = self.out.read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 20
        while True:
            lines = self.lines()
            if pred(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server is not None, "redis-server is required (Debian: apt-get install redis-server)"
    port = _free_port()
    cmd = [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(cmd, cwd=tmp_path_factory.mktemp("redis"), stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def worker(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    root = tmp_path_factory.mktemp("celery")
    (root / "tasks.py").write_text(RECIPES["tasks.py"])
    env = {**os.environ, "BROKER_URL": redis_url, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(root)}
    out = root / "stdout.log"
    cmd = [
        sys.executable, "-m", "celery", "-A", "tasks", "worker", "--concurrency=1",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING",
    ]  # fmt: skip
    with out.open("wb") as stdout, (root / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=stdout, stderr=stderr)
    os.environ["BROKER_URL"] = redis_url
    sys.path.insert(0, str(root))
    try:
        # The README's module: the enqueuing side runs install() too.
        yield Worker(importlib.import_module("tasks"), out)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("tasks", None)
        del os.environ["BROKER_URL"]
        import clue.log.celery

        clue.log.celery.uninstall()
        reset()
        _stop(proc)


def _enqueue(worker: Worker, amount: int, rid: str, *, sampled: bool = False) -> str:
    """Enqueue ``charge(amount)`` from inside a request: a log context with ``rid`` and a
    span, unsampled by default (so the task buffers); return the request's trace id."""
    tracer = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF).get_tracer("front")
    with log.context(), tracer.start_as_current_span("GET /checkout") as span:
        log.bind(request_id=rid)
        worker.tasks.charge.delay(amount)
        return f"{span.get_span_context().trace_id:032x}"


def _task_lines(worker: Worker, rid: str, ends: int) -> list[dict[str, Any]]:
    def done(lines: list[dict[str, Any]]) -> bool:
        count = sum(1 for d in lines if d.get("request_id") == rid and d["msg"] == "end")
        return count >= ends

    return [d for d in worker.wait_for(done) if d.get("request_id") == rid]


def test_failed_task_writes_its_context(worker: Worker) -> None:
    """A failing task writes its buffered lines and the exception with its traceback, once,
    under the enqueuing request's request id and trace id."""
    trace_id = _enqueue(worker, -5, "req-fail")
    lines = _task_lines(worker, "req-fail", 1)
    assert [d["msg"] for d in lines] == ["start", "charging", "task failed", "end"]
    assert lines[1]["amount"] == -5
    assert "cannot charge -5" in lines[2]["err"]
    assert "ValueError" in lines[2]["exception"]
    assert (lines[3]["level"], lines[3]["celery.state"]) == ("error", "FAILURE")
    assert {d["trace_id"] for d in lines} == {trace_id}
    assert {d["celery.task"] for d in lines} == {"tasks.charge"}


def test_retried_task_writes_the_retry(worker: Worker) -> None:
    """A retried task writes its context with the retry's exception; the retry runs under
    the same request id and trace, and its success writes nothing."""
    trace_id = _enqueue(worker, 0, "req-retry")
    lines = _task_lines(worker, "req-retry", 1)
    assert [d["msg"] for d in lines] == ["start", "charging", "task retried", "end"]
    assert "payment gateway timed out" in lines[2]["err"]
    assert lines[3]["celery.state"] == "RETRY"
    assert {d["trace_id"] for d in lines} == {trace_id}
    # The retry succeeds and writes nothing; a later failure proves the worker went on.
    _enqueue(worker, -1, "req-after-retry")
    _task_lines(worker, "req-after-retry", 1)
    assert [d["msg"] for d in worker.lines() if d.get("request_id") == "req-retry"] == [
        "start",
        "charging",
        "task retried",
        "end",
    ]


def test_successful_task_writes_nothing(worker: Worker) -> None:
    """Successful tasks write nothing at all."""
    for i in range(5):
        _enqueue(worker, 10 + i, f"req-ok-{i}")
    _enqueue(worker, -2, "req-last")  # the worker runs tasks in order: this one is last
    _task_lines(worker, "req-last", 1)
    ok = {f"req-ok-{i}" for i in range(5)}
    assert [d for d in worker.lines() if d.get("request_id") in ok] == []


def test_task_of_a_traced_request_writes_its_lines(worker: Worker) -> None:
    """A task enqueued by a sampled request is traced like it: it writes its lines, in the
    request's trace, even when it succeeds."""
    trace_id = _enqueue(worker, 3, "req-traced", sampled=True)
    lines = _task_lines(worker, "req-traced", 1)
    assert [d["msg"] for d in lines] == ["start", "charging", "end"]
    assert lines[2]["celery.state"] == "SUCCESS"
    assert {d["trace_id"] for d in lines} == {trace_id}
