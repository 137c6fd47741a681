"""The public API as users write it, checked by ``mypy --strict`` (the typecheck session).

Not a test module: pytest does not collect it and nothing runs it. Each ``assert_type``
states the type a user's code sees; a change of a public signature that breaks one fails
the typecheck session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import datetime
from typing import Any, assert_type

import grpc
import requests
from starlette.applications import Starlette
from starlette.routing import Mount

from clue import health
from clue.health.grpc import AioHealthServicer, HealthServicer, add_to_server


class Database:
    """A pinger as users write one: a name and a ``ping`` that raises when unhealthy."""

    name = "db"

    def ping(self) -> None:
        pass


class Cache:
    """An async pinger."""

    name = "cache"

    async def ping(self) -> None:
        pass


def checker() -> health.Checker:
    pinger = health.new_pinger("orders", "orders:8080", timeout=0.2, session=requests.Session())
    assert_type(pinger, health.Pinger)
    c = health.Checker(Database(), Cache(), pinger, timeout=health.DEFAULT_TIMEOUT)
    report, healthy = c.check()
    assert_type(report, health.Health)
    assert_type(healthy, bool)
    assert_type(report.healthy, bool)
    assert_type(report.uptime, int)
    assert_type(c.names, tuple[str, ...])
    assert_type(health.OK, str)
    assert_type(health.STARTED_AT, datetime)
    assert_type(health.VERSION, str)
    return c


async def acheck(c: health.Checker) -> None:
    report, healthy = await c.acheck()
    assert_type(report.status[health.NOT_OK], str)
    assert_type(healthy, bool)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return [b""]


def web(c: health.Checker) -> None:
    probes = health.Probes(c, healthz="/health")
    probes.install_sigterm_hook(grace=5.0)
    unsubscribe = probes.add_listener(lambda: None)
    assert_type(unsubscribe, Callable[[], None])
    assert_type(probes.ready, bool)
    app = Starlette(routes=[Mount("/healthz", app=health.asgi_handler(c))])
    asgi = probes.asgi(app)
    assert_type(
        asgi,
        Callable[
            [
                MutableMapping[str, Any],
                Callable[[], Awaitable[MutableMapping[str, Any]]],
                Callable[[MutableMapping[str, Any]], Awaitable[None]],
            ],
            Awaitable[None],
        ],
    )
    probes.wsgi(wsgi_app)
    health.wsgi_handler(c)


def grpc_server(c: health.Checker, probes: health.Probes) -> None:
    server = grpc.server(None)
    add_to_server(HealthServicer(c, probes=probes, services=["orders.Orders"]), server)
    aio_server = grpc.aio.server()
    add_to_server(AioHealthServicer(c, watch_interval=1.0), aio_server)


def http_pinger() -> None:
    health.HTTPPinger("orders", "http://orders/livez", 0.5, requests.Session()).ping()
