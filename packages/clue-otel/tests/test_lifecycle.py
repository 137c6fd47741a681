"""Queued telemetry is exported however a server ends the process, and forks start clean.

Each scenario is a real child process that configures clue-otel the README's way,
exports to a receiver in the test process, and is stopped with a real SIGTERM the way a
server does it: the default action, a server handler chained and re-raising the signal
after a graceful shutdown (uvicorn), a server handler leaving with ``sys.exit``
(gunicorn's workers), a handler exiting with its own status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clue import otel
from clue.otel import _lifecycle
from clue.otel.testing import OTLPReceiver

# A child must be gone this long after SIGTERM: its shutdown is bounded by 1 s.
EXIT_DEADLINE = 30.0

_PRELUDE = """
import os, signal, sys, threading
from opentelemetry import trace
from clue import otel

ENDPOINT, SERVER = sys.argv[1], sys.argv[2]
stopping = threading.Event()
# Python's own SIGINT handler, as under a terminal, even when the tests run in a job that
# ignores SIGINT (a shell's background job), which children inherit.
signal.signal(signal.SIGINT, signal.default_int_handler)

def configure(exporter=None):
    if exporter is None:
        exporter, _ = otel.new_grpc_span_exporter(endpoint=ENDPOINT)
    cfg = otel.new_config("child", "1", span_exporter=exporter, max_sampling_rate=1000)
    otel.configure_opentelemetry(cfg, shutdown_timeout=1)

def span(name):
    trace.get_tracer("t").start_span(name).end()

def server_handler(signum, frame):
    stopping.set()

def ready():
    print("ready", flush=True)

def idle(until=None):
    # A server's main loop: it wakes regularly. The kernel may deliver a signal to any
    # thread; its Python handler runs in the main thread, which a bare wait on a lock
    # would never wake for it.
    until = until or threading.Event()
    while not until.wait(0.05):
        pass

class Server:  # uvicorn.server.Server, as far as clue can tell
    def handle_exit(self, signum, frame):
        stopping.set()

Server.__module__ = "uvicorn.server"
uvicorn_handler = Server().handle_exit
"""

# How the server handles SIGTERM around the application.
_SERVERS = {
    # A bare process: SIGTERM's default action.
    "default": """
configure()
span("work")
ready()
idle()
""",
    # uvicorn app:app: the app is imported while the server's handler is installed; after
    # its graceful shutdown the server restores the default and re-raises the signal.
    "reraise, app loaded inside": """
original = signal.signal(signal.SIGTERM, uvicorn_handler)
configure()
span("work")
ready()
idle(stopping)
span("drained")  # work done during the graceful shutdown
signal.signal(signal.SIGTERM, original)
signal.raise_signal(signal.SIGTERM)
print("after re-raise", flush=True)
""",
    # uvicorn.run(app) or gunicorn's uvicorn worker: configured first, then the server
    # saves clue's handler, installs its own, and restores clue's before re-raising.
    "reraise, app loaded before": """
configure()
original = signal.signal(signal.SIGTERM, server_handler)
span("work")
ready()
idle(stopping)
span("drained")
signal.signal(signal.SIGTERM, original)
signal.raise_signal(signal.SIGTERM)
""",
    # gunicorn's sync and gthread workers: the handler stops the loop; sys.exit(0).
    "exit normally": """
signal.signal(signal.SIGTERM, server_handler)
configure()
span("work")
ready()
idle(stopping)
span("drained")
sys.exit(0)
""",
    # clue-health's SIGTERM hook with a grace period, installed before clue: the first
    # SIGTERM arms a timer that signals the main thread again; then the hook restores
    # the default action and re-raises at once.
    "grace timer, then default": """
armed = []
def health_hook(signum, frame):
    if armed:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    armed.append(True)
    main = threading.main_thread().ident
    threading.Timer(0.1, signal.pthread_kill, (main, signal.SIGTERM)).start()
signal.signal(signal.SIGTERM, health_hook)
configure()
span("work")
ready()
idle()
""",
    # uvicorn app:app whose lifespan configures clue in a worker thread
    # (``run_in_executor``): only the main thread may set handlers; spans start there.
    "configured in a thread, under uvicorn": """
