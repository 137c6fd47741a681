"""The forecaster service: weather for the location of an IP address (grpc.aio server).

``Forecast`` is unary. ``Hourly`` is a bidirectional stream: each request message carries
the trace context of the caller's span that sent it (clue-interceptors), so each message
is handled in its own trace context and its own log context. The forecaster calls the
locator over gRPC and the upstream weather API over HTTP. Run it with::

    python -m clue_example.forecaster --port 7003 --admin-port 7004 \
        --otlp-endpoint 127.0.0.1:4317 --upstream 127.0.0.1:8080 \
        --locator 127.0.0.1:7001 --locator-admin 127.0.0.1:7002
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import requests
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.requests import RequestsInstrumentor

from clue import debug, health, interceptors, log
from clue.health import grpc as health_grpc
from clue_example import _runtime
from clue_example.interfaces import Location, LocatorClient, Weather, WeatherSource
from clue_example.proto import forecaster_pb2, forecaster_pb2_grpc, locator_pb2, locator_pb2_grpc

__all__ = [
    "SERVICE",
    "ForecasterService",
    "GrpcLocatorClient",
    "HttpWeatherSource",
    "main",
    "serve",
]

SERVICE = forecaster_pb2.DESCRIPTOR.services_by_name["Forecaster"].full_name

_tracer = trace.get_tracer("clue_example.forecaster")


class GrpcLocatorClient:
    """The locator service over a grpc.aio channel, each call logged by clue-log."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(
            target,
            interceptors=[
                *aio_client_interceptors(),  # type: ignore[no-untyped-call]  # OTel's: untyped
                *log.aio_grpc_client_interceptors(call_log_func=log.info),
                *debug.aio_payload_grpc_client_interceptors(),
            ],
        )
        self.stub = locator_pb2_grpc.LocatorStub(self.channel)

    async def locate(self, ip: str) -> Location:
        """Resolve ``ip``; raise ``grpc.aio.AioRpcError`` on failure."""
        loc = await self.stub.Locate(locator_pb2.LocateRequest(ip=ip), timeout=5.0)
        return Location(loc.ip, loc.city, loc.country, loc.latitude, loc.longitude)


class HttpWeatherSource:
    """The upstream weather API over HTTP (``requests`` in a worker thread)."""

    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or _runtime.upstream_session()

    async def weather(self, latitude: float, longitude: float, hour: int) -> Weather:
        """The weather at a place; raise ``requests.HTTPError`` on failure."""
        # asyncio.to_thread copies the context: the log context and span follow the call.
        return await asyncio.to_thread(self._get, latitude, longitude, hour)

    def _get(self, latitude: float, longitude: float, hour: int) -> Weather:
        params = {"lat": latitude, "lon": longitude, "hour": hour}
        resp = self.session.get(f"{self.base_url}/weather", params=params, timeout=2.0)
        resp.raise_for_status()
        data = resp.json()
        return Weather(float(data["temperature_c"]), str(data["summary"]))


