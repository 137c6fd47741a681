"""clue.health: health checks Kubernetes and gRPC can rely on.

Dependencies are pinged concurrently, each under a timeout; concurrent probes share
one evaluation; liveness and readiness are separate; every ping is a client span.
The gRPC health service lives in ``clue.health.grpc`` (extra ``clue-health[grpc]``).
"""

from __future__ import annotations

from clue.health._asgi import asgi_handler
from clue.health._checker import DEFAULT_CACHE_TTL, DEFAULT_TIMEOUT, Checker
from clue.health._health import NOT_OK, OK, STARTED_AT, VERSION, Health
from clue.health._http import HTTPPinger, PingError, new_pinger
from clue.health._pinger import Pinger
from clue.health._probes import Probes
from clue.health._wsgi import wsgi_handler

# Plain sorted() order, which the packaging check asserts (not ruff's isort-style order).
__all__ = [
    "Checker",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_TIMEOUT",
    "HTTPPinger",
    "Health",
    "NOT_OK",
    "OK",
    "PingError",
    "Pinger",
    "Probes",
    "STARTED_AT",
    "VERSION",
    "asgi_handler",
    "new_pinger",
    "wsgi_handler",
]