original = signal.signal(signal.SIGTERM, uvicorn_handler)
worker = threading.Thread(target=configure)
worker.start()
worker.join()
span("work")
ready()
idle(stopping)
span("drained")
signal.signal(signal.SIGTERM, original)
signal.raise_signal(signal.SIGTERM)
""",
    # An application handler that chooses its own exit status.
    "handler exits 3": """
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
configure()
span("work")
ready()
idle()
""",
}


@dataclass(frozen=True)
class Outcome:
    status: int
    spans: list[str]
    stdout: str


def _reap(child: subprocess.Popen[str]) -> None:
    # However the test ends, the child is gone and its pipes are closed: left open after a
    # timeout, they are reported as unraisable ResourceWarnings (unclosed file) by
    # whichever later test the garbage collector happens to find them in.
    if child.poll() is None:
        child.kill()
    for pipe in (child.stdin, child.stdout, child.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    child.wait()


def run_child(
    rx: OTLPReceiver, server: str, body: str | None = None, signum: int = signal.SIGTERM
) -> Outcome:
    code = _PRELUDE + textwrap.dedent(body if body is not None else _SERVERS[server])
    child = subprocess.Popen(
        [sys.executable, "-c", code, rx.grpc_endpoint, server],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Long batch delays: nothing leaves before the shutdown.
        env={
            **os.environ,
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
            "OTEL_BLRP_SCHEDULE_DELAY": "600000",
        },
    )
    assert child.stdout is not None
    try:
        line = child.stdout.readline()
        assert line == "ready\n", child.communicate(timeout=EXIT_DEADLINE)
        assert not rx.spans()
        child.send_signal(signum)
        out, err = child.communicate(timeout=EXIT_DEADLINE)
    finally:
        _reap(child)
    return Outcome(child.returncode, sorted(s.name for s in rx.spans()), line + out + err)


EXPECTED = {
    "default": (-signal.SIGTERM, ["work"]),
    "reraise, app loaded inside": (-signal.SIGTERM, ["drained", "work"]),
    "reraise, app loaded before": (-signal.SIGTERM, ["drained", "work"]),
    "exit normally": (0, ["drained", "work"]),
    "grace timer, then default": (-signal.SIGTERM, ["work"]),
    "configured in a thread, under uvicorn": (-signal.SIGTERM, ["drained", "work"]),
    "handler exits 3": (3, ["work"]),
}


@pytest.mark.parametrize("server", list(_SERVERS))
def test_sigterm_exports_what_is_queued_and_keeps_the_signals_effect(server: str) -> None:
    """Every span queued at SIGTERM is exported; the process ends as it would without clue."""
    with OTLPReceiver() as rx:
        outcome = run_child(rx, server)
    assert (outcome.status, outcome.spans) == EXPECTED[server], outcome.stdout


# The same servers, with a configuration that exports logs too: each span goes with a
# log record emitted through the OpenTelemetry Logs API.
_WITH_LOGS = """
from opentelemetry import _logs

def configure(exporter=None):
    spans, _ = otel.new_grpc_span_exporter(endpoint=ENDPOINT)
    logs, _ = otel.new_grpc_log_exporter(endpoint=ENDPOINT)
    cfg = otel.new_config(
        "child", "1", span_exporter=spans, log_exporter=logs, max_sampling_rate=1000
    )
    otel.configure_opentelemetry(cfg, shutdown_timeout=1)

def span(name):
    with trace.get_tracer("t").start_as_current_span(name):
        _logs.get_logger("app").emit(body=name)
"""


@pytest.mark.parametrize("server", list(_SERVERS))
def test_sigterm_exports_queued_log_records_too(server: str) -> None:
    """Log records queued at SIGTERM are exported with the spans; the exit status is kept."""
    with OTLPReceiver() as rx:
        outcome = run_child(rx, server, body=_WITH_LOGS + textwrap.dedent(_SERVERS[server]))
        records = rx.logs()
    status, names = EXPECTED[server]
    assert (outcome.status, outcome.spans) == (status, names), outcome.stdout
    assert sorted(r.body for r in records) == names, outcome.stdout
    by_name = {s.name: s for s in rx.spans()}
    for record in records:
        assert record.trace_id == by_name[str(record.body)].trace_id


def test_a_logs_only_configuration_made_in_a_thread_hooks_sigterm_at_the_first_record() -> None:
    """Configured from a lifespan's thread, exporting only logs: uvicorn's re-raise still waits."""
    server = "configured in a thread, under uvicorn"
    with OTLPReceiver() as rx:
        outcome = run_child(rx, server, body=_LOGS_ONLY + textwrap.dedent(_SERVERS[server]))
        records = sorted(str(r.body) for r in rx.logs())
    assert (outcome.status, records) == EXPECTED[server], outcome.stdout


_SIGINT_SERVERS = {
    # gunicorn's uvicorn worker: SIGINT reset to the default action, then (the app
    # loaded in the worker) uvicorn's handler over clue's, restored before the re-raise.
    "uvicorn worker": """
signal.signal(signal.SIGINT, signal.SIG_DFL)
configure()
original = signal.signal(signal.SIGINT, server_handler)
span("work")
ready()
idle(stopping)
span("drained")
signal.signal(signal.SIGINT, original)
signal.raise_signal(signal.SIGINT)
""",
    # A bare process started with SIGINT's default action.
    "default": """
