"""clue-log end to end on real servers: SPEC §10 bar P7, measured side by side in one run.

A Starlette app under uvicorn (ASGI) and a Flask app under gunicorn's gthread worker (WSGI;
``CLUE_P7_WSGI_WORKER=sync`` for the sync one),
each started as a real server process on 127.0.0.1 with one worker, serve a handler that
logs 10 lines per request, under five setups (``_p7_app.py``): no logging middleware
(``none``), a bare middleware that only wraps send/start_response and sets one header
(``bare``), clue (10 buffered lines + buffered start/end, discarded: the requests succeed),
structlog writing the same 12 lines as JSON, and stdlib logging writing them (both to
``/dev/null``). The load generator is another process; server and generator are pinned to
different CPUs where the machine has two. In each round every setup runs once, in an
order that rotates from round to round. The loss and cost figures (and the bars) come from
the server's own CPU time per request (Linux /proc; the throughput elsewhere), which other
work on the machine does not dilute the way it dilutes throughput: the loss is what a
saturated server would lose. They are the medians of each round's own figures against
that round's ``none``, which a slow round cannot tilt the way it tilts a ratio of medians.

The server also reports the garbage collections it ran during each load run (a
``gc.callbacks`` hook in ``_p7_app.py``): per 1,000 requests, and the server CPU they took
per request.

Bars: clue's throughput loss against ``none`` <= 14 %; clue's extra cost per request over
``bare`` <= 1/3 of ``bare``'s own cost over ``none``.

``CLUE_P7_PROFILE=<path>`` runs each ASGI server under cProfile (its event loop's thread,
where the app runs) and writes ``<path>.<setup>.prof`` when it stops: compare ``clue``'s
functions with ``bare``'s to split clue's extra cost function by function (the profile
inflates every call; compare the rows of one run).

``CLUE_P7_CALLGRIND=1`` counts instead the instructions each server runs per request, under
valgrind's callgrind (counters zeroed after a warm-up, read after the load): a count that
the machine's other work does not move, so that two trees (``CLUE_P7_BEFORE``) or two
setups compare in one run where CPU time would be noise. It says nothing of caches, and
judges no bar.

Run with ``python3 tools/run.py bench -- bench_servers``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# ``CLUE_P7_BEFORE``: a directory holding another ``clue/log`` tree (say, the last release's
# sources) run as a sixth setup, ``clue-before``, interleaved with the others.
BEFORE = os.environ.get("CLUE_P7_BEFORE")
VARIANTS = ("none", "bare", "clue", "structlog", "stdlib") + (("clue-before",) if BEFORE else ())
# ``CLUE_P7_VARIANTS=bare,clue,clue-quiet,clue-ctx``: those setups (``none`` always runs);
# ``clue-quiet`` and ``clue-ctx`` (``_p7_app.py``) split clue's cost into its parts.
if os.environ.get("CLUE_P7_VARIANTS"):
    _wanted = os.environ["CLUE_P7_VARIANTS"].split(",")
    VARIANTS = ("none", *(v for v in _wanted if v != "none"))
ROUNDS = int(os.environ.get("CLUE_BENCH_ROUNDS", "5"))
REQUESTS = int(os.environ.get("CLUE_BENCH_REQUESTS", "3000"))
CONCURRENCY = 8
LOSS_BAR = 0.14
EXTRA_BAR = 1 / 3
# gunicorn's worker class: ``sync`` closes the connection after every response (each
# request pays a TCP accept and close); ``gthread`` keeps connections alive.
WSGI_WORKER = os.environ.get("CLUE_P7_WSGI_WORKER", "gthread")
CALLGRIND = os.environ.get("CLUE_P7_CALLGRIND") == "1"
REQUEST = b"GET /orders/42 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench/1.0\r\n\r\n"
RESULTS: list[tuple[str, bool]] = []


# --------------------------------------------------------------------------- servers


def _cpus() -> tuple[set[int] | None, set[int] | None]:
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    kind: str, variant: str, cpu: set[int] | None, wrap: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    path = str(HERE)
    name = variant
    if variant == "clue-before":
        variant, path = "clue", f"{BEFORE}{os.pathsep}{HERE}"
    env = {**os.environ, "CLUE_P7_VARIANT": variant, "PYTHONPATH": path}
    if os.environ.get("CLUE_P7_PROFILE"):
        env["CLUE_P7_PROFILE"] = f"{os.environ['CLUE_P7_PROFILE']}.{name}.prof"
    if kind == "asgi":
        cmd = [
            sys.executable, "-m", "uvicorn", "_p7_app:asgi", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    else:
        cmd = [
            sys.executable, "-m", "gunicorn", "_p7_app:wsgi", "-b", f"127.0.0.1:{port}",
            "-w", "1", "-k", WSGI_WORKER, "--log-level", "warning", "--backlog", "256",
        ]  # fmt: skip
        if WSGI_WORKER == "gthread":
            cmd += ["--threads", str(CONCURRENCY), "--keep-alive", "30"]
        if wrap:  # under valgrind, a worker is slow to answer gunicorn's heartbeat
            cmd += ["--timeout", "600"]
    # valgrind's own messages would bury the report.
    stderr = subprocess.DEVNULL if wrap else None
    proc = subprocess.Popen(
        [*wrap, *cmd],
        env=env,
        cwd=HERE,
        preexec_fn=_pin(cpu),  # noqa: PLW1509 - the pinning runs before any thread exists
        stderr=stderr,
    )
    deadline = time.monotonic() + (600 if wrap else 30)
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(REQUEST)
                if s.recv(16).startswith(b"HTTP/1.1 200"):
                    return proc, port
        except OSError:
            time.sleep(0.5 if wrap else 0.05)
    proc.kill()
    raise RuntimeError(f"{kind} server for {variant} did not start")


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds a server process and its children (gunicorn's worker) have used.

    Read from Linux's /proc: every thread's ``schedstat`` (nanoseconds on the CPU) where the
    kernel keeps it, else ``stat``'s utime + stime (clock ticks); None elsewhere.
    """
    try:
        total = 0.0
        for p in _tree(pid):
            total += _thread_ns(p) / 1e9 if _SCHEDSTAT else _ticks(p) / _TICK
        return total
    except (OSError, ValueError, IndexError):
        return None


