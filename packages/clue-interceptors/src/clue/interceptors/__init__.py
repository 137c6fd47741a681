"""clue.interceptors: trace context carried in every message of a stream.

A long-lived gRPC stream is one span to standard instrumentation. These interceptors
carry the trace context inside each message instead (a ``map<string,string>`` field,
``trace_metadata`` by default): the sender stamps each message with its current
context, the receiver handles each message in the context it carries.

The gRPC interceptors are loaded on first access, so the transport-agnostic
:func:`inject` / :func:`extract` and the receive helpers never import grpc.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from clue.interceptors._carrier import (
    extract,
    inject,
)
from clue.interceptors._iterate import ContextAsyncIterator, aiter_with_context, iter_with_context
from clue.interceptors._recv import get_trace_stream_recv_context, setup_trace_stream_recv_context

if TYPE_CHECKING:
    from clue.interceptors._aio_client import aio_trace_stream_client_interceptors
    from clue.interceptors._aio_server import AioTraceStreamServerInterceptor
    from clue.interceptors._client import TracedCall, TraceStreamClientInterceptor
    from clue.interceptors._server import TraceStreamServerInterceptor

__all__ = [
    "AioTraceStreamServerInterceptor",
    "ContextAsyncIterator",
    "TraceStreamClientInterceptor",
    "TraceStreamServerInterceptor",
    "TracedCall",
    "aio_trace_stream_client_interceptors",
    "aiter_with_context",
    "extract",
    "get_trace_stream_recv_context",
    "inject",
    "iter_with_context",
    "setup_trace_stream_recv_context",
]

# Names whose modules import grpc, loaded on first access.
_LAZY = {
    "AioTraceStreamServerInterceptor": "_aio_server",
    "TraceStreamClientInterceptor": "_client",
    "TraceStreamServerInterceptor": "_server",
    "TracedCall": "_client",
    "aio_trace_stream_client_interceptors": "_aio_client",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
