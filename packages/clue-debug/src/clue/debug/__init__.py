"""clue.debug: runtime debugging for Python services.

A debug-log switch (process-wide, HTTP-controlled, optionally time-limited) applied by
ASGI/WSGI middleware and gRPC interceptors; pprof-compatible profiling endpoints; payload
logging; a small WSGI+ASGI ``Mux`` and a loopback-only admin listener.

The gRPC names load grpc on first use only (extra ``clue-debug[grpc]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clue.debug._adapt import adapt
from clue.debug._admin import AdminServer, serve_admin
from clue.debug._asgi import ASGIMiddleware
from clue.debug._control import LogControl, get_log_control, set_log_control
from clue.debug._enabler import mount_debug_log_enabler
from clue.debug._http import AuthHook, Handler, Request, Response, Router
from clue.debug._mux import Mux
from clue.debug._payload import TRUNCATED_MARKER, format_json, log_payloads
from clue.debug._profiling import mount_pprof_handlers
from clue.debug._switch import DebugLogSwitch, default_switch
from clue.debug._wsgi import WSGIMiddleware

if TYPE_CHECKING:
    from clue.debug._grpc import (
        AioGrpcServerInterceptor,
        AioPayloadGrpcServerInterceptor,
        GrpcServerInterceptor,
        PayloadGrpcServerInterceptor,
    )
    from clue.debug._grpc_client import (
        PayloadGrpcClientInterceptor,
        aio_payload_grpc_client_interceptors,
    )

# Plain sorted() order, which the packaging check asserts (not ruff's isort-style order).
__all__ = [
    "ASGIMiddleware",
    "AdminServer",
    "AioGrpcServerInterceptor",
    "AioPayloadGrpcServerInterceptor",
    "AuthHook",
    "DebugLogSwitch",
    "GrpcServerInterceptor",
    "Handler",
    "LogControl",
    "Mux",
    "PayloadGrpcClientInterceptor",
    "PayloadGrpcServerInterceptor",
    "Request",
    "Response",
    "Router",
    "TRUNCATED_MARKER",
    "WSGIMiddleware",
    "adapt",
    "aio_payload_grpc_client_interceptors",
    "default_switch",
    "format_json",
    "get_log_control",
    "log_payloads",
    "mount_debug_log_enabler",
    "mount_pprof_handlers",
    "serve_admin",
    "set_log_control",
]

# Integrations on optional dependencies, imported on first use so that ``import clue.debug``
# never imports grpcio: name -> (module, extra).
_LAZY = {
    "AioGrpcServerInterceptor": ("_grpc", "grpc"),
    "AioPayloadGrpcServerInterceptor": ("_grpc", "grpc"),
    "GrpcServerInterceptor": ("_grpc", "grpc"),
    "PayloadGrpcServerInterceptor": ("_grpc", "grpc"),
    "PayloadGrpcClientInterceptor": ("_grpc_client", "grpc"),
    "aio_payload_grpc_client_interceptors": ("_grpc_client", "grpc"),
}


def __getattr__(name: str) -> Any:
    # A name on an optional extra, imported on first use. The same text in every clue
    # package that has extras: a missing extra is named with the command that installs it.
    try:
        module, extra = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:
        dist = __name__.replace(".", "-")
        raise ImportError(
            f"{__name__}.{name} needs the {extra!r} extra: pip install '{dist}[{extra}]' ({exc})",
            name=exc.name,
        ) from exc
    value = getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