class ForecasterService(forecaster_pb2_grpc.ForecasterServicer):  # type: ignore[misc]  # generated, untyped
    """The Forecaster gRPC service over a locator and a weather source."""

    def __init__(self, locator: LocatorClient, weather: WeatherSource) -> None:
        self.locator = locator
        self.weather = weather

    async def Forecast(  # noqa: N802 (gRPC method name)
        self, request: forecaster_pb2.ForecastRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> forecaster_pb2.ForecastReply:
        """The current forecast at the location of ``request.ip``."""
        log.info("forecast requested", ip=request.ip)
        try:
            loc = await self.locator.locate(request.ip)
            log.info("located", city=loc.city)
            now = await self.weather.weather(loc.latitude, loc.longitude, 0)
        except Exception as exc:
            log.error("forecast failed", err=_describe(exc), ip=request.ip)
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"forecast failed: {_describe(exc)}")
        log.debug("weather answer", temperature_c=now.temperature_c, summary=now.summary)
        log.info("forecast ready", city=loc.city, summary=now.summary)
        return forecaster_pb2.ForecastReply(
            city=loc.city,
            country=loc.country,
            temperature_c=now.temperature_c,
            summary=now.summary,
        )

    async def Hourly(  # noqa: N802 (gRPC method name)
        self,
        request_iterator: AsyncIterator[forecaster_pb2.HourlyRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[forecaster_pb2.HourlyReply]:
        """Answer each requested hour, each message in its sender's trace context."""
        cache: dict[str, Location] = {}
        # Each message's trace context is current while it is handled; each message
        # gets its own span and its own log context (its own buffer).
        async for _, msg in interceptors.aiter_with_context(request_iterator):
            with _tracer.start_as_current_span("forecaster.hourly"), log.context():
                reply = await self._hour(msg, cache)
            if reply is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "hourly forecast failed")
                return  # abort raises; this is for the type checker
            yield reply

    async def _hour(
        self, msg: forecaster_pb2.HourlyRequest, cache: dict[str, Location]
    ) -> forecaster_pb2.HourlyReply | None:
        log.bind(ip=msg.ip, hour=msg.hour)
        log.info("hour requested")
        try:
            if msg.ip not in cache:
                cache[msg.ip] = await self.locator.locate(msg.ip)
            loc = cache[msg.ip]
            w = await self.weather.weather(loc.latitude, loc.longitude, msg.hour)
        except Exception as exc:
            log.error("hourly forecast failed", err=_describe(exc))
            return None
        log.debug("hour answer", temperature_c=w.temperature_c, summary=w.summary)
        log.info("hour ready", city=loc.city, summary=w.summary)
        return forecaster_pb2.HourlyReply(
            hour=msg.hour, city=loc.city, temperature_c=w.temperature_c, summary=w.summary
        )


def _describe(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__


async def serve(port: int, service: ForecasterService, probes: health.Probes) -> grpc.aio.Server:
    """Start the grpc.aio server (OTel spans, clue logs, debug switch, stream context)."""
    server_interceptors: list[Any] = [
        # Outermost: the span is current for everything inside. (OTel's is untyped.)
        aio_server_interceptor(),  # type: ignore[no-untyped-call]
        log.AioGrpcServerInterceptor(call_log_func=log.info),
        # Internal: honours the clue.debug mark, per RPC and per stream message.
        debug.AioGrpcServerInterceptor(trust_baggage=True),
        debug.AioPayloadGrpcServerInterceptor(),  # after the switch, as clue-debug says
        interceptors.AioTraceStreamServerInterceptor(trust_baggage=True),
    ]
    server = grpc.aio.server(interceptors=server_interceptors)
    forecaster_pb2_grpc.add_ForecasterServicer_to_server(service, server)
    servicer = health_grpc.AioHealthServicer(probes.checker, probes=probes, services=[SERVICE])
    health_grpc.add_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def _amain(args: Any) -> None:
    rt = _runtime.setup(
        "forecaster",
        args,
        health.new_pinger("locator", args.locator_admin),
        health.new_pinger("upstream", args.upstream),
    )
    RequestsInstrumentor().instrument()
    service = ForecasterService(
        GrpcLocatorClient(args.locator), HttpWeatherSource(f"http://{args.upstream}")
    )
    server = await serve(args.port, service, rt.probes)
    rt.serve_admin()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def request_stop() -> None:
        loop.call_soon_threadsafe(stop.set)

    rt.on_sigterm(request_stop)
    await stop.wait()
    await server.stop(grace=2.0)
    rt.shutdown()


def main(argv: list[str] | None = None) -> None:
    """Run the forecaster until SIGTERM."""
    parser = _runtime.base_parser("forecaster", __doc__)
    parser.add_argument("--upstream", required=True, help="upstream host:port")
    parser.add_argument("--locator", required=True, help="locator gRPC host:port")
    parser.add_argument("--locator-admin", required=True, help="locator admin host:port")
    asyncio.run(_amain(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
