"""The process launcher: the example system's services as real subprocesses.

Every service gets free loopback ports, its standard output (where clue writes its log
lines) captured to ``<workdir>/<name>.log`` and its standard error to
``<name>.stderr.log``. ``System`` starts them all in parallel, waits for each admin
port's ``/livez`` with a deadline (failing fast, with the stderr tail, if a process
dies), and tears them down with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["HttpReply", "ServiceProcess", "System", "SystemOptions", "free_port", "http_get"]

SERVICES = ("upstream", "locator", "forecaster", "front")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now, below the ephemeral range.

    The port is bound later, by another process, seconds after it was chosen. A port
    from the ephemeral range (what binding to port 0 gives) may be taken meanwhile as
    the local end of any outgoing connection on the machine (a load generator's, an
    exporter's), and the service then fails to start. Outgoing connections never take
    a port below that range, so one is chosen there, at random; port 0's choice is the
    fallback when none is free.
    """
    low = _ephemeral_low()
    for _ in range(100):
        port = _RANDOM.randrange(_LOWEST_PICKED, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        fallback: int = sock.getsockname()[1]
        return fallback


_LOWEST_PICKED = 10_000
_RANDOM = random.Random()


def _ephemeral_low() -> int:
    # Linux: /proc/sys/net/ipv4/ip_local_port_range; elsewhere, IANA's range (49152-).
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 49152
    return low if low > _LOWEST_PICKED + 1000 else 49152


@dataclass(frozen=True)
class HttpReply:
    """Status, headers and body of one plain HTTP call."""

    status: int
    headers: dict[str, str]  # names in lowercase
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


def http_get(url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None) -> HttpReply:
    """GET a loopback URL; HTTP error statuses are replies, not exceptions."""
    return _http("GET", url, None, timeout, headers or {})


def http_post(url: str, body: Any, *, timeout: float = 5.0) -> HttpReply:
    """POST a JSON body to a loopback URL."""
    data = json.dumps(body).encode()
    return _http("POST", url, data, timeout, {"Content-Type": "application/json"})


def _http(
    method: str, url: str, data: bytes | None, timeout: float, headers: dict[str, str]
) -> HttpReply:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return HttpReply(resp.status, _lower(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return HttpReply(err.code, _lower(err.headers.items()), err.read())


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


@dataclass
class ServiceProcess:
    """One service of the system, run as a subprocess."""

    name: str
    argv: list[str]
    workdir: Path
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Where the service's standard output (its log lines) goes."""
        return self.workdir / f"{self.name}.log"

    @property
    def stderr_path(self) -> Path:
        """Where the service's standard error goes."""
        return self.workdir / f"{self.name}.stderr.log"

    def start(self) -> None:
        """Start the process (appending to its log files, so a restart keeps history)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.popen = subprocess.Popen(
                [sys.executable, *self.argv],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

    def wait_ready(self, deadline: float) -> None:
        """Poll the readiness URL until it answers 200, the process dies, or the deadline.

        Raises:
            RuntimeError: the process exited or the deadline passed, with its stderr tail.
        """
        assert self.popen is not None, "start() first"
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.stderr_tail()}"
                )
            with contextlib.suppress(OSError):
                if http_get(self.ready_url, timeout=1.0).status == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready in time:\n{self.stderr_tail()}")
            time.sleep(0.05)  # polling interval of a deadline-bounded wait

    def send_signal(self, sig: int) -> None:
        """Send a signal to the service process."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit and return its status."""
        assert self.popen is not None, "start() first"
        return self.popen.wait(timeout)

    def kill(self) -> int | None:
        """SIGKILL the process group at once (a crash), and reap it."""
        if self.popen is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        return self.popen.wait(5.0)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL the whole process group after ``grace`` seconds."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5.0)
        return self.popen.returncode

    def stderr_tail(self, size: int = 4000) -> str:
        """The end of the service's standard error."""
        try:
            data = self.stderr_path.read_bytes()
        except OSError:
            return ""
        return data[-size:].decode(errors="replace")

    def log_size(self) -> int:
        """Bytes written to the log so far."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_entries(self) -> list[dict[str, Any]]:
        """Every JSON log line written so far, in order (other lines are skipped)."""
        return list(_json_lines(self.log_path))


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    yield entry


@dataclass(frozen=True)
class SystemOptions:
    """How to run the example system."""

    otlp_endpoint: str
    buffering: bool = True
    sampling_rate: float = 2.0
    sample_size: int = 10
    drain_seconds: float = 1.0
    startup_timeout: float = 60.0
    # Export spans and log records every 200 ms instead of the SDK's 5 s and 1 s, so they
    # are seen promptly; a log queue large enough for the log-everything baseline's bursts
    # (the SDK's 2 048 would drop records there, and the demo counts them).
    env: tuple[tuple[str, str], ...] = (
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "200"),
        ("OTEL_BLRP_MAX_QUEUE_SIZE", "32768"),
    )
    upstream_args: tuple[str, ...] = ()


class System:
    """The example system (upstream, locator, forecaster, front) as real processes.

    Use it as a context manager: entering starts every service and waits until each is
    ready; leaving stops them all.
    """

    def __init__(self, workdir: Path, options: SystemOptions) -> None:
        self.workdir = workdir
        self.options = options
        workdir.mkdir(parents=True, exist_ok=True)
        self.ports = {
            "upstream": free_port(),
            "locator": free_port(),
            "locator_admin": free_port(),
            "forecaster": free_port(),
            "forecaster_admin": free_port(),
            "front": free_port(),
            "front_admin": free_port(),
        }
        self.services = {name: self._spec(name) for name in SERVICES}

    def _spec(self, name: str) -> ServiceProcess:
        p = self.ports
        opts = self.options
        if name == "upstream":
            argv = ["-m", "clue_example.upstream", "--port", str(p["upstream"])]
            argv += list(opts.upstream_args)
            ready = f"http://127.0.0.1:{p['upstream']}/admin/faults"
            return ServiceProcess(name, argv, self.workdir, ready)
        common = [
            "--port", str(p[name]),
            "--admin-port", str(p[f"{name}_admin"]),
            "--otlp-endpoint", opts.otlp_endpoint,
            "--sampling-rate", str(opts.sampling_rate),
            "--sample-size", str(opts.sample_size),
            "--drain-seconds", str(opts.drain_seconds),
        ]  # fmt: skip
        if not opts.buffering:
            common.append("--no-buffering")
        upstream = f"127.0.0.1:{p['upstream']}"
        deps = {
            "locator": ["--upstream", upstream],
            "forecaster": [
                "--upstream", upstream,
                "--locator", f"127.0.0.1:{p['locator']}",
                "--locator-admin", f"127.0.0.1:{p['locator_admin']}",
            ],
            "front": [
                "--forecaster", f"127.0.0.1:{p['forecaster']}",
                "--forecaster-admin", f"127.0.0.1:{p['forecaster_admin']}",
            ],
        }[name]  # fmt: skip
        argv = ["-m", f"clue_example.{name}", *common, *deps]
        # The admin port starts once the service listens (the front's: before uvicorn does).
        ready = f"{self.front_url}/livez" if name == "front" else self.admin_url(name, "/livez")
        return ServiceProcess(name, argv, self.workdir, ready, env=dict(opts.env))

    def __enter__(self) -> System:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start every service in parallel and wait until all are ready."""
        for svc in self.services.values():
            svc.start()
        deadline = time.monotonic() + self.options.startup_timeout
        for svc in self.services.values():
            svc.wait_ready(deadline)

    def stop(self) -> None:
        """Stop every service: all drain at once, then each is waited for (or killed)."""
        for name in reversed(SERVICES):
            self.services[name].send_signal(signal.SIGTERM)
        for name in reversed(SERVICES):
            self.services[name].stop(grace=self.options.drain_seconds + 10.0)

    def restart(self, name: str) -> None:
        """Stop one service and start it again on the same ports."""
        svc = self.services[name]
        svc.stop()
        svc.start()
        svc.wait_ready(time.monotonic() + self.options.startup_timeout)

    @property
    def front_url(self) -> str:
        """Base URL of the front's public API."""
        return f"http://127.0.0.1:{self.ports['front']}"

    @property
    def upstream_url(self) -> str:
        """Base URL of the fake upstream."""
        return f"http://127.0.0.1:{self.ports['upstream']}"

    def admin_url(self, name: str, path: str = "") -> str:
        """URL on a service's loopback admin port (health, debug, pprof)."""
        return f"http://127.0.0.1:{self.ports[f'{name}_admin']}{path}"

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Change the upstream's injected faults; returns the new set.

        Raises:
            ValueError: the upstream refused the change.
        """
        reply = http_post(f"{self.upstream_url}/admin/faults", faults)
        if reply.status != 200:
            raise ValueError(reply.body.decode())
        result: dict[str, Any] = reply.json()
        return result

    def log_sizes(self) -> dict[str, int]:
        """Bytes written so far to each instrumented service's log."""
        return {n: s.log_size() for n, s in self.services.items() if n != "upstream"}
