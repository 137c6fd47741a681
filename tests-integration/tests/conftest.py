"""Fixtures of the end-to-end harness: one OTLP receiver and one running system.

Both are session-scoped (starting the four services costs a few seconds); tests that
stop, signal or reconfigure a service put it back as they found it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from clue.otel.testing import OTLPReceiver
from clue_example import otlp
from clue_example.analysis import is_subsequence, messages
from clue_example.harness import wait_for
from clue_example.launcher import System, SystemOptions, http_get


@pytest.fixture(scope="session")
def receiver() -> Iterator[OTLPReceiver]:
    """A real OTLP receiver (gRPC and HTTP) on loopback ports."""
    with OTLPReceiver() as rcv:
        yield rcv


@pytest.fixture(scope="session")
def system(receiver: OTLPReceiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The example system, its services as real processes, exporting to ``receiver``."""
    options = SystemOptions(
        otlp_endpoint=otlp.grpc_endpoint(receiver),
        # A low target, so requests without a sampled traceparent stay untraced.
        sampling_rate=0.01,
        # Long enough to observe a draining service on a busy machine.
        drain_seconds=5.0,
    )
    with System(tmp_path_factory.mktemp("system"), options) as sys_:
        yield sys_


@pytest.fixture
def healthy(system: System) -> Iterator[System]:
    """The system, checked ready before the test and restored to health after it."""
    _wait_ready(system)
    yield system
    system.set_faults(down=False, geo_error_rate=0.0, weather_error_rate=0.0, delay_ms=0.0)
    for name, svc in system.services.items():
        if svc.popen is None or svc.popen.poll() is not None:
            system.restart(name)
    for name in ("front", "forecaster", "locator"):
        http_get(system.admin_url(name, "/debug?debug-logs=off"))
    _wait_ready(system)


def _wait_ready(system: System) -> None:
    for name in ("locator", "forecaster", "front"):
        url = system.admin_url(name, "/readyz")
        wait_for(functools.partial(_ready, url), timeout=20.0, what=f"{name} ready")


def _ready(url: str) -> bool:
    return _status(url) == 200


def _status(url: str) -> int:
    try:
        return http_get(url, timeout=2.0).status
    except OSError:
        return 0


@pytest.fixture
def logs(system: System) -> Any:
    """Reads each service's log entries written after the test started."""
    return LogWatch(system)


class LogWatch:
    """Each instrumented service's log entries written since this object was made."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.start = system.log_sizes()

    def entries(self, name: str) -> list[dict[str, Any]]:
        """The new JSON entries of one service, in order."""
        import json

        path: Path = self.system.services[name].log_path
        with path.open("rb") as f:
            f.seek(self.start[name])
            data = f.read()
        lines = data.decode(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def of_trace(self, name: str, trace_id: str) -> list[dict[str, Any]]:
        """The new entries of one service that belong to a trace."""
        return [e for e in self.entries(name) if e.get("trace_id") == trace_id]

    def wait_messages(
        self, name: str, trace_id: str, expected: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Wait until a service wrote ``expected`` messages, in order, for a trace."""

        def probe() -> list[dict[str, Any]] | None:
            entries = self.of_trace(name, trace_id)
            return entries if is_subsequence(expected, messages(entries)) else None

        return wait_for(probe, what=f"{name}'s {list(expected)} in trace {trace_id}")
