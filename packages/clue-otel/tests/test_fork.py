"""Fork safety: a child forked while another thread holds one of clue-otel's locks works at once.

Each test holds one lock in a second thread (deterministically: the fork happens while
the thread is known to hold it), forks, and has the child use the object that owns the
lock. Without re-creation after fork the child would wait forever on a lock whose owner
does not exist in it; the parent polls the child with a deadline and kills it if it hangs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision

from clue.otel import (
    AdaptiveSampler,
    ErrorPromotionProcessor,
    _bounded,
    _config,
    _switch,
    configure_opentelemetry,
    new_config,
    reset_opentelemetry,
)
from clue.otel.testing import OTLPReceiver

pytestmark = [
    # Python 3.12+ warns that forking a multi-threaded process may deadlock: that is the
    # very situation under test.
    pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning"),
]


@contextmanager
def held(lock: Any) -> Iterator[None]:
    """Hold ``lock`` in another thread for the duration of the block."""
    acquired, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            acquired.set()
            release.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert acquired.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def run_in_child(action: Callable[[], bool]) -> int:
    """Fork, run ``action`` in the child; its exit status (0: True), or -1 if it hung."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            code = 0 if action() else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        threading.Event().wait(0.01)  # polling with a deadline, not waiting on luck
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


def test_sampler_decides_in_a_child_forked_while_its_lock_is_held() -> None:
    """The sampler's lock is re-created and its window starts afresh in the child."""
    sampler = AdaptiveSampler(1, 5)
    with held(sampler._lock):

        def child() -> bool:
            result = sampler.should_sample(None, 12345, "child")
            return result.decision is Decision.RECORD_AND_SAMPLE

        assert run_in_child(child) == 0


def test_promotion_processor_works_in_a_child_forked_while_its_lock_is_held() -> None:
    """The promotion processor's lock is re-created and the parent's held traces are gone."""
    processor = ErrorPromotionProcessor(SimpleSpanProcessor(InMemorySpanExporter()))
    with held(processor._lock):

        def child() -> bool:
            stats = processor.stats()
            return (stats.held_traces, stats.held_spans) == (0, 0)

        assert run_in_child(child) == 0


def test_configuration_works_in_a_child_forked_while_its_lock_is_held() -> None:
    """configure_opentelemetry and reset work in a child forked while configuring."""
    with held(_config._STATE.lock):

        def child() -> bool:
            configure_opentelemetry(new_config("child", "1"), shutdown_at_exit=False)
            reset_opentelemetry(timeout=1)
            return True

        assert run_in_child(child) == 0


def test_config_shutdown_works_in_a_child_forked_while_its_lock_is_held() -> None:
    """Config.shutdown takes its lock: a fresh one in the child."""
    cfg = new_config("svc", "1")
    with held(cfg._lock):
        assert run_in_child(lambda: cfg.shutdown(1)) == 0


def test_meters_work_in_a_child_forked_while_their_locks_are_held() -> None:
    """The switchable meter provider's and meters' locks are re-created."""
    meter = _switch.METER_PROVIDER.get_meter("fork-test")
    with held(_switch.METER_PROVIDER._lock), held(meter._lock):  # type: ignore[attr-defined]

        def child() -> bool:
            _switch.METER_PROVIDER.get_meter("in-child")
            meter.create_observable_gauge("g", callbacks=[lambda options: []])
            return True

        assert run_in_child(child) == 0


def test_bounded_shutdown_works_in_a_child_forked_while_its_lock_is_held() -> None:
    """A bounded shutdown helper called in the child does not wait on the parent's lock."""
    shutdown = _bounded.bounded(lambda: None, "test")
    with held(shutdown._lock):
        assert run_in_child(lambda: shutdown(1)) == 0


