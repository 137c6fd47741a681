"""End to end: health across processes, readiness on SIGTERM, debug switch, profiling."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from clue.otel.testing import OTLPReceiver
from clue_example.analysis import FAILURE_PATH
from clue_example.harness import new_traceparent, wait_for
from clue_example.launcher import HttpReply, System, http_get

GO = shutil.which("go") or "/usr/bin/go"


def _get(url: str) -> HttpReply | None:
    try:
        return http_get(url, timeout=5.0)
    except OSError:
        return None


def _state(system: System, name: str, dep: str) -> tuple[int, str, str] | None:
    """A service's readiness status, its verbose /readyz line, and /healthz's word for dep."""
    ready = _get(system.admin_url(name, "/readyz?verbose"))
    report = _get(system.admin_url(name, "/healthz"))
    if ready is None or report is None:
        return None
    line = next((x for x in ready.body.decode().splitlines() if f"]{dep} " in x), "")
    return ready.status, line, report.json()["status"].get(dep, "")


def _wait_state(system: System, name: str, dep: str, up: bool) -> None:
    expected = (200, f"[+]{dep} ok", "OK") if up else (503, f"[-]{dep} failed", "NOT OK")

    def probe() -> bool:
        state = _state(system, name, dep)
        return state is not None and (state[0], state[1][: len(expected[1])], state[2]) == expected

    wait_for(probe, what=f"{name} to report {dep} {'up' if up else 'down'}")


def test_health_reports_a_dependency_going_down_and_back(healthy: System) -> None:
    """Readiness turns 503 with the dependency NOT OK while it is down, and 200 after."""
    healthy.set_faults(down=True)
    _wait_state(healthy, "locator", "upstream", up=False)
    _wait_state(healthy, "forecaster", "upstream", up=False)
    report = _get(healthy.admin_url("locator", "/healthz"))
    assert report is not None
    assert report.status == 503
    assert isinstance(report.json()["uptime"], int)
    assert _get(healthy.admin_url("locator", "/livez")).status == 200  # type: ignore[union-attr]
    healthy.set_faults(down=False)
    _wait_state(healthy, "locator", "upstream", up=True)
    _wait_state(healthy, "forecaster", "upstream", up=True)

    # A whole service process crashing and coming back on the same port.
    healthy.services["locator"].kill()
    _wait_state(healthy, "forecaster", "locator", up=False)
    healthy.restart("locator")
    _wait_state(healthy, "forecaster", "locator", up=True)
    assert http_get(healthy.front_url + "/forecast/198.51.100.30").status == 200


def test_health_answers_xml_when_asked(healthy: System) -> None:
    """The front's public health report negotiates XML."""
    reply = http_get(healthy.front_url + "/healthz", headers={"Accept": "application/xml"})
    assert reply.status == 200
    assert reply.body.startswith(b"<?xml")
    assert b'<dependency name="forecaster">OK</dependency>' in reply.body


def test_readiness_flips_on_sigterm(healthy: System) -> None:
    """On SIGTERM the front turns not ready at once, keeps serving, then exits cleanly."""
    front = healthy.services["front"]
    assert http_get(healthy.front_url + "/readyz").status == 200
    front.send_signal(signal.SIGTERM)
    try:
        draining = wait_for(
            lambda: r if (r := http_get(healthy.front_url + "/readyz")).status == 503 else None,
            what="the front's readiness to flip",
        )
        assert "[-]shutdown" in draining.body.decode()
        # Still live and still serving while it drains.
        assert http_get(healthy.front_url + "/livez").status == 200
        assert http_get(healthy.front_url + "/forecast/198.51.100.31").status == 200
        assert front.wait(20.0) == 0
    finally:
        front.stop()
        healthy.restart("front")
    assert http_get(healthy.front_url + "/readyz").status == 200


def _untraced(system: System, path: str) -> tuple[int, str]:
    """GET a front path as part of an unsampled trace; its status and trace id."""
    header, trace_id, _ = new_traceparent(sampled=False)
    reply = http_get(system.front_url + path, headers={"traceparent": header})
    return reply.status, trace_id


def test_debug_switch_turns_debug_lines_on_and_off(healthy: System, logs: Any) -> None:
    """While the front's debug switch is on its requests write debug lines; off, nothing."""
    switch = healthy.admin_url("front", "/debug")
    assert http_get(switch).json() == {"debug-logs": "off"}
    assert http_get(switch + "?debug-logs=on").json() == {"debug-logs": "on"}
    status, trace_id = _untraced(healthy, "/forecast/198.51.100.40")
    assert status == 200
    entries = logs.wait_messages("front", trace_id, ("start", "end"))
    debug = [e.get("msg") for e in entries if e.get("level") == "debug"]
    # The handler's debug line, and the payload logs of the call it made.
    assert {"calling forecaster", "client-payload", "client-result"} <= set(debug), debug

    assert http_get(switch + "?debug-logs=off").json() == {"debug-logs": "off"}
    assert http_get(switch + "?debug-logs=maybe").status == 400
    status, quiet_trace = _untraced(healthy, "/forecast/198.51.100.41")
    assert status == 200
    # Barrier: once a later failing request's lines are written, the quiet one's would be.
    status, fail_trace = _untraced(healthy, "/forecast/203.0.113.41")
    assert status == 502
    logs.wait_messages("front", fail_trace, ("start", "forecast failed", "end"))
    assert logs.of_trace("front", quiet_trace) == []


@pytest.mark.parametrize("service", ["front", "forecaster"])
def test_go_pprof_reads_a_cpu_profile_of_a_running_service(
    healthy: System, tmp_path: Path, service: str
) -> None:
    """``go tool pprof -top`` reads a CPU profile taken from a service under load."""
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            http_get(healthy.front_url + "/forecast/198.51.100.50")

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        reply = http_get(healthy.admin_url(service, "/debug/pprof/profile?seconds=1"), timeout=20.0)
    finally:
        stop.set()
        worker.join(10.0)
    assert reply.status == 200
    assert reply.body[:2] == b"\x1f\x8b"  # gzipped protobuf
    profile = tmp_path / f"{service}.pb.gz"
    profile.write_bytes(reply.body)
    out = subprocess.run(
        [GO, "tool", "pprof", "-top", str(profile)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "GOCACHE": str(tmp_path / "gocache")},
    )
    assert out.returncode == 0, out.stderr
    assert "flat%" in out.stdout
    assert ".py" in out.stdout or "python" in out.stdout.lower(), out.stdout[:2000]


def test_a_failing_collector_changes_nothing_for_requests(
    healthy: System, receiver: OTLPReceiver, logs: Any
) -> None:
    """While the collector refuses every export, requests are served and failures logged."""
    refused_before = sum(not r.accepted for r in receiver.requests())
    receiver.fail()
    try:
        # A traced request: its spans are exported, and refused.
        header, _, _ = new_traceparent(sampled=True)
        traced = http_get(
            healthy.front_url + "/forecast/198.51.100.60", headers={"traceparent": header}
        )
        assert traced.status == 200
        status, trace_id = _untraced(healthy, "/forecast/203.0.113.60")
        assert status == 502
        for name, expected in FAILURE_PATH.items():
            logs.wait_messages(name, trace_id, expected)
        receiver.wait_for_requests(refused_before + 1, timeout=15.0, accepted=False)
    finally:
        receiver.recover()
    assert http_get(healthy.front_url + "/forecast/198.51.100.61").status == 200