signal.signal(signal.SIGINT, signal.SIG_DFL)
configure()
span("work")
ready()
idle()
""",
    # Python's own handler: KeyboardInterrupt unwinds and the exit hook exports.
    "KeyboardInterrupt": """
configure()
span("work")
try:
    ready()
    idle()
finally:
    print("handler", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
""",
}

_SIGINT_EXPECTED = {
    "uvicorn worker": (-signal.SIGINT, ["drained", "work"]),
    "default": (-signal.SIGINT, ["work"]),
    "KeyboardInterrupt": (-signal.SIGINT, ["work"]),
}


@pytest.mark.parametrize("server", list(_SIGINT_SERVERS))
def test_sigint_exports_what_is_queued_and_keeps_the_signals_effect(server: str) -> None:
    """Ctrl-C exports what is queued, with SIGINT's default action as with Python's handler."""
    with OTLPReceiver() as rx:
        outcome = run_child(rx, server, _SIGINT_SERVERS[server], signal.SIGINT)
    assert (outcome.status, outcome.spans) == _SIGINT_EXPECTED[server], outcome.stdout
    if server == "KeyboardInterrupt":
        assert "handler True" in outcome.stdout  # Python's handler is left in place


def test_a_deferred_reraise_ends_the_process_before_lingering_threads_are_joined() -> None:
    """A re-raised SIGTERM still ends a process that a non-daemon thread would keep alive."""
    body = """
    original = signal.signal(signal.SIGTERM, uvicorn_handler)
    configure()
    span("work")
    threading.Thread(target=threading.Event().wait).start()  # never ends, not a daemon
    ready()
    idle(stopping)
    signal.signal(signal.SIGTERM, original)
    signal.raise_signal(signal.SIGTERM)
    """
    with OTLPReceiver() as rx:
        outcome = run_child(rx, "lingering thread", body)
    assert (outcome.status, outcome.spans) == (-signal.SIGTERM, ["work"]), outcome.stdout


def test_a_second_sigterm_during_the_export_at_exit_waits_for_it() -> None:
    """uvicorn: a SIGTERM arriving while the held re-raise's export runs does not cut it."""
    body = """
    from opentelemetry.sdk.trace.export import SpanExporter

    class Slow(SpanExporter):  # a collector that answers once the test says so
        def __init__(self):
            self.inner, _ = otel.new_grpc_span_exporter(endpoint=ENDPOINT)
        def export(self, spans):
            print("exporting", flush=True)
            sys.stdin.readline()
            return self.inner.export(spans)
        def shutdown(self):
            self.inner.shutdown()

    original = signal.signal(signal.SIGTERM, uvicorn_handler)
    configure(Slow())
    span("work")
    ready()
    idle(stopping)
    span("drained")
    signal.signal(signal.SIGTERM, original)
    signal.raise_signal(signal.SIGTERM)
    """
    code = _PRELUDE + textwrap.dedent(body)
    with OTLPReceiver() as rx:
        child = subprocess.Popen(
            [sys.executable, "-c", code, rx.grpc_endpoint, "second sigterm"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "OTEL_BSP_SCHEDULE_DELAY": "600000",
                "OTEL_BLRP_SCHEDULE_DELAY": "600000",
            },
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == "ready\n"
            child.send_signal(signal.SIGTERM)
            assert child.stdout.readline() == "exporting\n"
            child.send_signal(signal.SIGTERM)  # e.g. a supervisor repeating itself
            child.stdin.write("go\n")
            child.stdin.flush()
            out, err = child.communicate(timeout=EXIT_DEADLINE)
        finally:
            _reap(child)
        spans = sorted(s.name for s in rx.spans())
    assert (child.returncode, spans) == (-signal.SIGTERM, ["drained", "work"]), out + err


_SLOW_EXPORTER = """
from opentelemetry.sdk.trace.export import SpanExporter

class Slow(SpanExporter):  # a collector that answers once the test says so
    def __init__(self):
        self.inner, _ = otel.new_grpc_span_exporter(endpoint=ENDPOINT)
    def export(self, spans):
        print("exporting", flush=True)
        sys.stdin.readline()
        return self.inner.export(spans)
    def shutdown(self):
        self.inner.shutdown()
"""

# uvicorn --workers N, worker side, at a Ctrl-C: SIGINT reaches the worker and starts its
# graceful shutdown; uvicorn restores the handlers it replaced (the defaults, the app
# being imported inside its capture) and re-raises SIGINT: KeyboardInterrupt, a normal
# exit. The supervisor's SIGTERM to the worker comes up to 0.5 s later.
_CTRL_C_WORKER = """
signal.signal(signal.SIGINT, uvicorn_handler)
signal.signal(signal.SIGTERM, uvicorn_handler)
configure(Slow())
span("work")
ready()
idle(stopping)
span("drained")
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.raise_signal(signal.SIGINT)
"""


def _spawn(rx: OTLPReceiver, body: str, name: str) -> subprocess.Popen[str]:
    code = _PRELUDE + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code, rx.grpc_endpoint, name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "600000"},
    )


