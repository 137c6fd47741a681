"""The front service: the example system's public HTTP API (Starlette under uvicorn).

- ``GET /forecast/{ip}``: the current weather where ``ip`` is (forecaster, unary);
- ``GET /forecast/{ip}/hourly?hours=N``: the next N hours, one message each over the
  forecaster's bidirectional stream; each message is sent from its own span;
- ``GET /livez``, ``GET /readyz``, ``GET /healthz``: liveness, readiness and the health
  report (clue-health's probes).

Every response carries ``X-Request-Id`` (clue-log) and ``traceresponse`` (the W3C trace
context of the request's server span, whose flags tell whether it was sampled). Debug
and profiling endpoints are on the loopback admin port only. Run it with::

    python -m clue_example.front --port 8000 --admin-port 8001 \
        --otlp-endpoint 127.0.0.1:4317 --forecaster 127.0.0.1:7003 \
        --forecaster-admin 127.0.0.1:7004
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import uvicorn
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clue import debug, health, interceptors, log
from clue_example import _runtime
from clue_example.proto import forecaster_pb2, forecaster_pb2_grpc

__all__ = ["TraceResponseMiddleware", "build_app", "main"]

_tracer = trace.get_tracer("clue_example.front")
MAX_HOURS = 24


class TraceResponseMiddleware:
    """Adds the ``traceresponse`` header: the trace context of the request's span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                ctx = trace.get_current_span().get_span_context()
                if ctx.is_valid:
                    value = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"traceresponse", value.encode()),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_header)


class Front:
    """The public API's handlers over a forecaster channel (opened in the app's loop)."""

    def __init__(self, connect: Callable[[], grpc.aio.Channel]) -> None:
        self.connect = connect
        self.stub: forecaster_pb2_grpc.ForecasterStub | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """Open the gRPC channel in the server's event loop, close it at shutdown."""
        channel = self.connect()
        self.stub = forecaster_pb2_grpc.ForecasterStub(channel)
        try:
            yield
        finally:
            await channel.close()

    async def forecast(self, request: Request) -> JSONResponse:
        """The current forecast where the IP address is."""
        ip = request.path_params["ip"]
        log.info("forecast requested", ip=ip)
        try:
            result = await self._forecast(ip)
        except grpc.aio.AioRpcError as exc:
            log.error("forecast failed", err=f"{exc.code().name}: {exc.details()}", ip=ip)
            return JSONResponse({"error": exc.details()}, status_code=_status_of(exc))
        log.info("forecast served", city=result["city"])
        return JSONResponse(result)

    @debug.log_payloads(client=True)  # the forecaster call's request and reply
    async def _forecast(self, ip: str) -> dict[str, Any]:
        log.debug("calling forecaster", ip=ip)
        assert self.stub is not None, "the app's lifespan opens the channel"
        reply = await self.stub.Forecast(forecaster_pb2.ForecastRequest(ip=ip), timeout=5.0)
        return {
            "ip": ip,
            "city": reply.city,
            "country": reply.country,
            "temperature_c": reply.temperature_c,
            "summary": reply.summary,
        }

    async def hourly(self, request: Request) -> JSONResponse:
        """The next ``hours`` hours' forecasts, one stream message per hour."""
        ip = request.path_params["ip"]
        try:
            hours = int(request.query_params.get("hours", "3"))
            if not 1 <= hours <= MAX_HOURS:
                raise ValueError(hours)
        except ValueError:
            log.info("bad hours", hours=request.query_params.get("hours"))
            return JSONResponse({"error": f"hours must be 1..{MAX_HOURS}"}, status_code=400)
        log.info("hourly requested", ip=ip, hours=hours)
        log.debug("opening the hourly stream", ip=ip, hours=hours)
        messages = []
        for hour in range(hours):
            # Each message is sent from its own span; its trace context travels inside it.
            with _tracer.start_as_current_span("front.hourly.send", attributes={"hour": hour}):
                msg = forecaster_pb2.HourlyRequest(ip=ip, hour=hour)
                interceptors.inject(msg)
                messages.append(msg)
        assert self.stub is not None, "the app's lifespan opens the channel"
        try:
            call = self.stub.Hourly(iter(messages), timeout=5.0)
            replies = [
                {"hour": r.hour, "temperature_c": r.temperature_c, "summary": r.summary}
                async for r in call
            ]
        except grpc.aio.AioRpcError as exc:
            log.error("hourly failed", err=f"{exc.code().name}: {exc.details()}", ip=ip)
            return JSONResponse({"error": exc.details()}, status_code=_status_of(exc))
        log.info("hourly served", hours=len(replies))
        return JSONResponse({"ip": ip, "hours": replies})


def _status_of(exc: grpc.aio.AioRpcError) -> int:
    if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return 400
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return 504
    return 502


def build_app(connect: Callable[[], grpc.aio.Channel], probes: health.Probes) -> ASGIApp:
    """The front's ASGI application, fully instrumented; ``connect`` opens the channel."""
    front = Front(connect)
    app = Starlette(
        lifespan=front.lifespan,
        routes=[
            Route("/forecast/{ip}", front.forecast),
            Route("/forecast/{ip}/hourly", front.hourly),
        ],
        middleware=[
            Middleware(TraceResponseMiddleware),
            Middleware(log.ASGIMiddleware, request_log_func=log.info),
            # The edge: a request with the trigger header is debugged here and, through
            # the clue.debug baggage mark, in every service it reaches; a mark sent from
            # outside is never honoured and is dropped before any call is made.
            Middleware(
                debug.ASGIMiddleware,
                trigger_header=_runtime.DEBUG_TRIGGER_HEADER,
                trigger_value=_runtime.DEBUG_TRIGGER_VALUE,
                propagate_trigger=True,
            ),
        ],
    )
    # The server span is current for every middleware and handler inside; the probes
    # (/livez, /readyz, /healthz) answer before any of it: no logs, no spans.
    return probes.asgi(OpenTelemetryMiddleware(app))


class _DrainingServer(uvicorn.Server):
    """A uvicorn server whose SIGTERM goes through the service's drain period."""

    def __init__(self, config: uvicorn.Config, rt: _runtime.Runtime) -> None:
        super().__init__(config)
        self.rt = rt

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Replace uvicorn's handlers: readiness turns NOT OK, then the server stops."""
        self.rt.on_sigterm(self._stop)
        yield

    def _stop(self) -> None:
        self.should_exit = True  # uvicorn's main loop polls this flag


def main(argv: list[str] | None = None) -> None:
    """Run the front until SIGTERM."""
    parser = _runtime.base_parser("front", __doc__)
    parser.add_argument("--forecaster", required=True, help="forecaster gRPC host:port")
    parser.add_argument("--forecaster-admin", required=True, help="forecaster admin host:port")
    args = parser.parse_args(argv)
    rt = _runtime.setup("front", args, health.new_pinger("forecaster", args.forecaster_admin))

    def connect() -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(
            args.forecaster,
            interceptors=[
                *aio_client_interceptors(),  # type: ignore[no-untyped-call]  # OTel's: untyped
                *log.aio_grpc_client_interceptors(call_log_func=log.info),
                # Messages are stamped by the handler, each from its own span: keep that.
                *interceptors.aio_trace_stream_client_interceptors(overwrite=False),
            ],
        )

    app = build_app(connect, rt.probes)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_config=None, access_log=False, lifespan="on"
    )
    rt.serve_admin()
    _DrainingServer(config, rt).run()
    rt.shutdown()


if __name__ == "__main__":
    main()
