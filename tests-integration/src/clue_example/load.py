"""The load generator: a bounded, reproducible stream of requests to the front.

A plan is drawn from a seed: mostly ``GET /forecast/{ip}``, a share of
``/forecast/{ip}/hourly`` (the stream), and a share of requests for addresses the
upstream refuses to resolve (injected failures). It runs with a few worker threads until
every request is done or the time limit passes, whichever comes first, and shows a
progress bar on stderr.

IP addresses are documentation ranges used as lookup keys only; every request goes to
the front on 127.0.0.1.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TextIO

import requests

__all__ = [
    "LoadPlan",
    "LoadResult",
    "Progress",
    "RequestRecord",
    "plan_paths",
    "run_load",
]

GOOD_PREFIX = "198.51.100."  # TEST-NET-2: resolves
BAD_PREFIX = "203.0.113."  # TEST-NET-3: the upstream's default failing prefix


@dataclass(frozen=True)
class LoadPlan:
    """What load to generate; ``count`` and ``max_seconds`` both bound it."""

    count: int = 2000
    max_seconds: float = 120.0
    concurrency: int = 8
    failure_share: float = 0.02
    hourly_share: float = 0.1
    hours: int = 3
    seed: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.max_seconds <= 0:
            raise ValueError("max_seconds must be positive")
        if not 1 <= self.concurrency <= 64:
            raise ValueError("concurrency must be in 1..64")
        for name in ("failure_share", "hourly_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")


@dataclass(frozen=True)
class RequestRecord:
    """One request of the load and what the front answered."""

    path: str
    expect_failure: bool
    status: int  # 0 when the request itself failed (connection error, timeout)
    started: float  # seconds since the load started
    latency_ms: float
    request_id: str | None
    trace_id: str | None
    sampled: bool

    @property
    def ok(self) -> bool:
        """Whether the front answered 2xx."""
        return 200 <= self.status < 300


@dataclass(frozen=True)
class LoadResult:
    """Every request made, and how long the load took."""

    records: tuple[RequestRecord, ...]
    duration: float
    planned: int

    @property
    def rate(self) -> float:
        """Requests per second."""
        return len(self.records) / self.duration if self.duration > 0 else 0.0


def plan_paths(plan: LoadPlan) -> list[tuple[str, bool]]:
    """The request paths of a plan, each with whether it is meant to fail."""
    rng = random.Random(plan.seed)  # not for security: a reproducible load
    paths = []
    for _ in range(plan.count):
        fail = rng.random() < plan.failure_share
        host = rng.randrange(1, 255)
        ip = f"{BAD_PREFIX if fail else GOOD_PREFIX}{host}"
        if not fail and rng.random() < plan.hourly_share:
            paths.append((f"/forecast/{ip}/hourly?hours={plan.hours}", False))
        else:
            paths.append((f"/forecast/{ip}", fail))
    return paths


def run_load(base_url: str, plan: LoadPlan, *, progress: TextIO | None = None) -> LoadResult:
    """Send the plan's requests to ``base_url`` and record every answer."""
    paths = plan_paths(plan)
    bar = Progress(len(paths), progress) if progress is not None else None
    local = threading.local()
    start = time.monotonic()
    deadline = start + plan.max_seconds

    def one(item: tuple[str, bool]) -> RequestRecord | None:
        if time.monotonic() > deadline:
            return None
        session: requests.Session | None = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        path, fail = item
        t0 = time.monotonic()
        status, headers = 0, {}
        try:
            resp = session.get(base_url + path, timeout=10.0)
            status = resp.status_code
            headers = {k.lower(): v for k, v in resp.headers.items()}
        except requests.RequestException:
            pass
        t1 = time.monotonic()
        trace_id, sampled = _parse_traceresponse(headers.get("traceresponse", ""))
        record = RequestRecord(
            path=path,
            expect_failure=fail,
            status=status,
            started=t0 - start,
            latency_ms=(t1 - t0) * 1000.0,
            request_id=headers.get("x-request-id"),
            trace_id=trace_id,
            sampled=sampled,
        )
        if bar is not None:
            bar.advance(failed=not record.ok)
        return record

    with ThreadPoolExecutor(plan.concurrency, thread_name_prefix="load") as pool:
        results = list(pool.map(one, paths))
    duration = time.monotonic() - start
    if bar is not None:
        bar.close()
    records = tuple(r for r in results if r is not None)
    return LoadResult(records, duration, len(paths))


def _parse_traceresponse(value: str) -> tuple[str | None, bool]:
    parts = value.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[3]) != 2:
        return None, False
    try:
        flags = int(parts[3], 16)
    except ValueError:
        return None, False
    return parts[1], bool(flags & 1)


class Progress:
    """A progress bar: done/total, failures, rate, elapsed (thread-safe).

    On a terminal it redraws one line ten times a second; elsewhere (CI logs) it
    writes a line at every tenth of the way.
    """

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO = sys.stderr, label: str = "load") -> None:
        self.total = total
        self.stream = stream
        self.label = label
        self.done = 0
        self.failed = 0
        self.start = time.monotonic()
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._drawn = -1  # ``done`` at the last draw
        self._lock = threading.Lock()

    def advance(self, *, failed: bool = False) -> None:
        """Count one finished request; redraw when due."""
        with self._lock:
            self.done += 1
            self.failed += failed
            now = time.monotonic()
            if self._tty:
                due = now - self._last_draw >= 0.1 or self.done == self.total
            else:
                due = self.done * 10 // self.total > max(self._drawn, 0) * 10 // self.total
            if due:
                self._draw(now)

    def close(self) -> None:
        """Draw the final state if not drawn yet, and end the line."""
        with self._lock:
            if self._drawn != self.done:
                self._draw(time.monotonic())
            if self._tty:
                self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        self._last_draw = now
        self._drawn = self.done
        elapsed = now - self.start
        filled = int(self.WIDTH * self.done / self.total) if self.total else self.WIDTH
        rate = self.done / elapsed if elapsed > 0 else 0.0
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = (
            f"{self.label} [{bar}] {self.done}/{self.total} failed={self.failed} "
            f"{rate:6.1f} req/s {elapsed:5.1f}s"
        )
        self.stream.write("\r" + line if self._tty else line + "\n")
        self.stream.flush()
