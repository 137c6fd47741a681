"""The root README's examples, run as written: the quickstart as a script, the wiring
example under a real uvicorn with its probes answering 200/503 themselves (no redirect)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_quickstart_runs() -> None:
    """The quickstart writes the three lines of its failing context."""
    assert len(BLOCKS) == 2
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS[0]], capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [d["msg"] for d in lines] == ["loading user", "charging card", "payment failed"]
    assert lines[2]["err"] == "card declined"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("wiring")
    (root / "service.py").write_text(BLOCKS[1])
    port = _free_port()
    env = {
        **os.environ,
        # Nothing listens there: telemetry must change nothing for requests.
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_free_port()}",
        "PYTHONPATH": str(root),
    }
    cmd = [sys.executable, "-m", "uvicorn", "service:app", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--log-level", "warning"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "the README's service exited"
            try:
                httpx.get(url + "/livez")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the README's service did not start"
                time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_wiring_probes_answer_directly(service: str) -> None:
    """/livez answers 200; /readyz and /healthz answer 503 (the pinged dependency does
    not exist here) with a body, never a 3xx a probe would count as success."""
    live = httpx.get(service + "/livez")
    assert (live.status_code, live.text) == (200, "ok")
    ready = httpx.get(service + "/readyz", timeout=10)
    assert ready.status_code == 503
    health = httpx.get(service + "/healthz", timeout=10)
    assert health.status_code == 503
    assert health.json()["status"] == {"users": "NOT OK"}
    for path in ("/healthz/", "/livez/"):
        assert not 300 <= httpx.get(service + path, timeout=10).status_code < 400


def test_wiring_requests_get_an_id(service: str) -> None:
    """Other paths reach the app through clue's middleware: 404 with an X-Request-Id."""
    r = httpx.get(service + "/orders/1", headers={"X-Request-Id": "req-root-1"})
    assert r.status_code == 404
    assert r.headers["x-request-id"] == "req-root-1"