def test_a_supervisors_sigterm_during_the_export_at_a_normal_exit_waits_for_it() -> None:
    """uvicorn --workers, Ctrl-C: the supervisor's SIGTERM to a leaving worker waits for the export.

    The worker exits normally (KeyboardInterrupt) with SIGTERM's default action back in
    place; the SIGTERM comes while the export at exit runs. The export completes, then
    the signal ends the process.
    """
    with OTLPReceiver() as rx:
        child = _spawn(rx, _SLOW_EXPORTER + _CTRL_C_WORKER, "ctrl-c worker")
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == "ready\n"
            child.send_signal(signal.SIGINT)
            assert child.stdout.readline() == "exporting\n"
            child.send_signal(signal.SIGTERM)  # the supervisor's terminate()
            child.stdin.write("go\n")
            child.stdin.flush()
            out, err = child.communicate(timeout=EXIT_DEADLINE)
        finally:
            _reap(child)
        spans = sorted(s.name for s in rx.spans())
    assert (child.returncode, spans) == (-signal.SIGTERM, ["drained", "work"]), out + err


def test_a_sigterm_while_the_exit_joins_threads_exports_then_ends_the_process() -> None:
    """A SIGTERM between the interpreter's shutdown and the export at exit exports first.

    A non-daemon thread that never ends keeps the exiting interpreter joining it; the
    SIGTERM must neither wait for it (the process would never end) nor end the process
    before the export (what is queued would be lost).
    """
    body = """
    import threading as _threading
    # Registered before clue's: runs after it (the hooks run in reverse order).
    _threading._register_atexit(lambda: print("joining", flush=True))
    signal.signal(signal.SIGTERM, uvicorn_handler)
    configure()
    span("work")
    _threading.Thread(target=_threading.Event().wait).start()  # never ends, not a daemon
    ready()
    sys.stdin.readline()
    # The server leaves normally, its handlers restored: SIGTERM's default action is back.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    """
    with OTLPReceiver() as rx:
        child = _spawn(rx, body, "joining")
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == "ready\n"
            child.stdin.write("leave\n")
            child.stdin.flush()
            assert child.stdout.readline() == "joining\n"
            child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=EXIT_DEADLINE)
        finally:
            _reap(child)
        spans = sorted(s.name for s in rx.spans())
    assert (child.returncode, spans) == (-signal.SIGTERM, ["work"]), out + err


# A collector that first interrupts the main thread with a Ctrl-C (SIGINT, Python's own
# handler) and waits until clue holds it, then answers.
_INTERRUPTED_EXPORTER = """
from opentelemetry.sdk.trace.export import SpanExporter
from clue.otel import _lifecycle
import time

class Interrupted(SpanExporter):
    def __init__(self):
        self.inner, _ = otel.new_grpc_span_exporter(endpoint=ENDPOINT)
    def export(self, spans):
        # Again until it is held: one landing just before the main thread blocks waiting
        # for the export is only handled once that wait ends.
        deadline = time.monotonic() + 10
        while not _lifecycle._HOOKS.held and time.monotonic() < deadline:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            time.sleep(0.01)
        print("held", _lifecycle._HOOKS.held, flush=True)
        return self.inner.export(spans)
    def shutdown(self):
        self.inner.shutdown()
"""

# How the process is leaving when the Ctrl-C comes during the export.
_CTRL_C_DURING_EXPORT = {
    # A script ending normally: the export at exit runs.
    "normal exit": """
configure(Interrupted())
span("work")
ready()
""",
    # A bare process stopped by SIGTERM: clue's handler exports.
    "sigterm": """
configure(Interrupted())
span("work")
ready()
idle()
""",
}


@pytest.mark.parametrize(
    ("leaving", "status"),
    [("normal exit", -signal.SIGINT), ("sigterm", -signal.SIGTERM)],
)
def test_a_ctrl_c_during_the_export_waits_for_it(leaving: str, status: int) -> None:
    """A KeyboardInterrupt due during the export is held until the export is over.

    Pressing Ctrl-C again while a process leaves (Python's own SIGINT handler) used to
    raise KeyboardInterrupt in the middle of the export, which lost what was queued.
    The export completes, then the process ends: of SIGINT, as an uncaught
    KeyboardInterrupt ends it, or of the SIGTERM that started the export.
    """
    with OTLPReceiver() as rx:
        child = _spawn(rx, _INTERRUPTED_EXPORTER + _CTRL_C_DURING_EXPORT[leaving], leaving)
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == "ready\n"
            if leaving == "sigterm":
                child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=EXIT_DEADLINE)
        finally:
            _reap(child)
        spans = sorted(s.name for s in rx.spans())
    assert (child.returncode, spans) == (status, ["work"]), out + err
    assert "KeyboardInterrupt" not in err


