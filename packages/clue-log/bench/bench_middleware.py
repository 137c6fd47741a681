"""clue-log middleware benchmark: SPEC §10 bar P5, measured side by side in one run.

Per-request overhead of ``log.ASGIMiddleware`` and ``log.WSGIMiddleware`` over a bare app,
against OpenTelemetry's ASGI/WSGI middleware with sampling off. Requests are driven
in-process (no sockets), as the server would: the ASGI app is awaited with a realistic
scope, the WSGI body is iterated and closed. clue's start/end lines are measured buffered
(``request_log_func=log.info``, the P5 bar) and written by the default ``log.print`` to a
null sink (for information). Timings are medians of ROUNDS rounds; every variant runs in
the same process, interleaved round by round, so the ratios compare like with like.

Run with ``python3 tools/run.py bench`` (or ``python bench_middleware.py`` with clue-log,
opentelemetry-sdk and opentelemetry-instrumentation-asgi/-wsgi installed).
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from clue import log

try:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OtelASGI
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OtelWSGI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
except ImportError as exc:  # the comparison is the point: no silent fallback
    sys.exit(
        f"bench_middleware needs opentelemetry-sdk and opentelemetry-instrumentation-asgi/"
        f"-wsgi installed: {exc}"
    )

ROUNDS = int(os.environ.get("CLUE_BENCH_ROUNDS", "15"))
REQUESTS = int(os.environ.get("CLUE_BENCH_REQUESTS", "2000"))
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole run
BAR = 5.0  # clue's overhead must be at most 1/BAR of OpenTelemetry's
RESULTS: list[tuple[str, bool]] = []

HEADERS = [
    (b"host", b"orders.internal:8080"),
    (b"user-agent", b"bench/1.0"),
    (b"accept", b"application/json"),
    (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
]


# --------------------------------------------------------------------------- ASGI


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello, world"})


def asgi_scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/orders/42",
        "raw_path": b"/orders/42",
        "query_string": b"verbose=1",
        "root_path": "",
        "headers": HEADERS,
        "client": ("10.0.0.7", 51234),
        "server": ("10.0.0.1", 8080),
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


def asgi_timer(app: Any) -> Callable[[], float]:
    loop = asyncio.new_event_loop()

    async def batch() -> float:
        scope = asgi_scope()
        t = time.perf_counter()
        for _ in range(REQUESTS):
            await app(dict(scope), _receive, _send)
        return (time.perf_counter() - t) / REQUESTS

    return lambda: loop.run_until_complete(batch())


# --------------------------------------------------------------------------- WSGI


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello, world"]


def wsgi_environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/orders/42",
        "QUERY_STRING": "verbose=1",
        "SERVER_NAME": "10.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "REMOTE_PORT": "51234",
        "HTTP_HOST": "orders.internal:8080",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_ACCEPT": "application/json",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def _write(data: bytes) -> None:
    return None


def wsgi_timer(app: Any) -> Callable[[], float]:
    def batch() -> float:
        environ = wsgi_environ()
        t = time.perf_counter()
        for _ in range(REQUESTS):
            body = app(dict(environ), _start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return (time.perf_counter() - t) / REQUESTS

    return batch


# --------------------------------------------------------------------------- runs


def medians(timers: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Median seconds per request of each variant, rounds interleaved across variants."""
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for fn in timers.values():
        fn()  # warm-up
    for _ in range(ROUNDS):
        for name, fn in timers.items():
            gc.collect()
            samples[name].append(fn())
    return {name: statistics.median(s) for name, s in samples.items()}


def us(s: float) -> str:
    return f"{s * 1e6:7.2f} µs"


def report(kind: str, m: dict[str, float]) -> None:
    bare = m["bare"]
    otel = m["otel"] - bare
    print(f"{kind} (median per request over {ROUNDS} rounds of {REQUESTS} requests)")
    print(f"  bare app                              {us(bare)}")
    print(f"  OpenTelemetry middleware, sampling off {us(m['otel'])}  overhead {us(otel)}")
    for name, label in (
        ("clue_info", "log.info (buffered)"),
        ("clue_print", "log.print (null sink)"),
    ):
        over = m[name] - bare
        ratio = otel / over if over > 0 else float("inf")
        print(
            f"  clue, start/end via {label:22}{us(m[name])}  overhead {us(over)}"
            f"  = 1/{ratio:.1f} of OpenTelemetry's"
        )
    over = m["clue_info"] - bare
    ok = over * BAR <= otel
    RESULTS.append((f"P5 {kind}", ok))
    print(
        f"  {'PASS' if ok else 'FAIL'}  P5 {kind}: clue's buffered overhead {us(over).strip()} "
        f"<= 1/{BAR:g} of OpenTelemetry's {us(otel).strip()}"
    )


def main() -> int:
    print(f"clue-log middleware bench: Python {platform.python_version()}, {platform.machine()}")
    tracer_provider = TracerProvider(sampler=ALWAYS_OFF)
    log.configure(output=DEVNULL, format=log.format_text)

    for kind, timer, app, otel_mw, clue_mw in (
        ("ASGI", asgi_timer, asgi_app, OtelASGI, log.ASGIMiddleware),
        ("WSGI", wsgi_timer, wsgi_app, OtelWSGI, log.WSGIMiddleware),
    ):
        variants = {
            "bare": timer(app),
            "otel": timer(otel_mw(app, tracer_provider=tracer_provider)),
            "clue_info": timer(clue_mw(app, request_log_func=log.info)),
            "clue_print": timer(clue_mw(app)),
        }
        report(kind, medians(variants))

    failed = [name for name, ok in RESULTS if not ok]
    print("bench_middleware:", "FAIL " + ", ".join(failed) if failed else "all bars PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