def _thread_ns(pid: int) -> int:
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def _ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


_SCHEDSTAT = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/schedstat")


def _tree(pid: int) -> list[int]:
    out = [pid]
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children = f.read().split()
        except OSError:
            continue
        for child in children:
            out.extend(_tree(int(child)))
    return out


def _pin(cpu: set[int] | None) -> Any:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, cpu)


# --------------------------------------------------------------------------- load


def load(port: int, requests: int, concurrency: int) -> dict[str, float]:
    """Send ``requests`` GETs over ``concurrency`` connections; throughput and latencies."""
    sel = selectors.DefaultSelector()
    latencies: list[float] = []
    sent = 0

    def open_conn() -> None:
        nonlocal sent
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        s.sendall(REQUEST)
        sent += 1
        sel.register(s, selectors.EVENT_READ, [b"", time.perf_counter()])

    start = time.perf_counter()
    for _ in range(min(concurrency, requests)):
        open_conn()
    while len(latencies) < requests:
        for key, _ in sel.select():
            s: socket.socket = key.fileobj  # type: ignore[assignment]
            state = key.data
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            state[0] += chunk
            buf = state[0]
            head_end = buf.find(b"\r\n\r\n")
            done = False
            if head_end >= 0:
                head = buf[:head_end].lower()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                done = len(buf) >= head_end + 4 + length
            closed = not chunk
            if not (done or closed):
                continue
            latencies.append(time.perf_counter() - state[1])
            keep = done and b"connection: close" not in buf[:head_end].lower() and not closed
            if sent < requests and keep:
                state[0], state[1] = b"", time.perf_counter()
                s.setblocking(True)
                s.sendall(REQUEST)
                s.setblocking(False)
                sent += 1
                continue
            sel.unregister(s)
            s.close()
            if sent < requests:
                open_conn()
    elapsed = time.perf_counter() - start
    for key in list(sel.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    latencies.sort()
    return {
        "rps": requests / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
    }


def gc_stats(port: int) -> tuple[list[int], float]:
    """The server's garbage collections so far per generation, and the seconds they took."""
    path = b"/__p7/gc"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    doc = json.loads(data.split(b"\r\n\r\n", 1)[1])
    return doc["collections"], doc["seconds"]


def client_main(port: int, requests: int) -> None:
    print(json.dumps(load(port, requests, CONCURRENCY)))


def run_client(port: int, cpu: set[int] | None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--client", str(port), str(REQUESTS)],
        capture_output=True, text=True, check=True, preexec_fn=_pin(cpu),
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- report


def bench(kind: str, server_cpu: set[int] | None, client_cpu: set[int] | None) -> None:
    servers = {v: start_server(kind, v, server_cpu) for v in VARIANTS}
    samples: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    try:
        for _, port in servers.values():
            run_client(port, client_cpu)  # warm-up
        names = list(servers)
        for r in range(ROUNDS):
            # The setups interleaved, in an order that rotates from one round to the next.
            for v in names[r % len(names) :] + names[: r % len(names)]:
                proc, port = servers[v]
                gc_before = gc_stats(port)
                before = cpu_seconds(proc.pid)
                got = run_client(port, client_cpu)
                after = cpu_seconds(proc.pid)
                gc_after = gc_stats(port)
                if before is not None and after is not None:
                    got["cpu"] = (after - before) / REQUESTS
                got["gc0"] = (gc_after[0][0] - gc_before[0][0]) * 1000 / REQUESTS
                got["gc2"] = (gc_after[0][2] - gc_before[0][2]) * 1000 / REQUESTS
                got["gc_s"] = (gc_after[1] - gc_before[1]) / REQUESTS
                samples[v].append(got)
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in servers.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    m = {
        v: {k: statistics.median(s[k] for s in samples[v]) for k in ("rps", "p50", "p99")}
        for v in VARIANTS
    }
    server = "uvicorn + Starlette" if kind == "asgi" else f"gunicorn ({WSGI_WORKER}) + Flask"
    print(
        f"{kind.upper()}: {server}, {ROUNDS} rounds of {REQUESTS} requests, "
        f"{CONCURRENCY} connections; loss and cost: medians of the rounds' own figures"
    )

    by_cpu = all("cpu" in x for v in VARIANTS for x in samples[v])

    def per_round(v: str, r: int) -> tuple[float, float]:
        # (loss against ``none``, extra seconds per request) in round r: from the server's
        # own CPU time per request where it can be read (what the loss of a saturated
        # server is, whatever else the machine runs), else from the throughput.
        if by_cpu:
            cpu, base = samples[v][r]["cpu"], samples["none"][r]["cpu"]
            return 1 - base / cpu, cpu - base
        rps, base = samples[v][r]["rps"], samples["none"][r]["rps"]
        return 1 - rps / base, 1 / rps - 1 / base

    loss = {v: statistics.median(per_round(v, r)[0] for r in range(ROUNDS)) for v in VARIANTS}
    cost = {v: statistics.median(per_round(v, r)[1] for r in range(ROUNDS)) for v in VARIANTS}
    basis = "server CPU per request" if by_cpu else "throughput"
    print(f"  (loss and cost from the {basis})")
    for v in VARIANTS:
        cpu = (
            f"  server CPU {statistics.median(x['cpu'] for x in samples[v]) * 1e6:6.1f} µs/req"
            if by_cpu
            else ""
        )
        gcs = {k: statistics.median(x[k] for x in samples[v]) for k in ("gc0", "gc2", "gc_s")}
        print(
            f"  {v:10} {m[v]['rps']:8.0f} req/s  loss {loss[v]:6.1%}  "
            f"p50 {m[v]['p50'] * 1e3:6.2f} ms  p99 {m[v]['p99'] * 1e3:6.2f} ms  "
            f"cost {cost[v] * 1e6:7.1f} µs/req{cpu}  gc: {gcs['gc0']:5.1f} young, "
            f"{gcs['gc2']:4.2f} full per 1k req, {gcs['gc_s'] * 1e6:5.1f} µs/req"
        )
    split(kind, per_round)
    if "clue" not in VARIANTS or "bare" not in VARIANTS:
        return
    losses = sorted(per_round("clue", r)[0] for r in range(ROUNDS))
    ok = loss["clue"] <= LOSS_BAR
    RESULTS.append((f"P7 {kind} loss", ok))
    print(
        f"  {'PASS' if ok else 'FAIL'}  P7 {kind}: clue's loss {loss['clue']:.1%} "
        f"<= {LOSS_BAR:.0%} (rounds {losses[0]:.1%} to {losses[-1]:.1%})"
    )
    # clue's extra over the bare middleware, as a share of the bare middleware's own cost,
    # round by round (both against the same round's ``none``).
    shares = []
    for r in range(ROUNDS):
        bare, clue = per_round("bare", r)[1], per_round("clue", r)[1]
        if bare > 0:
            shares.append((clue - bare) / bare)
    share = statistics.median(shares) if shares else float("inf")
    ok = share <= EXTRA_BAR
    RESULTS.append((f"P7 {kind} extra", ok))
    judged = f"{len(shares)} of {ROUNDS} rounds with a measurable bare middleware"
    print(
        f"  {'PASS' if ok else 'FAIL'}  P7 {kind}: clue's extra over the bare middleware "
        f"{share:.2f}x the bare middleware's own cost (bar <= 1/3; {judged})"
    )


def split(kind: str, per_round: Any) -> None:
    """clue's cost on the real server in parts, from ``clue-ctx`` and ``clue-quiet``.

    Each part is the median of the rounds' own differences between two setups.
    """
    parts = (
        ("log context, request id, plumbing (clue-ctx - none)", "clue-ctx", "none"),
        ("buffered start/end lines (clue-quiet - clue-ctx)", "clue-quiet", "clue-ctx"),
        ("the handler's 10 buffered calls (clue - clue-quiet)", "clue", "clue-quiet"),
        ("the bare middleware (bare - none)", "bare", "none"),
        ("clue-ctx over the bare middleware", "clue-ctx", "bare"),
    )
    for label, a, b in parts:
        if a in VARIANTS and b in VARIANTS:
            diffs = sorted(per_round(a, r)[1] - per_round(b, r)[1] for r in range(ROUNDS))
            print(
                f"  {kind} part: {label:55} {statistics.median(diffs) * 1e6:6.1f} µs/req "
                f"[{diffs[0] * 1e6:.1f} to {diffs[-1] * 1e6:.1f}]"
            )


def instructions(kind: str) -> None:
    """Instructions per request of each setup's server, counted by callgrind."""
    wrap = (
        "valgrind",
        "--tool=callgrind",
        "--trace-children=yes",
        "--callgrind-out-file=/dev/null",
    )
    counts: dict[str, float] = {}
    for v in VARIANTS:
        proc, port = start_server(kind, v, None, wrap)
        try:
            subprocess.run(  # warm-up
                [sys.executable, __file__, "--client", str(port), "100"], check=True,
                capture_output=True,
            )  # fmt: skip
            pids = [str(p) for p in _tree(proc.pid)]
            subprocess.run(["callgrind_control", "-z", *pids], check=True, capture_output=True)
            subprocess.run(
                [sys.executable, __file__, "--client", str(port), str(REQUESTS)], check=True,
                capture_output=True,
            )  # fmt: skip
            read = subprocess.run(
                ["callgrind_control", "-e", "Ir", *pids], check=True, capture_output=True,
                text=True,
            ).stdout  # fmt: skip
            # One "Th <n> <count>" line per thread of each process.
            total = sum(int(n.replace(",", "")) for n in re.findall(r"Th +\d+ +([\d,]+)", read))
            counts[v] = total / REQUESTS
        finally:
            subprocess.run(
                ["callgrind_control", "-k", str(proc.pid)], check=False, capture_output=True
            )
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    server = "uvicorn + Starlette" if kind == "asgi" else f"gunicorn ({WSGI_WORKER}) + Flask"
    print(f"{kind.upper()}: {server}, instructions per request under callgrind ({REQUESTS})")
    base = counts["none"]
    for v, n in counts.items():
        print(
            f"  {v:12} {n:10.0f} instructions/req  +{n - base:8.0f} over none ({n / base - 1:6.1%})"
        )


def main() -> int:
    server_cpu, client_cpu = _cpus()
    pinned = f"server on CPU {server_cpu}, load on CPU {client_cpu}" if server_cpu else "unpinned"
    print(f"clue-log P7 bench: Python {platform.python_version()}, {os.cpu_count()} CPUs, {pinned}")
    kinds = os.environ.get("CLUE_P7_KINDS", "asgi,wsgi").split(",")
    for kind in kinds:
        if CALLGRIND:
            instructions(kind)
        else:
            bench(kind, server_cpu, client_cpu)
    failed = [name for name, ok in RESULTS if not ok]
    if CALLGRIND:
        print("bench_servers: instructions counted, no bar judged")
        return 0
    print("bench_servers:", "FAIL " + ", ".join(failed) if failed else "all bars PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        client_main(int(sys.argv[2]), int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