def test_sigterm_shutdown_is_bounded_by_the_timeout_when_export_hangs() -> None:
    """A collector that never answers costs at most shutdown_timeout; SIGTERM still ends it."""
    body = """
    from opentelemetry.sdk.trace.export import SpanExporter

    class Hanging(SpanExporter):
        def export(self, spans):
            threading.Event().wait()

    configure(Hanging())
    span("work")
    ready()
    idle()
    """
    with OTLPReceiver() as rx:
        outcome = run_child(rx, "hanging", body)
    assert outcome.status == -signal.SIGTERM, outcome.stdout


@pytest.mark.parametrize("server", ["default", "exit normally"])
def test_shutdown_is_bounded_when_the_log_export_hangs(server: str) -> None:
    """A log collector that never answers costs at most shutdown_timeout; the spans still leave."""
    body = """
    from opentelemetry import _logs
    from opentelemetry.sdk._logs.export import LogRecordExporter

    class Hanging(LogRecordExporter):
        def export(self, batch):
            threading.Event().wait()

        def shutdown(self):
            threading.Event().wait()

        def force_flush(self, timeout_millis=30000):
            threading.Event().wait()

    def configure(exporter=None):
        spans, _ = otel.new_grpc_span_exporter(endpoint=ENDPOINT)
        cfg = otel.new_config(
            "child", "1", span_exporter=spans, log_exporter=Hanging(), max_sampling_rate=1000
        )
        otel.configure_opentelemetry(cfg, shutdown_timeout=1)

    def span(name):
        with trace.get_tracer("t").start_as_current_span(name):
            _logs.get_logger("app").emit(body=name)
    """
    with OTLPReceiver() as rx:
        outcome = run_child(rx, server, textwrap.dedent(body) + textwrap.dedent(_SERVERS[server]))
    assert (outcome.status, outcome.spans) == EXPECTED[server], outcome.stdout


@pytest.mark.parametrize("created", ["before", "after"])
def test_a_normal_exit_is_bounded_with_a_logger_provider_and_a_hanging_collector(
    created: str,
) -> None:
    """The global SDK logger provider's own exit shutdown does not outlast shutdown_timeout."""
    body = """
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs import export
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    # named LogExporter in older SDKs
    LogRecordExporter = getattr(export, "LogRecordExporter", None) or export.LogExporter

    class Hanging(LogRecordExporter):  # a collector that accepts and never answers
        def export(self, batch):
            print("exporting", flush=True)
            threading.Event().wait()
        def force_flush(self, timeout_millis=30000):
            return True
        def shutdown(self):
            pass

    def logger_provider():
        provider = LoggerProvider()  # shutdown_on_exit: the SDK's own atexit handler
        provider.add_log_record_processor(BatchLogRecordProcessor(Hanging()))
        set_logger_provider(provider)
        return provider

    if SERVER == "before":
        provider = logger_provider()
    configure()
    if SERVER == "after":
        provider = logger_provider()
    import logging
    from opentelemetry.sdk._logs import LoggingHandler

    logging.getLogger("app").addHandler(LoggingHandler(logger_provider=provider))
    logging.getLogger("app").warning("queued")  # the stdlib bridge: in every SDK version
    ready()
    sys.exit(0)  # gunicorn's sync worker, hypercorn: a normal exit
    """
    code = _PRELUDE + textwrap.dedent(body)
    with OTLPReceiver() as rx:
        child = subprocess.Popen(
            [sys.executable, "-c", code, rx.grpc_endpoint, created],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OTEL_BLRP_SCHEDULE_DELAY": "600000"},
        )
        try:
            # Within shutdown_timeout (1 s) after the export starts, the process is gone;
            # the deadline is generous, the export would otherwise never end.
            out, err = child.communicate(timeout=EXIT_DEADLINE)
        finally:
            _reap(child)
    assert child.returncode == 0, out + err
    assert out.startswith("ready\nexporting\n"), err
    assert "logger provider shutdown" in out  # the bounded export gave up on it


def test_an_ignored_sigterm_stays_ignored() -> None:
    """A process that ignores SIGTERM (nohup) is left as it is."""
    body = """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure()
    print("ignored" if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN else "changed")
    """
    code = _PRELUDE + textwrap.dedent(body)
    out = subprocess.run(
        [sys.executable, "-c", code, "http://127.0.0.1:9", "x"],
        capture_output=True,
        text=True,
        timeout=EXIT_DEADLINE,
        check=True,
    )
    assert out.stdout == "ignored\n", out.stderr


