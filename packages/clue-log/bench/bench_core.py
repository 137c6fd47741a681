"""clue-log core benchmarks: SPEC §10 bars P1-P4 and P6, measured side by side in one run.

Run with ``python3 tools/run.py bench`` (or ``python bench_core.py`` with clue-log,
structlog and orjson installed). Each bar prints the measured figures, the ratio and
PASS/FAIL; the exit status is non-zero when a bar fails. Timings are medians of many
rounds; ratios compare measurements taken in the same process, minutes apart at most.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import logging.handlers
import os
import platform
import statistics
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from clue import log

ROUNDS = int(os.environ.get("CLUE_BENCH_ROUNDS", "25"))
DEVNULL_T = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole run
DEVNULL_B = open(os.devnull, "wb")  # noqa: SIM115 - lives for the whole run
RESULTS: list[tuple[str, bool, str]] = []


def per_call(fn: Callable[[], Any], number: int, setup: Callable[[], Any] | None = None) -> float:
    """Median seconds per call of ``fn`` over ROUNDS rounds of ``number`` calls."""
    samples = []
    for _ in range(ROUNDS):
        if setup is not None:
            setup()
        gc.collect()
        t = timeit.Timer(fn).timeit(number)
        samples.append(t / number)
    return statistics.median(samples)


def ns(s: float) -> str:
    return f"{s * 1e9:,.0f} ns" if s < 1e-5 else f"{s * 1e6:,.2f} µs"


def bar(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))
    print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def reset_structlog() -> None:
    structlog.reset_defaults()


def structlog_json_logger(orjson_: bool) -> Any:
    if orjson_:
        return structlog.wrap_logger(
            structlog.BytesLogger(DEVNULL_B),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        )
    return structlog.wrap_logger(
        structlog.PrintLogger(DEVNULL_T),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )


def interleaved(
    fns: dict[str, Callable[[], Any]], number: int, setup: Callable[[], Any] | None = None
) -> dict[str, float]:
    """Median seconds per call of each function, rounds interleaved so drift hits all alike.

    Timed in this thread's CPU time: on a machine shared with other work, time spent
    descheduled is not the function's.
    """
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(ROUNDS * 4):
        for name, fn in fns.items():
            if setup is not None:
                setup()
            samples[name].append(timeit.Timer(fn, timer=time.thread_time).timeit(number) / number)
    return {name: statistics.median(s) for name, s in samples.items()}


def p1() -> None:
    print("P1  log.info('msg', a=1, b=2, c=3) buffered inside a context")
    reset_structlog()
    dropped_logger = structlog.make_filtering_bound_logger(logging.WARNING)(
        structlog.PrintLogger(DEVNULL_T), [], {}
    )
    sl = structlog_json_logger(False)
    js = per_call(lambda: sl.info("msg", a=1, b=2, c=3), 1000)
    log.configure(output=DEVNULL_B, format=log.format_json)
    info, drop = log.info, dropped_logger.info
    got = interleaved(
        {
            "dropped": lambda: drop("msg", a=1, b=2, c=3),
            "clue": lambda: info("msg", a=1, b=2, c=3),
        },
        900,
        setup=lambda: log.context().__enter__(),
    )
    dropped, clue = got["dropped"], got["clue"]
    print(f"      structlog dropped call (filtering bound logger): {ns(dropped)}")
    print(f"      structlog rendering JSON to a file:              {ns(js)}")
    print(f"      clue buffered call:                               {ns(clue)}")
    bar("P1a clue <= 3x structlog dropped call", clue <= 3 * dropped, f"{clue / dropped:.2f}x")
    bar("P1b clue >= 10x cheaper than structlog JSON", js >= 10 * clue, f"{js / clue:.1f}x cheaper")


def p2() -> None:
    print("P2  structlog.get_logger().info(...) through the clue chain, buffered")
    reset_structlog()
    # A level filter that drops info, and structlog's cheapest logger factory (clue's own
    # factory returns a shared do-nothing logger, so this keeps the comparison strict).
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.ReturnLoggerFactory(),
    )
    proxy = structlog.get_logger()
    dropped = per_call(lambda: proxy.info("msg", a=1, b=2, c=3), 1000)
    log.configure(output=DEVNULL_B, format=log.format_json)
    proxy = structlog.get_logger()
    clue = per_call(
        lambda: proxy.info("msg", a=1, b=2, c=3), 900, setup=lambda: log.context().__enter__()
    )
    print(f"      proxy dropped call:        {ns(dropped)}")
    print(f"      proxy through clue, buffered: {ns(clue)}")
    bar(
        "P2  clue chain <= 2x the proxy's dropped call",
        clue <= 2 * dropped,
        f"{clue / dropped:.2f}x",
    )


LOGGER = structlog.get_logger()  # the module-level proxy structlog users write


def p2_request() -> None:
    print("P2  a request of 10 buffered calls: module-level structlog proxy vs log.info")
    reset_structlog()
    log.configure(output=DEVNULL_B, format=log.format_json)
    context, info, proxy = log.context, log.info, LOGGER

    def clue_request() -> None:
        with context():
            for i in range(10):
                info("step", i=i, user="alice")

    def proxy_request() -> None:
        with context():
            for i in range(10):
                proxy.info("step", i=i, user="alice")

    def bound_request() -> None:
        with context():
            bound = proxy.bind(user="alice")
            for i in range(10):
                bound.info("step", i=i)

    got = interleaved({"clue": clue_request, "proxy": proxy_request, "bound": bound_request}, 100)
    c, p, b = got["clue"], got["proxy"], got["bound"]
    print(f"      log.info x10:                          {ns(c)}")
    print(f"      module-level proxy .info x10:          {ns(p)}")
    print(f"      proxy.bind(user=...) once, .info x10:  {ns(b)}")
    bar("P2  module-level proxy <= 1.5x log.info per request", p <= 1.5 * c, f"{p / c:.2f}x")
    bar("P2b bound once per request <= 1.3x log.info", b <= 1.3 * c, f"{b / c:.2f}x")


def p2c() -> None:
    print("P2c the README's hand-built chain with log.buffering_wrapper_class, buffered")
    reset_structlog()
    out = io.StringIO()

    def chain(clue: bool) -> list[Any]:
        stamper = log.TimeStamper if clue else structlog.processors.TimeStamper
        return [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ]

    log.configure(output=DEVNULL_B, format=log.format_json)
    info = log.info
    structlog.configure(
        processors=chain(True),
        wrapper_class=log.buffering_wrapper_class(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    logger = structlog.get_logger()

    def clue_request() -> None:
        with log.context():
            for i in range(10):
                info("step", i=i, user="alice")

    def chain_request() -> None:
        with log.context():
            for i in range(10):
                logger.info("step", i=i, user="alice")

    got = interleaved({"clue": clue_request, "chain": chain_request}, 100)
    c, h = got["clue"], got["chain"]
    print(f"      log.info x10:                      {ns(c)}")
    print(f"      your chain, clue's wrapper class x10: {ns(h)}")
    bar("P2c hand-built chain <= 2x log.info", h <= 2 * c, f"{h / c:.2f}x")
    # The same entries, flushed, against the same chain without clue's processor.
    out.seek(0)
    out.truncate()
    with log.context():
        for i in range(3):
            logger.info("step", i=i, user="alice")
        logger.error("failed")
    flushed = [orjson.loads(x) for x in out.getvalue().splitlines()]
    structlog.configure(
        processors=chain(False), wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG)
    )
    out.seek(0)
    out.truncate()
    own = structlog.get_logger()  # cached loggers keep their chain: a new one
    for i in range(3):
        own.info("step", i=i, user="alice")
    own.error("failed")
    plain = [orjson.loads(x) for x in out.getvalue().splitlines()]
    same = [{k: v for k, v in d.items() if k != "timestamp"} for d in flushed] == [
        {k: v for k, v in d.items() if k != "timestamp"} for d in plain
    ]
    bar("P2c flushed entries = the chain's own (timestamps aside)", same, f"{len(flushed)} lines")


def p3() -> None:
    print("P3  a successful request logging 10 buffered entries")
    reset_structlog()
    sl = structlog_json_logger(False)

    def structlog_request() -> None:
        for i in range(10):
            sl.info("step", i=i, user="alice")

    handler = logging.handlers.MemoryHandler(
        capacity=100_000, flushLevel=logging.ERROR, target=logging.StreamHandler(DEVNULL_T)
    )
    std = logging.getLogger("bench.memory")
    std.handlers = [handler]
    std.setLevel(logging.DEBUG)
    std.propagate = False

    def memory_handler_request() -> None:
        for i in range(10):
            std.info("step %d", i, extra={"user": "alice"})
        with handler.lock:  # a successful request discards its buffer
            handler.buffer.clear()

    log.configure(output=DEVNULL_B, format=log.format_json)
    context, info = log.context, log.info

    def clue_request() -> None:
        with context():
            for i in range(10):
                info("step", i=i, user="alice")

    s = per_call(structlog_request, 100)
    m = per_call(memory_handler_request, 100)
    c = per_call(clue_request, 100)
    print(f"      structlog writing 10 JSON lines: {ns(s)}")
    print(f"      stdlib MemoryHandler, 10 records: {ns(m)}")
    print(f"      clue, 10 buffered entries:        {ns(c)}")
    bar("P3a >= 10x cheaper than structlog JSON", s >= 10 * c, f"{s / c:.1f}x cheaper")
    bar("P3b >= 5x cheaper than MemoryHandler", m >= 5 * c, f"{m / c:.1f}x cheaper")


class CountingSink(io.RawIOBase):
    writes = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.writes += 1
        return len(b)


def p4() -> None:
    print("P4  flushing 10 buffered entries as JSON on error")
    reset_structlog()
    sl = structlog_json_logger(True)

    def structlog_orjson() -> None:
        for i in range(10):
            sl.info("step", i=i, user="alice")
        sl.error("failed", err="boom")

    sink = CountingSink()
    log.configure(output=sink, format=log.format_json)
    context, info, error = log.context, log.info, log.error

    def clue_flush() -> None:
        with context():
            for i in range(10):
                info("step", i=i, user="alice")
            error("failed", err="boom")

    s = per_call(structlog_orjson, 100)
    sink.writes = 0
    c = per_call(clue_flush, 100)
    writes_per_flush = sink.writes / (ROUNDS * 100)
    print(f"      structlog + orjson, 11 lines one by one: {ns(s)}")
    print(f"      clue, 10 buffered + error:               {ns(c)}")
    bar("P4a no slower than structlog (orjson)", c <= s, f"{c / s:.2f}x its time")
    # The error entry itself is one more write after the flush's single write.
    bar(
        "P4b one write() per flush",
        writes_per_flush == 2,
        f"{writes_per_flush:g} writes (flush + error line)",
    )


def p6() -> None:
    print("P6  memory")
    log.configure(output=DEVNULL_B, format=log.format_json)
    context, info = log.context, log.info

    def requests(n: int) -> None:
        for i in range(n):
            with context():
                log.bind(request_id=i)
                for j in range(5):
                    info("step", j=j, payload=[1, 2, 3])

    requests(5_000)
    gc.collect()
    tracemalloc.start()
    requests(1_000)
    gc.collect()
    base, _ = tracemalloc.get_traced_memory()
    requests(100_000)
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth = after - base
    bar("P6a 100 000 successful requests: no growth", growth < 64 * 1024, f"{growth:,} bytes")

    with context() as ctx:
        for i in range(1_000_000):
            info("spam", i=i)
        held = len(ctx.req.buf or ())
    bar(
        "P6b one context holds <= max_buffered entries",
        held <= 1000,
        f"{held} after 1 000 000 calls",
    )

    async def open_contexts(n: int, with_log_context: bool) -> int:
        gate = asyncio.Event()
        all_started = asyncio.Event()
        started = 0

        def arrived() -> None:
            nonlocal started
            started += 1
            if started == n:
                all_started.set()

        async def request() -> None:
            if with_log_context:
                with context():
                    log.bind(request_id="abc123")
                    info("received")
                    arrived()
                    await gate.wait()
            else:
                arrived()
                await gate.wait()

        gc.collect()
        tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        tasks = [asyncio.ensure_future(request()) for _ in range(n)]
        await all_started.wait()
        gc.collect()
        during, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        gate.set()
        await asyncio.gather(*tasks)
        return during - before

    n = 10_000
    plain = asyncio.run(open_contexts(n, False))
    with_ctx = asyncio.run(open_contexts(n, True))
    per = (with_ctx - plain) / n
    bar("P6c 10 000 concurrent open contexts <= 2 KiB each", per <= 2048, f"{per:,.0f} bytes each")


def main() -> int:
    print(
        f"clue-log core benchmarks — Python {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {ROUNDS} rounds (medians)"
    )
    start = time.perf_counter()
    for fn in (p1, p2, p2_request, p2c, p3, p4, p6):
        fn()
    failed = [name for name, ok, _ in RESULTS if not ok]
    elapsed = time.perf_counter() - start
    print(f"bars: {len(RESULTS) - len(failed)} met, {len(failed)} not met ({elapsed:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
