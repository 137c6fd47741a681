"""What every service of the example system sets up the same way.

- logs: ``log.configure`` with JSON lines on stdout and ``log.span`` on every entry, so
  each line carries the ``trace_id``/``span_id`` of its request; ``--no-buffering``
  writes every entry (the demo's "log everything" baseline);
- logs over OTLP too: ``log.otlp_output()`` beside the stdout output, so every written
  entry is also an OpenTelemetry log record;
- telemetry: ``otel.new_config`` with the adaptive sampler and error promotion; spans,
  log records and metrics (clue-log's ``clue.log.*`` among them, every
  ``--metric-interval`` seconds) exported over OTLP/gRPC to ``--otlp-endpoint``;
- the loopback admin port: ``/livez``, ``/readyz``, ``/healthz`` (clue-health's
  ``Probes``), ``/debug`` (the debug-log switch) and ``/debug/pprof/`` (profiling), on a
  ``debug.Mux``;
- the life cycle: on SIGTERM readiness turns off at once (``install_sigterm_hook``), the
  service keeps serving for ``--drain-seconds``, then stops and flushes its telemetry.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests

from clue import debug, health, log, otel

__all__ = [
    "DEBUG_TRIGGER_HEADER",
    "DEBUG_TRIGGER_VALUE",
    "Runtime",
    "base_parser",
    "setup",
    "upstream_session",
]

VERSION = "0.1.0"

# Debug one request everywhere: the front (the edge) turns debug on for a request that
# carries this header and value, and marks its baggage; the locator and the forecaster
# trust the mark. A real service reads the value from its secrets.
DEBUG_TRIGGER_HEADER = "x-clue-debug"
DEBUG_TRIGGER_VALUE = "example-debug-token"


def base_parser(name: str, doc: str | None) -> argparse.ArgumentParser:
    """The command-line options every service takes."""
    parser = argparse.ArgumentParser(prog=f"clue_example.{name}", description=doc)
    parser.add_argument("--port", type=int, required=True, help="public port")
    parser.add_argument("--admin-port", type=int, required=True, help="loopback admin port")
    parser.add_argument("--otlp-endpoint", required=True, help="OTLP/gRPC host:port")
    parser.add_argument("--sampling-rate", type=float, default=2.0, help="traces per second")
    parser.add_argument("--sample-size", type=int, default=10)
    parser.add_argument("--drain-seconds", type=float, default=1.0)
    parser.add_argument(
        "--metric-interval", type=float, default=1.0, help="seconds between metric exports"
    )
    parser.add_argument(
        "--no-buffering", action="store_true", help="write every log entry (baseline)"
    )
    return parser


@dataclass
class Runtime:
    """The set-up parts of one service that its ``main`` uses."""

    name: str
    args: argparse.Namespace
    telemetry: otel.Config
    probes: health.Probes
    admin: WSGIServer

    def serve_admin(self) -> None:
        """Start answering on the admin port (call it once the service listens)."""
        threading.Thread(target=self.admin.serve_forever, name="admin", daemon=True).start()
        log.print(
            "started", service=self.name, port=self.args.port, admin_port=self.args.admin_port
        )

    def shutdown(self) -> None:
        """Stop the admin port and flush the telemetry (bounded)."""
        self.admin.shutdown()
        self.admin.server_close()
        self.telemetry.shutdown(5.0)

    def on_sigterm(self, stop: Callable[[], None]) -> None:
        """On SIGTERM: readiness off at once (clue-health), ``stop()`` after the drain.

        Call from the main thread; ``stop`` runs there, in a signal handler, so it should
        only ask the server to stop.
        """

        def handler(signum: int, frame: object) -> None:
            log.print("stopping", service=self.name)
            stop()

        signal.signal(signal.SIGTERM, handler)
        # Chains to ``handler`` after the grace period (or on a second SIGTERM).
        self.probes.install_sigterm_hook(grace=self.args.drain_seconds)


def setup(name: str, args: argparse.Namespace, *pingers: health.Pinger) -> Runtime:
    """Configure logs and telemetry, and make the admin port; ``pingers`` are the deps."""
    disable: Callable[[], bool] = _always if args.no_buffering else log.is_tracing
    # Each written entry goes twice: a JSON line on stdout and an OTLP log record.
    log.configure(
        outputs=[(sys.stdout, log.format_json), log.otlp_output()],
        funcs=[log.span],
        disable_buffering=disable,
    )
    # Third-party libraries logging through the stdlib (uvicorn, grpc) enter clue's buffer.
    logging.basicConfig(level=logging.INFO, handlers=[log.StdlibHandler()], force=True)

    # Spans, log records and metrics (clue-log's ``clue.log.*`` among them) go to the
    # same OTLP endpoint.
    span_exporter, _ = otel.new_grpc_span_exporter(endpoint=args.otlp_endpoint)
    log_exporter, _ = otel.new_grpc_log_exporter(endpoint=args.otlp_endpoint)
    metric_exporter, _ = otel.new_grpc_metric_exporter(endpoint=args.otlp_endpoint)
    telemetry = otel.new_config(
        name,
        VERSION,
        metric_exporter,
        span_exporter,
        log_exporter=log_exporter,
        max_sampling_rate=args.sampling_rate,
        sample_size=args.sample_size,
        reader_interval=args.metric_interval,
        error_promotion=True,
    )
    otel.configure_opentelemetry(telemetry)

    health.VERSION = VERSION
    # /livez, /readyz (Kubernetes' form, 503 from SIGTERM on) and /healthz (the JSON or
    # XML report), in front of the debug endpoints.
    probes = health.Probes(health.Checker(*pingers))
    mux = debug.Mux()
    debug.mount_debug_log_enabler(mux)
    debug.mount_pprof_handlers(mux)
    admin = make_server(
        "127.0.0.1", args.admin_port, probes.wsgi(mux), server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )  # fmt: skip
    return Runtime(name, args, telemetry, probes, admin)


def upstream_session() -> requests.Session:
    """A ``requests`` session whose calls clue-log records (buffered, like the rest)."""
    session = requests.Session()
    adapter = log.RequestsAdapter(request_log_func=log.info)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _always() -> bool:
    return True


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the admin port."""