# A configuration that exports only logs: each "span" is a log record.
_LOGS_ONLY = """
from opentelemetry import _logs

def configure(exporter=None):
    logs, _ = otel.new_grpc_log_exporter(endpoint=ENDPOINT)
    cfg = otel.new_config("child", "1", log_exporter=logs)
    otel.configure_opentelemetry(cfg, shutdown_timeout=1)

def span(name):
    _logs.get_logger("app").emit(body=name)
"""


@pytest.mark.parametrize("signals", ["spans", "logs only"])
def test_a_forked_worker_hooks_sigterm_again_after_its_server_reset_it(signals: str) -> None:
    """gunicorn --preload with uvicorn workers: the child's first span (or record) re-arms."""
    body = """
    configure()
    span("boot")  # queued in the parent, exported by the parent only
    pid = os.fork()
    if pid == 0:
        # The worker: the server resets SIGTERM, then serves with its own handler.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        original = signal.signal(signal.SIGTERM, uvicorn_handler)
        span("worker")
        ready()
        idle(stopping)
        signal.signal(signal.SIGTERM, original)
        signal.raise_signal(signal.SIGTERM)
        sys.exit(0)  # gunicorn's arbiter code, in the worker, after its run returns
    _, status = os.waitpid(pid, 0)
    print("worker", os.waitstatus_to_exitcode(status), flush=True)
    """
    with OTLPReceiver() as rx:
        code = _PRELUDE + (_LOGS_ONLY if signals == "logs only" else "") + textwrap.dedent(body)
        parent = subprocess.Popen(
            [sys.executable, "-c", code, rx.grpc_endpoint, "preload"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "OTEL_BSP_SCHEDULE_DELAY": "600000",
                "OTEL_BLRP_SCHEDULE_DELAY": "600000",
            },
        )
        assert parent.stdout is not None
        try:
            worker_ready = parent.stdout.readline()
            assert worker_ready == "ready\n", parent.communicate(timeout=EXIT_DEADLINE)
            # The worker is the parent's only child; signal it alone, as an arbiter does.
            worker_pid = int(_children(parent.pid)[0])
            os.kill(worker_pid, signal.SIGTERM)
            out, err = parent.communicate(timeout=EXIT_DEADLINE)
        finally:
            _reap(parent)
        spans = sorted(s.name for s in rx.spans())
        records = sorted(str(r.body) for r in rx.logs())
    assert out == f"worker {-signal.SIGTERM}\n", err
    assert parent.returncode == 0, err
    assert (records if signals == "logs only" else spans) == ["boot", "worker"], err


def test_a_forked_child_exports_its_own_metric_points_not_its_parents() -> None:
    """A point the parent recorded before forking is exported once, by the parent."""
    body = """
    from opentelemetry import metrics

    metric_exporter, _ = otel.new_grpc_metric_exporter(endpoint=ENDPOINT)
    cfg = otel.new_config("child", "1", metric_exporter, reader_interval=3600)
    otel.configure_opentelemetry(cfg, shutdown_timeout=5)
    hits = metrics.get_meter("m").create_counter("hits")
    hits.add(5, {"where": "parent"})
    pid = os.fork()
    if pid == 0:
        hits.add(1, {"where": "child"})
        sys.exit(0)  # a worker leaving normally: the exit hook exports
    os.waitpid(pid, 0)
    """
    code = _PRELUDE + textwrap.dedent(body)
    with OTLPReceiver() as rx:
        subprocess.run(
            [sys.executable, "-c", code, rx.grpc_endpoint, "fork"],
            capture_output=True,
            timeout=EXIT_DEADLINE,
            check=True,
        )
        exported = sorted(
            (p.attributes["where"], p.value) for m in rx.metrics("hits") for p in m.points
        )
    # One process each: the parent's 5, the child's own 1.
    assert exported == [("child", 1), ("parent", 5)]


# A lock of the SDK that SIGTERM reaches the main thread inside of: the signal arrives
# (raised here, as a supervisor's would land) right after the lock is taken, while the
# main thread records a measurement.
_SIGNALLING_LOCK = """
class SignallingLock:
    def __init__(self, lock):
        self.lock = lock
    def __enter__(self):
        self.lock.__enter__()
        signal.raise_signal(signal.SIGTERM)
    def __exit__(self, *exc):
        return self.lock.__exit__(*exc)
"""


