"""The locator service: resolves an IP address to a location (sync grpcio server).

It calls the upstream geolocation API with ``requests``, through clue-log's
``RequestsAdapter``. Run it with::

    python -m clue_example.locator --port 7001 --admin-port 7002 \
        --otlp-endpoint 127.0.0.1:4317 --upstream 127.0.0.1:8080
"""

from __future__ import annotations

import ipaddress
import threading
from concurrent import futures
from typing import Any

import grpc
import requests
from opentelemetry.instrumentation.grpc import server_interceptor
from opentelemetry.instrumentation.requests import RequestsInstrumentor

from clue import debug, health, log
from clue.health import grpc as health_grpc
from clue_example import _runtime
from clue_example.interfaces import GeoSource, Location
from clue_example.proto import locator_pb2, locator_pb2_grpc

__all__ = ["SERVICE", "HttpGeoSource", "LocatorService", "main", "serve"]

SERVICE = locator_pb2.DESCRIPTOR.services_by_name["Locator"].full_name


class HttpGeoSource:
    """The upstream geolocation API over HTTP, each call logged by clue-log."""

    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or _runtime.upstream_session()

    def lookup(self, ip: str) -> Location:
        """Resolve ``ip`` with the upstream; raise ``requests.HTTPError`` on failure."""
        resp = self.session.get(f"{self.base_url}/geo/{ip}", timeout=2.0)
        resp.raise_for_status()
        data = resp.json()
        return Location(
            ip=str(data["ip"]),
            city=str(data["city"]),
            country=str(data["country"]),
            latitude=float(data["latitude"]),
            longitude=float(data["longitude"]),
        )


class LocatorService(locator_pb2_grpc.LocatorServicer):  # type: ignore[misc]  # generated, untyped
    """The Locator gRPC service over a ``GeoSource``."""

    def __init__(self, source: GeoSource) -> None:
        self.source = source

    def Locate(  # noqa: N802 (gRPC method name)
        self, request: locator_pb2.LocateRequest, context: grpc.ServicerContext
    ) -> locator_pb2.Location:
        """Resolve one IP address; INVALID_ARGUMENT or UNAVAILABLE on failure."""
        log.info("locating", ip=request.ip)
        try:
            ipaddress.ip_address(request.ip)
        except ValueError:
            log.info("not an IP address", ip=request.ip)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not an IP address: {request.ip!r}")
        try:
            loc = self.source.lookup(request.ip)
        except Exception as exc:
            log.error("geolocation failed", err=exc, ip=request.ip)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"geolocation failed: {exc}")
        log.debug("geolocation answer", city=loc.city, lat=loc.latitude, lon=loc.longitude)
        log.info("located", city=loc.city, country=loc.country)
        return locator_pb2.Location(
            ip=loc.ip,
            city=loc.city,
            country=loc.country,
            latitude=loc.latitude,
            longitude=loc.longitude,
        )


def serve(port: int, source: GeoSource, probes: health.Probes, *, workers: int = 8) -> grpc.Server:
    """Start the gRPC server (OTel spans, clue logs, debug switch) on 127.0.0.1:port."""
    interceptors: list[Any] = [
        # Outermost: the span is current for everything inside. (OTel's is untyped.)
        server_interceptor(),  # type: ignore[no-untyped-call]
        log.GrpcServerInterceptor(call_log_func=log.info),
        # Internal: honours the clue.debug mark the front puts in a request's baggage.
        debug.GrpcServerInterceptor(trust_baggage=True),
        debug.PayloadGrpcServerInterceptor(),  # after the switch, as clue-debug says
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), interceptors=interceptors)
    locator_pb2_grpc.add_LocatorServicer_to_server(LocatorService(source), server)
    servicer = health_grpc.HealthServicer(probes.checker, probes=probes, services=[SERVICE])
    health_grpc.add_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def main(argv: list[str] | None = None) -> None:
    """Run the locator until SIGTERM."""
    parser = _runtime.base_parser("locator", __doc__)
    parser.add_argument("--upstream", required=True, help="upstream host:port")
    args = parser.parse_args(argv)
    rt = _runtime.setup("locator", args, health.new_pinger("upstream", args.upstream))
    RequestsInstrumentor().instrument()
    server = serve(args.port, HttpGeoSource(f"http://{args.upstream}"), rt.probes)
    rt.serve_admin()
    stop = threading.Event()
    rt.on_sigterm(stop.set)
    stop.wait()
    server.stop(grace=2.0).wait()
    rt.shutdown()


if __name__ == "__main__":
    main()
