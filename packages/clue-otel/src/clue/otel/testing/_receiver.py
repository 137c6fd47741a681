"""An in-process OTLP receiver speaking the real wire protocol, for tests and demos.

gRPC: the ``TraceService``, ``MetricsService`` and ``LogsService`` of
``opentelemetry-proto``. HTTP: ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs``
with ``application/x-protobuf`` bodies (gzip or deflate encoded or not). Both bind
127.0.0.1 on free ports.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]  # googleapis-common-protos ships no stubs
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from clue.otel.testing._model import (
    ReceivedLogRecord,
    ReceivedMetric,
    ReceivedSpan,
    Transport,
    decode_logs,
    decode_metrics,
    decode_spans,
)

__all__ = ["ExportRequest", "OTLPReceiver", "Signal"]

Signal = Literal["traces", "metrics", "logs"]
_T = TypeVar("_T")

# The request and response message types of each signal.
_MESSAGES: dict[Signal, tuple[Any, Any]] = {
    "traces": (
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "logs": (
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}
_HTTP_PATHS: dict[str, Signal] = {
    "/v1/traces": "traces",
    "/v1/metrics": "metrics",
    "/v1/logs": "logs",
}
_MAX_BODY = 64 << 20


@dataclass(frozen=True)
class ExportRequest:
    """One export request the receiver answered: how, for what, and whether it accepted it.

    ``content_encoding`` is the HTTP ``Content-Encoding`` (``gzip``, ``deflate``), empty
    when the body was plain or the request came over gRPC.
    """

    transport: Transport
    signal: Signal
    accepted: bool
    items: int
    content_encoding: str = ""


class OTLPReceiver:
    """A real OTLP receiver (gRPC and HTTP/protobuf) collecting what it is sent.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`)::

        with OTLPReceiver() as rx:
            exporter, shutdown = new_grpc_span_exporter(endpoint=rx.grpc_endpoint)
            ...
            spans = rx.wait_for_spans(3, timeout=5)

    Collected data is decoded into :class:`ReceivedSpan`, :class:`ReceivedMetric` and
    :class:`ReceivedLogRecord`; the raw protobuf requests are kept too. :meth:`fail`
    makes it answer ``UNAVAILABLE`` (gRPC) / ``503`` (HTTP) with a short retry delay,
    to exercise exporters' retries and prove that nothing raises into the application.

    Args:
        grpc: Serve OTLP/gRPC.
        http: Serve OTLP/HTTP.
        host: Address to bind (loopback by default).

    .. versionadded:: 0.1.0
    """

    def __init__(self, *, grpc: bool = True, http: bool = True, host: str = "127.0.0.1") -> None:
        if not (grpc or http):
            msg = "grpc and http cannot both be disabled"
            raise ValueError(msg)
        self._want_grpc = grpc
        self._want_http = http
        self._host = host
        self._cond = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._metrics: list[ReceivedMetric] = []
        self._logs: list[ReceivedLogRecord] = []
        self._raw: list[tuple[Signal, Any]] = []
        self._requests: list[ExportRequest] = []
        self._fail_remaining: int | None = 0  # None: fail until recover(); 0: accept
        self._retry_after = 0.05
        self._grpc_server: Any = None  # grpc.Server once started
        self._executor: futures.ThreadPoolExecutor | None = None
        self._http_server: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.grpc_port = 0
        self.http_port = 0

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        """Bind the ports and start serving; returns self."""
        if self._want_grpc and self._grpc_server is None:
            self._executor = futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="clue-otel receiver grpc"
            )
            server = grpc.server(self._executor)
            # The generated *_pb2_grpc modules are untyped.
            add_trace = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
            add_metrics = metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server
            add_logs = logs_service_pb2_grpc.add_LogsServiceServicer_to_server
            add_trace(_Servicer(self, "traces"), server)  # type: ignore[no-untyped-call]  # generated code
            add_metrics(_Servicer(self, "metrics"), server)  # type: ignore[no-untyped-call]  # generated code
            add_logs(_Servicer(self, "logs"), server)  # type: ignore[no-untyped-call]  # generated code
            self.grpc_port = server.add_insecure_port(f"{self._host}:0")
            server.start()
            self._grpc_server = server
        if self._want_http and self._http_server is None:
            httpd = ThreadingHTTPServer((self._host, 0), _http_handler(self))
            httpd.daemon_threads = True
            self.http_port = httpd.server_address[1]
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="clue-otel receiver http",
                daemon=True,
            )
            thread.start()
            self._http_server, self._http_thread = httpd, thread
        return self

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving (in-flight gRPC calls get ``grace`` seconds); idempotent."""
        if self._grpc_server is not None:
            self._grpc_server.stop(grace).wait(grace + 1.0)
            self._grpc_server = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            if self._http_thread is not None:
                self._http_thread.join(grace + 1.0)
            self._http_server = self._http_thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- endpoints -----------------------------------------------------------------

    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: the ``endpoint`` of the OTLP gRPC exporters.

        The ``http`` scheme makes them use an insecure channel.
        """
        self._require(self.grpc_port, "grpc")
        return f"http://{self._host}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: the base URL (``OTEL_EXPORTER_OTLP_ENDPOINT`` form)."""
        self._require(self.http_port, "http")
        return f"http://{self._host}:{self.http_port}"

    @property
    def http_traces_endpoint(self) -> str:
        """Full URL for the HTTP span exporter's ``endpoint`` option."""
        return f"{self.http_endpoint}/v1/traces"

    @property
    def http_metrics_endpoint(self) -> str:
        """Full URL for the HTTP metric exporter's ``endpoint`` option."""
        return f"{self.http_endpoint}/v1/metrics"

    @property
    def http_logs_endpoint(self) -> str:
        """Full URL for the HTTP log exporter's ``endpoint`` option."""
        return f"{self.http_endpoint}/v1/logs"

    def env(self, protocol: Literal["grpc", "http/protobuf"] = "grpc") -> dict[str, str]:
        """``OTEL_EXPORTER_OTLP_*`` variables pointing a process (e.g. a subprocess) here."""
        endpoint = self.grpc_endpoint if protocol == "grpc" else self.http_endpoint
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
        if protocol == "grpc":
            env["OTEL_EXPORTER_OTLP_INSECURE"] = "true"
        return env

    # -- failure injection -----------------------------------------------------------

    def fail(self, times: int | None = None, *, retry_after: float = 0.05) -> None:
        """Refuse the next ``times`` export requests (all, if None, until :meth:`recover`).

        They are answered with gRPC ``UNAVAILABLE`` / HTTP ``503``, asking clients to retry
        after ``retry_after`` seconds (gRPC ``RetryInfo`` / HTTP ``Retry-After``).
        """
        if times is not None and times < 0:
            msg = f"times must be >= 0 or None, got {times!r}"
            raise ValueError(msg)
        with self._cond:
            self._fail_remaining = times
            self._retry_after = retry_after

    def recover(self) -> None:
        """Accept export requests again."""
        with self._cond:
            self._fail_remaining = 0

    # -- collected data ------------------------------------------------------------

    def spans(self, name: str | None = None, *, trace_id: str | None = None) -> list[ReceivedSpan]:
        """Spans received so far (in arrival order), optionally by name and/or trace id."""
        with self._cond:
            return [
                s
                for s in self._spans
                if (name is None or s.name == name) and (trace_id is None or s.trace_id == trace_id)
            ]

    def span(self, name: str) -> ReceivedSpan:
        """The only span called ``name``; raises AssertionError if there is not exactly one."""
        found = self.spans(name)
        if len(found) != 1:
            msg = f"expected exactly one span named {name!r}, got {len(found)}: {self._names()}"
            raise AssertionError(msg)
        return found[0]

    def traces(self) -> dict[str, list[ReceivedSpan]]:
        """Spans grouped by trace id (hex), in arrival order."""
        grouped: dict[str, list[ReceivedSpan]] = {}
        for span in self.spans():
            grouped.setdefault(span.trace_id, []).append(span)
        return grouped

    def metrics(self, name: str | None = None) -> list[ReceivedMetric]:
        """Metrics received so far (one entry per metric per export), optionally by name."""
        with self._cond:
            return [m for m in self._metrics if name is None or m.name == name]

    def logs(self) -> list[ReceivedLogRecord]:
        """Log records received so far."""
        with self._cond:
            return list(self._logs)

    def requests(
        self, signal: Signal | None = None, *, transport: Transport | None = None
    ) -> list[ExportRequest]:
        """Every export request answered (accepted or rejected), in order."""
        with self._cond:
            return [
                r
                for r in self._requests
                if (signal is None or r.signal == signal)
                and (transport is None or r.transport == transport)
            ]

    def raw_requests(self, signal: Signal) -> list[Any]:
        """The accepted protobuf requests of ``signal``, as received."""
        with self._cond:
            return [message for s, message in self._raw if s == signal]

    def clear(self) -> None:
        """Forget everything received so far."""
        with self._cond:
            self._spans.clear()
            self._metrics.clear()
            self._logs.clear()
            self._raw.clear()
            self._requests.clear()

    # -- waiting -----------------------------------------------------------------------

    def wait_for_spans(
        self,
        n: int = 1,
        timeout: float = 5.0,
        *,
        name: str | None = None,
        predicate: Callable[[ReceivedSpan], bool] | None = None,
    ) -> list[ReceivedSpan]:
        """Wait until at least ``n`` matching spans arrived; return the matching spans.

        Raises:
            TimeoutError: After ``timeout`` seconds, naming what did arrive.
        """

        def matching() -> list[ReceivedSpan]:
            return [
                s
                for s in self._spans
                if (name is None or s.name == name) and (predicate is None or predicate(s))
            ]

        return self._wait(matching, n, timeout, lambda: f"spans {self._names()}")

    def wait_for_metrics(
        self, name: str, timeout: float = 5.0, *, n: int = 1
    ) -> list[ReceivedMetric]:
        """Wait until metric ``name`` arrived in at least ``n`` exports; return those."""

        def matching() -> list[ReceivedMetric]:
            return [m for m in self._metrics if m.name == name]

        return self._wait(
            matching, n, timeout, lambda: f"metrics {sorted({m.name for m in self._metrics})}"
        )

    def wait_for_logs(self, n: int = 1, timeout: float = 5.0) -> list[ReceivedLogRecord]:
        """Wait until at least ``n`` log records arrived; return them all."""
        return self._wait(lambda: list(self._logs), n, timeout, lambda: f"{len(self._logs)} logs")

    def wait_for_requests(
        self,
        n: int = 1,
        timeout: float = 5.0,
        *,
        signal: Signal | None = None,
        accepted: bool | None = None,
    ) -> list[ExportRequest]:
        """Wait until at least ``n`` matching export requests were answered."""

        def matching() -> list[ExportRequest]:
            return [
                r
                for r in self._requests
                if (signal is None or r.signal == signal)
                and (accepted is None or r.accepted == accepted)
            ]

        return self._wait(matching, n, timeout, lambda: f"requests {self._requests}")

    # -- internals -----------------------------------------------------------------------

    def _wait(
        self,
        matching: Callable[[], list[_T]],
        n: int,
        timeout: float,
        describe: Callable[[], str],
    ) -> list[_T]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = matching()
                if len(found) >= n:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    msg = f"waited {timeout}s for {n}, got {len(found)}; received {describe()}"
                    raise TimeoutError(msg)
                self._cond.wait(remaining)

    def _names(self) -> list[str]:
        return [s.name for s in self._spans]

    def _require(self, port: int, what: str) -> None:
        if not port:
            msg = f"the receiver's {what} server is not started (use start() or `with`)"
            raise RuntimeError(msg)

    def _admit(self) -> bool:
        # Called with the condition held: whether this request is accepted.
        if self._fail_remaining is None:
            return False
        if self._fail_remaining > 0:
            self._fail_remaining -= 1
            return False
        return True

    def _receive(
        self, signal: Signal, message: Any, transport: Transport, encoding: str = ""
    ) -> tuple[bool, float]:
        """Record one decoded request; returns (accepted, retry_after)."""
        with self._cond:
            accepted = self._admit()
            items = 0
            if accepted:
                self._raw.append((signal, message))
                if signal == "traces":
                    spans = decode_spans(message, transport)
                    self._spans.extend(spans)
                    items = len(spans)
                elif signal == "metrics":
                    metrics = decode_metrics(message, transport)
                    self._metrics.extend(metrics)
                    items = len(metrics)
                else:
                    logs = decode_logs(message, transport)
                    self._logs.extend(logs)
                    items = len(logs)
            self._requests.append(ExportRequest(transport, signal, accepted, items, encoding))
            self._cond.notify_all()
            return accepted, self._retry_after


class _Servicer:
    # One gRPC servicer per signal; the generated code only looks up ``Export``.
    def __init__(self, receiver: OTLPReceiver, signal: Signal) -> None:
        self._receiver = receiver
        self._signal = signal

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802 (OTLP name)
        accepted, retry_after = self._receiver._receive(self._signal, request, "grpc")
        if not accepted:
            delay = Duration()
            delay.FromNanoseconds(int(retry_after * 1e9))
            info = RetryInfo(retry_delay=delay)
            context.set_trailing_metadata((("google.rpc.retryinfo-bin", info.SerializeToString()),))
            context.abort(grpc.StatusCode.UNAVAILABLE, "clue.otel.testing: failing on request")
        return _MESSAGES[self._signal][1]()


def _http_handler(receiver: OTLPReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            signal = _HTTP_PATHS.get(self.path.split("?", 1)[0])
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= _MAX_BODY:
                self.close_connection = True
                self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"bad Content-Length")
                return
            body = self.rfile.read(length)
            if signal is None:
                self._answer(HTTPStatus.NOT_FOUND, b"unknown OTLP path")
                return
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type != "application/x-protobuf":
                self._answer(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"only application/x-protobuf")
                return
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            try:
                message = _MESSAGES[signal][0]()
                message.ParseFromString(_decode(body, encoding))
            except Exception:  # a malformed body is the client's error, never ours
                self._answer(HTTPStatus.BAD_REQUEST, b"malformed OTLP body")
                return
            accepted, retry_after = receiver._receive(signal, message, "http", encoding)
            if not accepted:
                self._answer(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    b"clue.otel.testing: failing on request",
                    {"Retry-After": f"{retry_after:g}"},
                )
                return
            self._answer(
                HTTPStatus.OK,
                _MESSAGES[signal][1]().SerializeToString(),
                {"Content-Type": "application/x-protobuf"},
            )

        def _answer(
            self, status: HTTPStatus, body: bytes, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default per-request stderr line."""

    return Handler


def _decode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body