# What the main thread does when SIGTERM lands inside a lock the export needs too.
_INSIDE_A_LOCK = {
    # A measurement of a new attribute set (or any, with delta temporality) is aggregated
    # with the metric stream's lock held; the last collection takes it.
    "recording a measurement": """
    from opentelemetry import metrics

    metric_exporter, _ = otel.new_grpc_metric_exporter(endpoint=ENDPOINT)
    cfg = otel.new_config("child", "1", metric_exporter, reader_interval=3600)
    otel.configure_opentelemetry(cfg, shutdown_timeout=2)
    hits = metrics.get_meter("m").create_counter("hits")
    hits.add(5, {"where": "before"})
    (storage,) = cfg.meter_provider._measurement_consumer._reader_storages.values()
    ((match,),) = storage._instrument_view_instrument_matches.values()
    match._lock = SignallingLock(match._lock)
    hits.add(1, {"where": "new"})
    idle()
    """,
    # An unsampled trace starts: the error promotion processor holds it under its lock,
    # which its shutdown takes before the batch processor's.
    "starting a span held for error promotion": """
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    exporter, _ = otel.new_grpc_span_exporter(endpoint=ENDPOINT)
    cfg = otel.new_config("child", "1", span_exporter=exporter, error_promotion=True)
    otel.configure_opentelemetry(cfg, shutdown_timeout=2)
    sampled = SpanContext(0x1, 0x2, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    tracer = trace.get_tracer("t")
    tracer.start_span("work", context=set_span_in_context(NonRecordingSpan(sampled))).end()
    cfg.error_promotion._lock = SignallingLock(cfg.error_promotion._lock)
    tracer.start_span("unsampled").end()
    idle()
    """,
    # clue-health's SIGTERM hook with a grace period, installed before clue: the timer's
    # second SIGTERM lands while a measurement is recorded, and the hook, now due,
    # restores the default action and re-raises the signal there.
    "recording a measurement, under a grace period": """
    from opentelemetry import metrics

    armed = []
    def health_hook(signum, frame):
        if armed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)
        armed.append(True)
    signal.signal(signal.SIGTERM, health_hook)
    metric_exporter, _ = otel.new_grpc_metric_exporter(endpoint=ENDPOINT)
    cfg = otel.new_config("child", "1", metric_exporter, reader_interval=3600)
    otel.configure_opentelemetry(cfg, shutdown_timeout=2)
    hits = metrics.get_meter("m").create_counter("hits")
    hits.add(5, {"where": "before"})
    signal.raise_signal(signal.SIGTERM)  # the first: the grace period starts
    (storage,) = cfg.meter_provider._measurement_consumer._reader_storages.values()
    ((match,),) = storage._instrument_view_instrument_matches.values()
    match._lock = SignallingLock(match._lock)
    hits.add(1, {"where": "new"})
    idle()
    """,
}


@pytest.mark.parametrize("doing", list(_INSIDE_A_LOCK))
def test_a_sigterm_landing_inside_a_lock_the_export_needs_exports_everything(doing: str) -> None:
    """SIGTERM landing while the main thread holds a lock of the SDK or clue exports all.

    Exported from within the handler, the export waited for a lock its own thread held,
    for the whole ``shutdown_timeout`` (every metric point was lost). The signal is
    handled once that call returns; the process still dies of it.
    """
    code = _PRELUDE + _SIGNALLING_LOCK + textwrap.dedent(_INSIDE_A_LOCK[doing])
    with OTLPReceiver() as rx:
        child = subprocess.run(
            [sys.executable, "-c", code, rx.grpc_endpoint, doing],
            capture_output=True,
            text=True,
            timeout=EXIT_DEADLINE,
            check=False,
            env={**os.environ, "OTEL_TRACES_SAMPLER": "parentbased_always_off"},
        )
        exported = sorted(
            (p.attributes["where"], p.value) for m in rx.metrics("hits") for p in m.points
        ) or sorted(s.name for s in rx.spans())
    assert child.returncode == -signal.SIGTERM, child.stdout + child.stderr
    expected = {
        "recording a measurement": [("before", 5), ("new", 1)],
        "recording a measurement, under a grace period": [("before", 5), ("new", 1)],
        "starting a span held for error promotion": ["work"],
    }
    assert exported == expected[doing], child.stdout + child.stderr
    assert "otel.timeout" not in child.stdout + child.stderr


# The main thread records measurements without a pause; another thread sends it SIGTERM
# after spinning a given number of times, so that it lands anywhere in the recording.
_RECORDING_WHEN_SIGTERM_LANDS = """
from opentelemetry import metrics

spins, new_set_every = int(sys.argv[3]), int(sys.argv[4])
metric_exporter, _ = otel.new_grpc_metric_exporter(endpoint=ENDPOINT)
cfg = otel.new_config("child", "1", metric_exporter, reader_interval=3600)
otel.configure_opentelemetry(cfg, shutdown_timeout=2)
hits = metrics.get_meter("m").create_counter("hits")
main = threading.get_ident()
recording = threading.Event()

def supervisor():
    recording.wait()
    for _ in range(spins):
        pass
    signal.pthread_kill(main, signal.SIGTERM)

threading.Thread(target=supervisor).start()
hits.add(1, {"set": -1})
recording.set()
n = 0
while True:
    n += 1
    hits.add(1, {"set": n // new_set_every})
"""


