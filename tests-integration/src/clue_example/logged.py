"""A tiny ASGI service whose log entries leave over OTLP (``tests/test_otlp_logs.py``).

Set up at import the way the clue-log and clue-otel READMEs recommend, nothing more:

- clue-log writes each written entry twice: a JSON line on standard output and an
  OpenTelemetry log record (``outputs=[(sys.stdout, log.format_json), log.otlp_output()]``),
  with ``log.span`` on every entry;
- clue-otel exports spans and log records over OTLP to ``CLUE_LOGGED_OTLP`` (the
  receiver's gRPC endpoint) or, with ``CLUE_LOGGED_TRANSPORT=http``, to its HTTP base
  URL; the sampler keeps almost nothing by itself (requests say whether they are traced
  with their ``traceparent``) and error promotion is on. Batch delays come from the
  environment (``OTEL_BSP_SCHEDULE_DELAY`` / ``OTEL_BLRP_SCHEDULE_DELAY``).

The app is wrapped by OpenTelemetry's ASGI middleware (the server span) around
``log.ASGIMiddleware`` (the request's log context, ``start``/``end`` lines buffered).
Requests: ``GET /ok`` logs a few buffered entries and answers 200; ``GET /fail`` logs
info, warn (two of them inside a child span ``lookup``), then an error, and answers 500;
``GET /debug`` succeeds too, with one debug entry logged in a context with debug on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from clue import log, otel

__all__ = ["DEBUG_MESSAGE", "FAIL_MESSAGES", "OK_MESSAGES", "app"]

# The messages each request logs, in order, between the middleware's start and end lines.
FAIL_MESSAGES = ("parsing", "looking up", "slow lookup", "lookup failed")
OK_MESSAGES = ("parsing", "found")
DEBUG_MESSAGE = "dumping"

_ENDPOINT = os.environ.get("CLUE_LOGGED_OTLP", "http://127.0.0.1:4317")
_TRANSPORT = os.environ.get("CLUE_LOGGED_TRANSPORT", "grpc")

log.configure(
    outputs=[(sys.stdout, log.format_json), log.otlp_output()],
    funcs=[log.span],
)
if _TRANSPORT == "http":
    _spans, _ = otel.new_http_span_exporter(endpoint=f"{_ENDPOINT}/v1/traces")
    _logs, _ = otel.new_http_log_exporter(endpoint=f"{_ENDPOINT}/v1/logs")
else:
    _spans, _ = otel.new_grpc_span_exporter(endpoint=_ENDPOINT)
    _logs, _ = otel.new_grpc_log_exporter(endpoint=_ENDPOINT)
cfg = otel.new_config(
    "logged",
    "1.0.0",
    span_exporter=_spans,
    log_exporter=_logs,
    max_sampling_rate=0.001,  # requests carry their own sampling decision
    error_promotion=True,
)
otel.configure_opentelemetry(cfg, shutdown_timeout=5.0)

_tracer = trace.get_tracer("clue_example.logged")


def _handle(path: str) -> int:
    log.info("parsing", path=path)
    if path == "/debug":
        with log.context(debug=True):
            log.debug(DEBUG_MESSAGE, payload={"user_id": 7})
    if path == "/fail":
        with _tracer.start_as_current_span("lookup"):
            log.info(
                "looking up",
                user_id=42,
                ratio=0.5,
                admin=False,
                tags=["a", "b"],
                card={"last4": "4242"},
                nothing=None,
            )
            log.warn("slow lookup", ms=250)
        log.error("lookup failed", err=RuntimeError("no such user"))
        return 500
    log.info("found", user_id=7)
    return 200


_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _asgi(scope: _Scope, receive: _Receive, send: _Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    status = _handle(scope["path"])
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok" if status == 200 else b"failed"})


app = OpenTelemetryMiddleware(log.ASGIMiddleware(_asgi, request_log_func=log.info))