def test_logs_work_in_a_child_forked_while_the_logger_providers_locks_are_held() -> None:
    """The SDK logger provider's locks are re-created: the child takes loggers and exports."""
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

    exporter = InMemoryLogRecordExporter()
    cfg = new_config("svc", "1", log_exporter=exporter)
    provider: Any = cfg.logger_provider
    multi = provider._multi_log_record_processor
    with held(provider._logger_cache_lock), held(provider._active_loggers_lock), held(multi._lock):

        def child() -> bool:
            cfg.logger_provider.get_logger("in-child").emit(body="child")
            flushed = cfg.force_flush(5)
            return flushed and [r.log_record.body for r in exporter.get_finished_logs()] == [
                "child"
            ]

        assert run_in_child(child) == 0
    cfg.shutdown(2)


_FORKED_WORKER = textwrap.dedent(
    """
    import os, sys
    from opentelemetry import _logs
    from clue import otel

    exporter, _ = otel.new_http_log_exporter(endpoint=sys.argv[1])
    cfg = otel.new_config("svc", "1", log_exporter=exporter)
    otel.configure_opentelemetry(cfg, shutdown_timeout=5)
    logger = _logs.get_logger("app")
    logger.emit(body="parent before fork")  # queued: the batch delay is long
    pid = os.fork()
    if pid == 0:
        logger.emit(body="child")
        os._exit(0 if cfg.shutdown(5) else 1)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
    logger.emit(body="parent after fork")
    """
)


def test_a_forked_worker_exports_its_own_log_records_once() -> None:
    """Records of a forked worker arrive; the parent's queued ones are exported once, by it."""
    with OTLPReceiver() as rx:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["OTEL_BLRP_SCHEDULE_DELAY"] = "600000"
        result = subprocess.run(
            [sys.executable, "-c", _FORKED_WORKER, rx.http_logs_endpoint],
            env=env,
            check=False,
            timeout=60,
            capture_output=True,
            text=True,
        )
        assert (result.returncode, result.stdout) == (0, "0\n"), result.stderr
        bodies = sorted(str(r.body) for r in rx.wait_for_logs(3, timeout=10))
    assert bodies == ["child", "parent after fork", "parent before fork"], result.stderr


_FORK_DURING_EXPORTS = textwrap.dedent(
    """
    import os, sys, threading
    from opentelemetry import _logs
    from clue import otel

    exporter, _ = otel.new_grpc_log_exporter(endpoint=sys.argv[1], timeout=5)
    cfg = otel.new_config("svc", "1", log_exporter=exporter)
    otel.configure_opentelemetry(cfg, shutdown_at_exit=False)
    logger = _logs.get_logger("t")
    exported, stop = threading.Event(), threading.Event()

    def busy() -> None:  # the parent keeps its batch processor exporting
        while not stop.is_set():
            for i in range(200):
                logger.emit(body=f"parent {i}")
            cfg.force_flush(5)
            exported.set()

    thread = threading.Thread(target=busy)
    thread.start()
    exported.wait(20)
    statuses = []
    for k in range(6):
        pid = os.fork()
        if pid == 0:
            logger.emit(body=f"child {k}")
            os._exit(0 if cfg.force_flush(3) else 7)
        _, status = os.waitpid(pid, 0)
        statuses.append(os.waitstatus_to_exitcode(status))
    stop.set()
    thread.join()
    print(statuses)
    """
)


def test_workers_forked_during_grpc_exports_export_their_records() -> None:
    """gRPC does not survive a fork made during a call: a fork waits for the export.

    The parent exports continuously over gRPC from other threads while it forks; each
    child's record must arrive. Without waiting, a child forked in the middle of a call
    finds its channel dead and loses what it queues.
    """
    with OTLPReceiver() as rx:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["OTEL_BLRP_SCHEDULE_DELAY"] = "5"
        result = subprocess.run(
            [sys.executable, "-c", _FORK_DURING_EXPORTS, rx.grpc_endpoint],
            env=env,
            check=False,
            timeout=120,
            capture_output=True,
            text=True,
        )
        statuses = result.stdout.splitlines()[-1:]
        assert (result.returncode, statuses) == (0, ["[0, 0, 0, 0, 0, 0]"]), result.stderr[-3000:]
        children = sorted(str(r.body) for r in rx.logs() if str(r.body).startswith("child"))
    assert children == [f"child {k}" for k in range(6)]
