"""clue.debug: runtime debugging for Python services.

A debug-log switch (process-wide, HTTP-controlled, optionally time-limited) applied by
ASGI/WSGI middleware and gRPC interceptors; pprof-compatible profiling endpoints; payload
logging; a small WSGI+ASGI ``Mux`` and a loopback-only admin listener.

The gRPC names load grpc on first use only (extra ``clue-debug[grpc]``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._adapt import adapt
from ._admin import AdminServer, serve_admin
from ._asgi import ASGIMiddleware
from ._control import LogControl, get_log_control, set_log_control
from ._enabler import mount_debug_log_enabler
from ._http import AuthHook, Handler, Request, Response, Router
from ._mux import Mux
from ._payload import TRUNCATED_MARKER, format_json, log_payloads
from ._profiling import mount_pprof_handlers
from ._switch import DebugLogSwitch, default_switch
from ._wsgi import WSGIMiddleware

if TYPE_CHECKING:
    from ._grpc import (
        AioGrpcServerInterceptor,
        AioPayloadGrpcServerInterceptor,
        GrpcServerInterceptor,
        PayloadGrpcServerInterceptor,
    )
    from ._grpc_client import PayloadGrpcClientInterceptor, aio_payload_grpc_client_interceptors

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

# The gRPC names import grpc: each loads its module on first access only.
_LAZY = {
    "AioGrpcServerInterceptor": "_grpc",
    "AioPayloadGrpcServerInterceptor": "_grpc",
    "GrpcServerInterceptor": "_grpc",
    "PayloadGrpcServerInterceptor": "_grpc",
    "PayloadGrpcClientInterceptor": "_grpc_client",
    "aio_payload_grpc_client_interceptors": "_grpc_client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
