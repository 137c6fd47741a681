"""A tiny service run under real servers by the server matrix (``tests/test_servers.py``).

One module, two entry points: ``wsgi`` (gunicorn sync and gthread workers) and ``asgi``
(uvicorn, gunicorn's uvicorn worker, hypercorn). Set up the way the clue-otel and
clue-log READMEs show, in one call each at import, with no server hook:

- clue-log writes JSON lines to standard output; start/end lines are buffered too
  (``request_log_func=log.info``), so a successful request writes nothing.
- clue-otel exports spans and metrics over OTLP/gRPC to ``CLUE_SERVED_OTLP``; an SDK
  logger provider exports one log record per request the same way. The batch delays
  and the metric interval are long (set by the test through ``OTEL_BSP_SCHEDULE_DELAY``
  / ``OTEL_BLRP_SCHEDULE_DELAY``), so what a process holds at SIGTERM is still queued
  and only the shutdown export can deliver it.

Requests: ``GET /ok?i=N`` logs three buffered lines and answers 200; ``GET /fail?i=N``
logs the same, then raises (the server answers 500); ``GET /pid`` answers the worker's
process id and its sampler's probability (fork checks). Every request
makes one span ``served.request`` (attributes ``i`` and ``pid``), one log record and adds 1 to the
counter ``served.requests``. At import a ``served.boot`` span is queued: with
``--preload`` it is queued in the parent before the workers are forked.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from clue import log, otel

__all__ = ["asgi", "wsgi"]

_ENDPOINT = os.environ.get("CLUE_SERVED_OTLP", "http://127.0.0.1:4317")

log.configure(format=log.format_json, output=sys.stdout, disable_buffering=lambda: False)

_span_exporter, _ = otel.new_grpc_span_exporter(endpoint=_ENDPOINT)
_metric_exporter, _ = otel.new_grpc_metric_exporter(endpoint=_ENDPOINT)
cfg = otel.new_config(
    "served",
    "1.0.0",
    _metric_exporter,
    _span_exporter,
    max_sampling_rate=10_000,  # every request traced: spans are counted exactly
    reader_interval=3600,  # metric points leave only at shutdown
)
otel.configure_opentelemetry(
    cfg, shutdown_timeout=float(os.environ.get("CLUE_SERVED_SHUTDOWN_TIMEOUT", "5"))
)

_logger_provider = LoggerProvider(resource=Resource.create({"service.name": "served"}))
_logger_provider.add_log_record_processor(
    BatchLogRecordProcessor(OTLPLogExporter(endpoint=_ENDPOINT, insecure=True))
)
set_logger_provider(_logger_provider)

_tracer = trace.get_tracer("served")
_otel_logger = _logger_provider.get_logger("served")
_requests = metrics.get_meter("served").create_counter("served.requests")

with _tracer.start_as_current_span("served.boot", attributes={"pid": os.getpid()}):
    pass


def _handle(path: str, query: str) -> tuple[int, bytes]:
    # The work of one request, the same for both entry points.
    if path == "/pid":
        return 200, json.dumps(_fork_state()).encode()
    i = int(parse_qs(query).get("i", ["-1"])[0])
    with _tracer.start_as_current_span("served.request", attributes={"i": i, "pid": os.getpid()}):
        _requests.add(1)
        _otel_logger.emit(body=f"served {i}", attributes={"i": i})
        for step in ("parse", "load", "render"):
            log.info("step", step=step, i=i)
        if path == "/fail":
            raise RuntimeError(f"request {i} failed")
    return 200, b"ok"


def _fork_state() -> dict[str, Any]:
    sampler = cfg.sampler
    assert sampler is not None
    return {"pid": os.getpid(), "probability": sampler.probability}


_WSGIStart = Callable[[str, list[tuple[str, str]]], Any]


def _wsgi(environ: dict[str, Any], start_response: _WSGIStart) -> Iterable[bytes]:
    status, body = _handle(environ.get("PATH_INFO", "/"), environ.get("QUERY_STRING", ""))
    start_response(f"{status} OK", [("Content-Type", "text/plain")])
    return [body]


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
    status, body = _handle(scope["path"], scope.get("query_string", b"").decode())
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


wsgi = log.WSGIMiddleware(_wsgi, request_log_func=log.info)
asgi = log.ASGIMiddleware(_asgi, request_log_func=log.info)