def test_a_sigterm_landing_anywhere_in_a_recording_loop_exports_the_points() -> None:
    """Wherever SIGTERM lands while the main thread records, the points are exported."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        spins=st.integers(0, 300_000),
        new_set_every=st.sampled_from([1, 3, 1_000_000]),
        temporality=st.sampled_from(["delta", "cumulative"]),
    )
    def lands(spins: int, new_set_every: int, temporality: str) -> None:
        code = _PRELUDE + _RECORDING_WHEN_SIGTERM_LANDS
        with OTLPReceiver() as rx:
            child = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    code,
                    rx.grpc_endpoint,
                    "loop",
                    str(spins),
                    str(new_set_every),
                ],
                capture_output=True,
                text=True,
                timeout=EXIT_DEADLINE,
                check=False,
                env={
                    **os.environ,
                    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": temporality,
                },
            )
            recorded = sum(p.value for m in rx.metrics("hits") for p in m.points)
        output = child.stdout + child.stderr
        assert child.returncode == -signal.SIGTERM, output
        assert recorded > 0, output
        assert "otel.timeout" not in output

    lands()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_fork_while_another_thread_holds_the_hooks_lock_leaves_the_child_working() -> None:
    """The child of a fork taken while the hooks' lock is held can still shut down."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with _lifecycle._HOOKS.lock:
            held.set()
            release.wait(EXIT_DEADLINE)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(EXIT_DEADLINE)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            try:
                _lifecycle.install(lambda: None, 1.0)
                _lifecycle.shutdown_pending()
            finally:
                os._exit(0)
    finally:
        release.set()
        holder.join()
    status = _wait_with_deadline(pid)
    assert status == 0


def _sampler_lock(cfg: object) -> threading.Lock:
    return cfg.sampler._lock  # type: ignore[attr-defined, no-any-return]


def _promotion_lock(cfg: object) -> threading.Lock:
    return cfg.error_promotion._lock  # type: ignore[attr-defined, no-any-return]


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("lock", [_sampler_lock, _promotion_lock], ids=["sampler", "promotion"])
def test_a_fork_while_another_thread_holds_a_tracing_lock_leaves_the_child_tracing(
    lock: Callable[[object], threading.Lock],
) -> None:
    """A worker forked while another thread sampled or ended a span traces at once."""
    cfg = otel.new_config(
        "fork",
        "1",
        span_exporter=InMemorySpanExporter(),
        max_sampling_rate=1000,
        error_promotion=True,
    )
    tracer = cfg.tracer_provider.get_tracer("t")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock(cfg):
            held.set()
            release.wait(EXIT_DEADLINE)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(EXIT_DEADLINE)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            try:
                for _ in range(50):  # past the first window: rolls, tokens, promotion
                    with tracer.start_as_current_span("request") as span:
                        span.set_status(trace.StatusCode.ERROR)
                cfg.sampler.estimated_rate  # noqa: B018 - the sampler answers
            finally:
                os._exit(0)
    finally:
        release.set()
        holder.join()
    assert _wait_with_deadline(pid) == 0
    cfg.shutdown(1)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("what", ["configuration", "meter provider", "meter"])
def test_a_fork_during_a_configuration_leaves_the_child_working(what: str) -> None:
    """A child forked while another thread configured clue or took a meter can do both."""
    from clue.otel import _config, _switch

    meter = _switch.METER_PROVIDER.get_meter("m")
    lock = {
        "configuration": _config._STATE.lock,
        "meter provider": _switch.METER_PROVIDER._lock,
        "meter": meter._lock,  # type: ignore[attr-defined]
    }[what]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(EXIT_DEADLINE)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(EXIT_DEADLINE)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            try:
                otel.configure_opentelemetry(otel.new_config("fork", "1"), shutdown_at_exit=False)
                _switch.METER_PROVIDER.get_meter("m").create_counter("c").add(1)
                meter.create_counter("c").add(1)
                otel.reset_opentelemetry()
            finally:
                os._exit(0)
    finally:
        release.set()
        holder.join()
    assert _wait_with_deadline(pid) == 0


def _wait_with_deadline(pid: int) -> int:
    # waitpid with a deadline: poll the child's status until it has exited.
    done = threading.Event()
    result: list[int] = []

    def wait() -> None:
        result.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    if not done.wait(EXIT_DEADLINE):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the forked child hung")
    return result[0]


def _children(pid: int) -> list[str]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return f.read().split()
