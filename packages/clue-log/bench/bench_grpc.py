"""clue-log's gRPC interceptors on real servers and clients: SPEC §10 bar P5g, side by side.

Server side. A sync ``grpc.server`` and a ``grpc.aio.server``, each started as its own
process on 127.0.0.1, serve a unary method (raw bytes, no protobuf) that makes 10 buffered
``log.info`` calls, discarded (the RPCs succeed), under these setups: no interceptor
(``none``: the method opens its own ``log.context()``), an interceptor that only wraps the
handler (``bare``), clue's (its context holds the calls; the start/end lines are buffered
with ``call_log_func=log.info``), OpenTelemetry's gRPC server instrumentation with sampling
off (``otel``), and OpenTelemetry's and clue's together (``otel+clue``). A further server
(``silent``) runs the method without any logging, for clue's whole cost (interceptor and
the 10 calls) against an app that does not log. The client is another process; server
and client are pinned to different CPUs where the machine has two.

The figure is the server's own CPU time per RPC (``time.process_time()`` read through a
second method before and after each batch), so the client and the loopback do not dilute
it; a setup's overhead is its figure less ``none``'s. Within a round the setups' batches
are interleaved in slices; the bar is judged on the median over the rounds of each round's
own ratio, the figures shown are medians over the rounds.

Client side, measured the same way the other way round: one plain server (no
interceptor, no logging) and one client process per setup, each pinned to the other CPU,
taking turns in slices; the figure is the client process's CPU time per RPC
(``time.process_time()``, every thread of it), each RPC made in its own log context with a
bound request id, as a service calling another makes it. Setups: a bare channel (``none``),
an interceptor that only hands the call on (``bare``), clue's
(``GrpcClientInterceptor`` / ``aio_grpc_client_interceptors()``, ``call_log_func=log.info``),
OpenTelemetry's client instrumentation with sampling off (``otel``), and both.

The combination a real service runs, on both sides: ``cfg+`` setups configure clue-otel as
the example system does (``otel.configure_opentelemetry(otel.new_config(...))``: its
adaptive sampler at 2 traces a second, error promotion, metrics and spans to the SDK's
console exporters writing to ``/dev/null``) and use OpenTelemetry's interceptor on that
global provider: ``cfg+otel+clue`` (with clue's interceptor) and ``cfg+otel`` (without) are
reported against ``otel`` alone (sampling off, clue-otel not configured); no bar.
``CLUE_BENCH_PROMOTION=0`` leaves error promotion off. ``CLUE_BENCH_BEFORE=<checkout>`` runs
the ``cfg+`` setups a second time, in the same rounds, with that checkout's clue-otel first on
``PYTHONPATH`` (``cfg+otel@before``, ``cfg+otel+clue@before``): an A/B of a clue-otel change.

Bars: clue's overhead per RPC <= 1/3 of OpenTelemetry's, server and client, sync and aio.

Run with ``python3 tools/run.py nox -s bench -- bench_grpc``; ``server``/``client`` and
``sync``/``aio`` among the arguments of a direct run (``.nox/bench/bin/python
packages/clue-log/bench/bench_grpc.py client aio``) run only those.

``--profile [sync|aio]`` (run with the bench session's interpreter,
``.nox/bench/bin/python packages/clue-log/bench/bench_grpc.py --profile``) says where a
setup's server CPU goes per RPC instead: by thread (Linux ``schedstat``), garbage
collections and context switches per 1,000 RPCs, and the wall time spent inside the
interceptors (an outermost timing interceptor less the method's own time). With
``--cprofile`` it also prints the handler thread's functions by own time per RPC
(cProfile, one worker thread; cProfile inflates every call, so compare rows, not totals).
``--profile client [sync|aio]`` profiles the client processes (cProfile, every call they
make) and prints clue's functions, and what grows against ``bare``, by own time per RPC.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc

VARIANTS: tuple[str, ...] = (
    "silent",
    "none",
    "bare",
    "clue",
    "otel",
    "otel+clue",
    "cfg+otel",
    "cfg+otel+clue",
)
CLIENT_VARIANTS: tuple[str, ...] = (
    "none",
    "bare",
    "clue",
    "otel",
    "otel+clue",
    "cfg+otel",
    "cfg+otel+clue",
)
# The example system's clue-otel runs error promotion; CLUE_BENCH_PROMOTION=0 leaves it off.
PROMOTION = os.environ.get("CLUE_BENCH_PROMOTION", "1") != "0"
# A checkout holding an earlier clue-otel (``<dir>/packages/clue-otel/src``): the ``cfg+``
# setups run once more with it first on ``PYTHONPATH``, as ``cfg+otel@before`` and
# ``cfg+otel+clue@before``, in the same run.
BEFORE = os.environ.get("CLUE_BENCH_BEFORE", "")
if BEFORE:
    VARIANTS += ("cfg+otel@before", "cfg+otel+clue@before")
    CLIENT_VARIANTS += ("cfg+otel@before", "cfg+otel+clue@before")
ROUNDS = int(os.environ.get("CLUE_BENCH_ROUNDS", "7"))
RPCS = int(os.environ.get("CLUE_BENCH_RPCS", "2000"))
BAR = 1 / 3
SLICES = 4
SERVICE = "bench.Orders"
RESULTS: list[tuple[str, bool]] = []


def _cpus() -> tuple[set[int] | None, set[int] | None]:
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


def _pin(cpu: set[int] | None) -> Callable[[], None] | None:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, cpu)


# --------------------------------------------------------------------------- server


def _env_for(variant: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """A setup's process environment: an ``@before`` setup imports the earlier clue-otel."""
    env = dict(os.environ if base is None else base)
    if variant.endswith("@before"):
        earlier = os.path.join(BEFORE, "packages", "clue-otel", "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (earlier, env.get("PYTHONPATH")) if p)
    return env


def _configure_clue_otel(name: str) -> None:
    """clue-otel as the example system configures it (``cfg+`` setups): its adaptive sampler
    (2 traces a second), error promotion, metrics (clue-log's ``clue.log.*`` among them) and
    spans, to the SDK's console exporters writing to ``/dev/null``."""
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    from clue import otel

    sink = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    cfg = otel.new_config(
        name,
        "1.0.0",
        ConsoleMetricExporter(out=sink),
        ConsoleSpanExporter(out=sink),
        error_promotion=PROMOTION,
    )
    otel.configure_opentelemetry(cfg)


def _otel_provider(variant: str) -> Any:
    """OpenTelemetry's tracer provider: sampling off, or clue-otel's (the global one)."""
    if variant.startswith("cfg+"):
        return None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    return TracerProvider(sampler=ALWAYS_OFF)


def _interceptors(variant: str, aio: bool) -> list[Any]:
    from clue import log

    out: list[Any] = []
    if "otel" in variant:
        from opentelemetry.instrumentation import grpc as otel_grpc

        make = otel_grpc.aio_server_interceptor if aio else otel_grpc.server_interceptor
        out.append(make(tracer_provider=_otel_provider(variant)))
    if "clue" in variant:
        cls = log.AioGrpcServerInterceptor if aio else log.GrpcServerInterceptor
        out.append(cls(call_log_func=log.info))
    if variant == "bare":
        out.append(_BareAio() if aio else _Bare())
    return out


class _Bare(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """The least a server interceptor does: wrap the unary handler."""

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        def behavior(request: Any, context: Any) -> Any:
            return inner(request, context)

        return handler._replace(unary_unary=behavior)


class _BareAio(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def behavior(request: Any, context: Any) -> Any:
            return await inner(request, context)

        return handler._replace(unary_unary=behavior)


def server_main(kind: str, variant: str) -> None:
    from clue import log

    if variant.startswith("cfg+"):
        _configure_clue_otel("bench-server")
    log.configure(output=open(os.devnull, "wb"), format=log.format_json)  # noqa: SIM115
    own_context = "clue" not in variant
    info, context = log.info, log.context
    probe = _Probe() if os.environ.get("CLUE_BENCH_PROFILE") else None

    def logged(request: bytes) -> bytes:
        if variant == "silent":
            return request
        if own_context:
            with context():
                for i in range(10):
                    info("step", i=i, user="alice")
        else:
            for i in range(10):
                info("step", i=i, user="alice")
        return request

    work = logged if probe is None else probe.timed(logged)

    def cpu(request: bytes, context: Any) -> bytes:
        if probe is not None and request:
            return probe.answer(request, f"{kind}-{variant}")
        return repr(time.process_time()).encode()

    aio = kind == "aio"
    if aio:

        async def unary(request: bytes, context: Any) -> bytes:
            return work(request)

        async def acpu(request: bytes, context: Any) -> bytes:
            return cpu(request, context)

        handlers = {
            "Get": grpc.unary_unary_rpc_method_handler(unary),
            "Cpu": grpc.unary_unary_rpc_method_handler(acpu),
        }
    else:
        handlers = {
            "Get": grpc.unary_unary_rpc_method_handler(lambda r, c: work(r)),
            "Cpu": grpc.unary_unary_rpc_method_handler(cpu),
        }
    generic = grpc.method_handlers_generic_handler(SERVICE, handlers)

    if aio:

        async def serve() -> None:
            outer = [] if probe is None else [probe.aio_interceptor()]
            server = grpc.aio.server(interceptors=outer + _interceptors(variant, True))
            if probe is not None:
                probe.start_cprofile()
            server.add_generic_rpc_handlers((generic,))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            print(port, flush=True)
            await server.wait_for_termination()

        asyncio.run(serve())
    else:
        outer = [] if probe is None else [probe.interceptor()]
        pool = (
            futures.ThreadPoolExecutor(4)
            if probe is None or not probe.cprofile
            else futures.ThreadPoolExecutor(1, initializer=probe.start_cprofile)
        )
        server = grpc.server(pool, interceptors=outer + _interceptors(variant, False))
        server.add_generic_rpc_handlers((generic,))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        print(port, flush=True)
        server.wait_for_termination()


# --------------------------------------------------------------------------- client


def client_main(ports: dict[str, int], rpcs: int) -> None:
    """One round: the server CPU seconds per RPC of each setup, the setups' batches
    interleaved in slices so that a burst of load elsewhere hits them alike."""
    channels = {v: grpc.insecure_channel(f"127.0.0.1:{port}") for v, port in ports.items()}
    try:
        calls = {
            v: (ch.unary_unary(f"/{SERVICE}/Get"), ch.unary_unary(f"/{SERVICE}/Cpu"))
            for v, ch in channels.items()
        }
        for get, _ in calls.values():
            for _ in range(50):  # warm up
                get(b"42")
        spent = dict.fromkeys(ports, 0.0)
        per_slice = max(1, rpcs // SLICES)
        for _ in range(SLICES):
            for v, (get, cpu) in calls.items():
                before = float(cpu(b""))
                for _ in range(per_slice):
                    get(b"42")
                spent[v] += float(cpu(b"")) - before
    finally:
        for ch in channels.values():
            ch.close()
    print(json.dumps({v: t / (per_slice * SLICES) for v, t in spent.items()}))


def measure(kind: str) -> None:
    server_cpu, client_cpu = _cpus()
    procs: dict[str, subprocess.Popen[str]] = {}
    ports: dict[str, int] = {}
    try:
        for v in VARIANTS:
            p = subprocess.Popen(
                [sys.executable, __file__, "--server", kind, v],
                stdout=subprocess.PIPE, text=True, preexec_fn=_pin(server_cpu),  # noqa: PLW1509
                env=_env_for(v),
            )  # fmt: skip
            procs[v] = p
            assert p.stdout is not None
            ports[v] = int(p.stdout.readline())
        samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for r in range(ROUNDS):
            order = dict(
                list(ports.items())[r % len(ports) :] + list(ports.items())[: r % len(ports)]
            )
            res = subprocess.run(
                [sys.executable, __file__, "--client", json.dumps(order), str(RPCS)],
                capture_output=True, text=True, check=True, preexec_fn=_pin(client_cpu),
            )  # fmt: skip
            for v, s in json.loads(res.stdout).items():
                samples[v].append(s)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    m = {v: statistics.median(samples[v]) for v in VARIANTS}
    over = {v: m[v] - m["none"] for v in VARIANTS}
    # The bar is judged on the median of the rounds' own ratios (each round's setups ran
    # interleaved), which a slow round cannot tilt the way it tilts a difference of medians.
    ratios = _ratios(samples, "clue", "otel")
    both = _ratios(samples, "otel+clue", "otel")
    server = "grpc.aio.server" if kind == "aio" else "grpc.server (4 threads)"
    print(f"{kind}: {server}, {ROUNDS} rounds of {RPCS} unary RPCs, server CPU per RPC")
    for v in VARIANTS:
        print(f"  {v:13} {m[v] * 1e6:8.1f} µs  overhead {over[v] * 1e6:7.1f} µs")
    ratio = statistics.median(ratios) if ratios else float("inf")
    ok = ratio <= BAR
    RESULTS.append((f"P5g {kind}", ok))
    if not ratios:
        print(f"  FAIL  P5g {kind}: OpenTelemetry's overhead not measurable")
        return
    print(
        f"  {'PASS' if ok else 'FAIL'}  P5g {kind}: clue's overhead {ratio:.2f}x OpenTelemetry's "
        f"(median of {len(ratios)} rounds' ratios, range {min(ratios):.2f}-{max(ratios):.2f}; "
        f"bar <= 1/3); otel+clue {statistics.median(both):.2f}x otel alone; "
        f"clue with its 10 calls vs a silent app {(m['clue'] - m['silent']) * 1e6:.1f} µs"
    )
    _combined(samples, "server")


def _ratios(samples: dict[str, list[float]], setup: str, against: str) -> list[float]:
    """Each round's own ratio of two setups' overheads over ``none`` (rounds where
    ``against`` shows none are left out)."""
    base = samples["none"]
    return [
        (samples[setup][r] - base[r]) / (samples[against][r] - base[r])
        for r in range(len(base))
        if samples[against][r] > base[r]
    ]


def _spread(ratios: list[float]) -> str:
    if not ratios:
        return "not measurable"
    return f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"


def _combined(samples: dict[str, list[float]], side: str) -> None:
    """The combination a real service runs against OpenTelemetry's interceptor alone
    (sampling off, clue-otel not configured): a report, no bar."""
    promotion = "with" if PROMOTION else "without"
    print(
        f"  combined ({side}, clue-otel configured {promotion} error promotion; medians of "
        f"rounds' ratios to otel's overhead [range]): cfg+otel+clue "
        f"{_spread(_ratios(samples, 'cfg+otel+clue', 'otel'))}; cfg+otel "
        f"{_spread(_ratios(samples, 'cfg+otel', 'otel'))}; otel+clue "
        f"{_spread(_ratios(samples, 'otel+clue', 'otel'))}"
    )
    if "cfg+otel+clue@before" in samples:
        print(
            f"  earlier clue-otel ({BEFORE}), same run: cfg+otel+clue@before "
            f"{_spread(_ratios(samples, 'cfg+otel+clue@before', 'otel'))}; cfg+otel@before "
            f"{_spread(_ratios(samples, 'cfg+otel@before', 'otel'))}; cfg+otel+clue / @before "
            f"{_spread(_ratios(samples, 'cfg+otel+clue', 'cfg+otel+clue@before'))}; "
            f"cfg+otel / @before {_spread(_ratios(samples, 'cfg+otel', 'cfg+otel@before'))}"
        )


# --------------------------------------------------------------------------- client interceptors


class _BareClient(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]  # grpc is untyped
):
    """The least a client interceptor does: hand the call on."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(details, request)


class _BareAioClient(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(details, request)


def _aio_client_interceptors(variant: str) -> list[Any]:
    """An aio client setup's interceptors, outermost first (OpenTelemetry's, then clue's,
    as the example system's channels)."""
    from clue import log

    out: list[Any] = []
    if "otel" in variant:
        from opentelemetry.instrumentation import grpc as otel_grpc

        out.extend(otel_grpc.aio_client_interceptors(tracer_provider=_otel_provider(variant)))
    if "clue" in variant:
        out.extend(log.aio_grpc_client_interceptors(call_log_func=log.info))
    if variant == "bare":
        out.append(_BareAioClient())
    return out


def _sync_channel(variant: str, target: str) -> Any:
    """A sync client setup's channel: clue's interceptor through ``grpc.intercept_channel``,
    OpenTelemetry's outside it through its own ``grpcext`` (as its instrumentor does)."""
    from clue import log

    channel = grpc.insecure_channel(target)
    if "clue" in variant:
        channel = grpc.intercept_channel(channel, log.GrpcClientInterceptor(call_log_func=log.info))
    if variant == "bare":
        channel = grpc.intercept_channel(channel, _BareClient())
    if "otel" in variant:
        from opentelemetry.instrumentation import grpc as otel_grpc
        from opentelemetry.instrumentation.grpc import grpcext

        made = otel_grpc.client_interceptor(tracer_provider=_otel_provider(variant))
        channel = grpcext.intercept_channel(channel, made)
    return channel


def client_worker(kind: str, variant: str, port: int) -> None:
    """One client setup in its own process: each line read on stdin is a batch size; the
    answer is the process's CPU seconds for that many RPCs, each made in its own log
    context (the caller's request) with a bound request id, as a service calling another
    makes them."""
    from clue import log

    if variant.startswith("cfg+"):
        _configure_clue_otel("bench-client")
    log.configure(output=open(os.devnull, "wb"), format=log.format_json)  # noqa: SIM115
    log.bind(request_id="bench-caller-1")  # process-wide: every context inherits it
    context = log.context
    target = f"127.0.0.1:{port}"

    if kind == "aio":
        loop = asyncio.new_event_loop()

        async def open_channel() -> tuple[Any, Any]:
            wanted = _aio_client_interceptors(variant)
            channel = grpc.aio.insecure_channel(target, interceptors=wanted or None)
            return channel, channel.unary_unary(f"/{SERVICE}/Get")

        _channel, get = loop.run_until_complete(open_channel())  # the channel kept open

        async def abatch(n: int) -> float:
            t0 = time.process_time()
            for _ in range(n):
                with context():
                    await get(b"42")
            return time.process_time() - t0

        def batch(n: int) -> float:
            return loop.run_until_complete(abatch(n))
    else:
        sget = _sync_channel(variant, target).unary_unary(f"/{SERVICE}/Get")

        def batch(n: int) -> float:
            t0 = time.process_time()
            for _ in range(n):
                with context():
                    sget(b"42")
            return time.process_time() - t0

    batch(200)  # warm up
    profiled = os.environ.get("CLUE_BENCH_CLIENT_CPROFILE")
    profiler: Any = None
    if profiled:
        import cProfile

        profiler = cProfile.Profile()
    print("ready", flush=True)
    for line in sys.stdin:
        if profiler is not None:
            profiler.enable()
        spent = batch(int(line))
        if profiler is not None:
            profiler.disable()
        print(repr(spent), flush=True)
    if profiler is not None:
        profiler.dump_stats(os.path.join(profiled, f"{kind}-{variant}"))


def measure_client(kind: str) -> None:
    """Client CPU per RPC of each client setup against one plain server: the setups'
    processes take turns in slices, the order rotating per round."""
    samples = _client_rounds(kind, CLIENT_VARIANTS, ROUNDS, dict(os.environ))
    per_slice = max(1, RPCS // SLICES)
    m = {v: statistics.median(samples[v]) for v in CLIENT_VARIANTS}
    client = "grpc.aio channel" if kind == "aio" else "grpc channel"
    print(
        f"{kind} client: {client}, {ROUNDS} rounds of {per_slice * SLICES} unary RPCs, "
        f"client CPU per RPC (each RPC in its own log context)"
    )
    for v in CLIENT_VARIANTS:
        print(f"  {v:13} {m[v] * 1e6:8.1f} µs  overhead {(m[v] - m['none']) * 1e6:7.1f} µs")
    ratios = _ratios(samples, "clue", "otel")
    ratio = statistics.median(ratios) if ratios else float("inf")
    ok = ratio <= BAR
    RESULTS.append((f"P5g client {kind}", ok))
    print(
        f"  {'PASS' if ok else 'FAIL'}  P5g client {kind}: clue's overhead "
        f"{_spread(ratios)} OpenTelemetry's (median of {len(ratios)} rounds' ratios [range]; "
        f"bar <= 1/3); bare {_spread(_ratios(samples, 'bare', 'otel'))}"
    )
    _combined(samples, "client")


def _client_rounds(
    kind: str, variants: tuple[str, ...], rounds: int, env: dict[str, str]
) -> dict[str, list[float]]:
    """Each round's client CPU seconds per RPC of each setup (one process per setup,
    pinned to the other CPU than the server's; slices interleaved, the order rotating)."""
    server_cpu, client_cpu = _cpus()
    server: subprocess.Popen[str] | None = None
    workers: dict[str, subprocess.Popen[str]] = {}
    samples: dict[str, list[float]] = {v: [] for v in variants}
    per_slice = max(1, RPCS // SLICES)
    try:
        server = subprocess.Popen(
            [sys.executable, __file__, "--server", kind, "silent"],
            stdout=subprocess.PIPE, text=True, preexec_fn=_pin(server_cpu),  # noqa: PLW1509
        )  # fmt: skip
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        for v in variants:
            workers[v] = subprocess.Popen(
                [sys.executable, __file__, "--client-worker", kind, v, port],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                env=_env_for(v, env),
                preexec_fn=_pin(client_cpu),  # noqa: PLW1509
            )  # fmt: skip
        for w in workers.values():
            assert w.stdout is not None
            if w.stdout.readline().strip() != "ready":
                raise RuntimeError("a client setup did not start")
        for r in range(rounds):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            spent = dict.fromkeys(variants, 0.0)
            for _ in range(SLICES):
                for v in order:
                    w = workers[v]
                    assert w.stdin is not None
                    assert w.stdout is not None
                    w.stdin.write(f"{per_slice}\n")
                    w.stdin.flush()
                    spent[v] += float(w.stdout.readline())
            for v in variants:
                samples[v].append(spent[v] / (per_slice * SLICES))
    finally:
        for w in workers.values():
            if w.stdin is not None:
                w.stdin.close()
        for w in workers.values():  # they exit at the end of their stdin (profiles dumped)
            try:
                w.wait(timeout=60)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        if server is not None:
            server.kill()
            server.wait()
    return samples


def profile_client_side(kind: str) -> None:
    """``--profile client``: where clue's client interceptor spends its time per RPC,
    function by function (cProfile in each client process; compare rows, not totals)."""
    import pstats
    import tempfile

    variants = ("none", "bare", "clue", "otel")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CLUE_BENCH_CLIENT_CPROFILE": tmp}
        samples = _client_rounds(kind, variants, 1, env)
        stats = {v: pstats.Stats(os.path.join(tmp, f"{kind}-{v}")).stats for v in variants}  # type: ignore[attr-defined]
    n = max(1, RPCS // SLICES) * SLICES
    print(f"{kind} client, cProfile over {n} RPCs per setup (inflated: compare rows)")
    for v in variants:
        print(f"  {v:5} client CPU {samples[v][0] * 1e6:6.1f} µs per RPC under cProfile")

    def where(key: tuple[str, int, str]) -> str:
        file, line, fn = key
        return f"{file.rsplit('site-packages/', 1)[-1].rsplit('src/', 1)[-1]}:{line}({fn})"

    clue = stats["clue"]
    print("  clue's functions, cumulative (own) time per RPC")
    for key, (_, calls, own, cum, _) in sorted(clue.items(), key=lambda kv: -kv[1][3]):
        if "clue/log/" in key[0] and cum >= 0.5e-6 * n:
            print(
                f"    {cum / n * 1e6:6.2f} ({own / n * 1e6:5.2f}) µs {calls / n:4.1f}x {where(key)}"
            )
    bare = {k: row[2] for k, row in stats["bare"].items()}
    grown = sorted(
        (
            (row[2] - bare.get(k, 0.0), row[1], k)
            for k, row in clue.items()
            if "clue/log/" not in k[0]
        ),
        key=lambda x: -x[0],
    )
    print("  other functions whose own time grows most against bare, per RPC")
    for own, calls, key in grown[:12]:
        print(f"    {own / n * 1e6:6.2f} µs {calls / n:4.1f}x {where(key)}")


# --------------------------------------------------------------------------- profile


class _Probe:
    """Where a server's CPU goes per RPC (``--profile``): threads, GC, switches, interceptors."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.outer = self.inner = 0  # ns in the interceptors (and the method), the method
        self.cprofile = bool(os.environ.get("CLUE_BENCH_CPROFILE"))
        self.profiler: Any = None
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            self.collections[info["generation"]] += 1

    def timed(self, fn: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
        def method(request: bytes) -> bytes:
            t0 = time.perf_counter_ns()
            try:
                return fn(request)
            finally:
                self.inner += time.perf_counter_ns() - t0

        return method

    def interceptor(self) -> Any:
        probe = self

        class Outer(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
            def intercept_service(self, continuation: Any, details: Any) -> Any:
                handler = continuation(details)
                inner = handler.unary_unary if handler is not None else None
                if inner is None:
                    return handler

                def behavior(request: Any, context: Any) -> Any:
                    t0 = time.perf_counter_ns()
                    try:
                        return inner(request, context)
                    finally:
                        probe.outer += time.perf_counter_ns() - t0

                return handler._replace(unary_unary=behavior)

        return Outer()

    def aio_interceptor(self) -> Any:
        probe = self

        class Outer(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
            async def intercept_service(self, continuation: Any, details: Any) -> Any:
                handler = await continuation(details)
                inner = handler.unary_unary if handler is not None else None
                if inner is None:
                    return handler

                async def behavior(request: Any, context: Any) -> Any:
                    t0 = time.perf_counter_ns()
                    try:
                        return await inner(request, context)
                    finally:
                        probe.outer += time.perf_counter_ns() - t0

                return handler._replace(unary_unary=behavior)

        return Outer()

    def start_cprofile(self) -> None:
        if self.cprofile:
            import cProfile

            self.profiler = cProfile.Profile()
            self.profiler.enable()

    def answer(self, request: bytes, name: str) -> bytes:
        if request == b"cprofile":  # in the profiled thread (the only worker, or the loop)
            self.profiler.disable()
            self.profiler.dump_stats(os.path.join(os.environ["CLUE_BENCH_PROFILE"], name))
            self.start_cprofile()
            return b"{}"
        names = {t.native_id: t.name for t in threading.enumerate()}
        threads: dict[str, int] = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    ns = int(f.read().split()[0])
                with open(f"/proc/self/task/{tid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            group = _thread_group(names.get(int(tid), comm))
            threads[group] = threads.get(group, 0) + ns
        switches = 0
        with open("/proc/self/status") as f:
            for line in f:
                if "ctxt_switches" in line:
                    switches += int(line.split(":")[1])
        return json.dumps(
            {
                "cpu": time.process_time_ns(),
                "threads": threads,
                "gc": self.collections,
                "switches": switches,
                "outer": self.outer,
                "inner": self.inner,
            }
        ).encode()


def _thread_group(name: str) -> str:
    if name.startswith("ThreadPoolExecutor"):
        return "handler threads"
    if name == "MainThread":
        return "main (the event loop on aio)"
    if "_serve" in name:
        return "grpc server loop"
    return name  # event_engine, grpc timers...


def profile_client(ports: dict[str, int], rpcs: int) -> None:
    """``--profile``'s client: the probe's counters per RPC, setups interleaved in slices."""
    channels = {v: grpc.insecure_channel(f"127.0.0.1:{port}") for v, port in ports.items()}
    rows: dict[str, list[dict[str, Any]]] = {v: [] for v in ports}
    try:
        calls = {
            v: (ch.unary_unary(f"/{SERVICE}/Get"), ch.unary_unary(f"/{SERVICE}/Cpu"))
            for v, ch in channels.items()
        }
        for get, _ in calls.values():
            for _ in range(200):  # warm up
                get(b"42")
        per_slice = max(1, rpcs // SLICES)
        for _ in range(SLICES):
            for v, (get, stats) in calls.items():
                a = json.loads(stats(b"stats"))
                for _ in range(per_slice):
                    get(b"42")
                b = json.loads(stats(b"stats"))
                rows[v].append(_per_rpc(a, b, per_slice))
        if os.environ.get("CLUE_BENCH_CPROFILE"):
            for get, stats in calls.values():
                stats(b"cprofile")  # start afresh
                for _ in range(rpcs):
                    get(b"42")
                stats(b"cprofile")
    finally:
        for ch in channels.values():
            ch.close()
    print(json.dumps(rows))


def _per_rpc(a: dict[str, Any], b: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "cpu": (b["cpu"] - a["cpu"]) / n / 1e3,
        "threads": {k: (b["threads"][k] - a["threads"].get(k, 0)) / n / 1e3 for k in b["threads"]},
        "gc": [(y - x) * 1000 / n for x, y in zip(a["gc"], b["gc"], strict=True)],
        "switches": (b["switches"] - a["switches"]) * 1000 / n,
        "interceptors": (b["outer"] - a["outer"] - (b["inner"] - a["inner"])) / n / 1e3,
    }


def profile(kind: str) -> None:
    """Print where each setup's server CPU goes per RPC (medians over the slices)."""
    import pstats
    import tempfile

    variants = ("none", "bare", "clue", "otel")
    server_cpu, client_cpu = _cpus()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CLUE_BENCH_PROFILE": tmp}
        procs: dict[str, subprocess.Popen[str]] = {}
        ports: dict[str, int] = {}
        try:
            for v in variants:
                p = subprocess.Popen(
                    [sys.executable, __file__, "--server", kind, v], env=env,
                    stdout=subprocess.PIPE, text=True, preexec_fn=_pin(server_cpu),  # noqa: PLW1509
                )  # fmt: skip
                procs[v] = p
                assert p.stdout is not None
                ports[v] = int(p.stdout.readline())
            res = subprocess.run(
                [sys.executable, __file__, "--profile-client", json.dumps(ports), str(RPCS)],
                env=env, capture_output=True, text=True, check=True, preexec_fn=_pin(client_cpu),
            )  # fmt: skip
        finally:
            for p in procs.values():
                p.kill()
                p.wait()
        rows = json.loads(res.stdout)
        med = statistics.median
        print(f"{kind}: per RPC, medians of {SLICES} slices of {RPCS // SLICES} RPCs")
        for v in variants:
            r = rows[v]
            threads = {k: med(x["threads"].get(k, 0.0) for x in r) for k in r[-1]["threads"]}
            shown = ", ".join(f"{k} {t:.1f}" for k, t in sorted(threads.items()) if t >= 0.05)
            gcs = "/".join(f"{med(x['gc'][g] for x in r):.1f}" for g in range(3))
            print(
                f"  {v:5} CPU {med(x['cpu'] for x in r):6.1f} µs ({shown}); in the "
                f"interceptors {med(x['interceptors'] for x in r):5.1f} µs; GC gen0/1/2 "
                f"{gcs} and {med(x['switches'] for x in r):.1f} switches per 1,000 RPCs"
            )
        if os.environ.get("CLUE_BENCH_CPROFILE"):
            for v in variants:
                stats = pstats.Stats(os.path.join(tmp, f"{kind}-{v}")).stats  # type: ignore[attr-defined]
                top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:25]
                print(f"  cProfile {v}: own time per RPC (inflated by cProfile)")
                for (file, line, fn), (_, calls, own, _cum, _) in top:
                    where = f"{file.rsplit('site-packages/', 1)[-1]}:{line}({fn})"
                    print(f"    {own / RPCS * 1e6:6.2f} µs {calls / RPCS:5.1f}x {where}")


def main() -> int:
    if sys.argv[1:2] == ["--server"]:
        server_main(sys.argv[2], sys.argv[3])
        return 0
    if sys.argv[1:2] == ["--client"]:
        client_main(json.loads(sys.argv[2]), int(sys.argv[3]))
        return 0
    if sys.argv[1:2] == ["--client-worker"]:
        client_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    if sys.argv[1:2] == ["--profile-client"]:
        profile_client(json.loads(sys.argv[2]), int(sys.argv[3]))
        return 0
    if "--profile" in sys.argv[1:] and "client" in sys.argv[1:]:
        for kind in [k for k in ("sync", "aio") if k in sys.argv[1:]] or ["sync", "aio"]:
            profile_client_side(kind)
        return 0
    if "--profile" in sys.argv[1:]:
        if "--cprofile" in sys.argv[1:]:
            os.environ["CLUE_BENCH_CPROFILE"] = "1"
        kinds = [k for k in ("sync", "aio") if k in sys.argv[1:]] or ["sync", "aio"]
        for kind in kinds:
            profile(kind)
        return 0
    import opentelemetry.instrumentation.grpc as otel_grpc  # noqa: F401 - installed?

    print(
        f"clue-log gRPC benchmark — Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, grpcio {grpc.__version__}"
    )
    kinds = [k for k in ("sync", "aio") if k in sys.argv[1:]] or ["sync", "aio"]
    sides = [s for s in ("server", "client") if s in sys.argv[1:]] or ["server", "client"]
    for kind in kinds:
        if "server" in sides:
            measure(kind)
        if "client" in sides:
            measure_client(kind)
    failed = [name for name, ok in RESULTS if not ok]
    print(f"bars: {len(RESULTS) - len(failed)} met, {len(failed)} not met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
