"""clue.log: per-request log buffering on structlog.

Each request's log entries stay in memory and are written only when the request fails
(``log.error``) or is traced (the current span is sampled). A successful, untraced request
writes nothing; a failed one writes everything that led to the failure, in order, with the
original timestamps.

Example:
    >>> import io
    >>> from clue import log
    >>> out = io.StringIO()
    >>> log.configure(output=out, format=log.format_text)
    >>> with log.context():
    ...     log.info("loading user", user="alice")
    ...     log.error("payment failed", err="card declined")
    >>> len(out.getvalue().splitlines())
    2
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from clue.log import _keys
from clue.log._api import debug, debug_enabled, error, fatal, flush, info, print, warn, warning
from clue.log._asgi import ASGIMiddleware
from clue.log._config import configure
from clue.log._context import bind, context
from clue.log._endpoint import endpoint
from clue.log._entry import Entry
from clue.log._format import format_json, format_terminal, format_text
from clue.log._kv import KV, Fields
from clue.log._otlp import otlp_output
from clue.log._stdlib import StdlibHandler, as_std_logger
from clue.log._structlog_call import TimeStamper
from clue.log._structlog_chain import BufferingProcessor
from clue.log._structlog_wrapper import buffering_wrapper_class
from clue.log._tracing import is_tracing, span
from clue.log._wsgi import WSGIMiddleware

if typing.TYPE_CHECKING:
    from clue.log._grpc_aio_client import aio_grpc_client_interceptors
    from clue.log._grpc_aio_server import AioGrpcServerInterceptor
    from clue.log._grpc_client import GrpcClientInterceptor
    from clue.log._grpc_server import GrpcServerInterceptor
    from clue.log._httpx import AsyncHttpxTransport, HttpxTransport
    from clue.log._requests import RequestsAdapter

MESSAGE_KEY = str(_keys.MESSAGE_KEY)
ERROR_MESSAGE_KEY = str(_keys.ERROR_MESSAGE_KEY)
EXCEPTION_KEY = str(_keys.EXCEPTION_KEY)
TIMESTAMP_KEY = str(_keys.TIMESTAMP_KEY)
SEVERITY_KEY = str(_keys.SEVERITY_KEY)
TRACE_ID_KEY = str(_keys.TRACE_ID_KEY)
SPAN_ID_KEY = str(_keys.SPAN_ID_KEY)
REQUEST_ID_KEY = str(_keys.REQUEST_ID_KEY)
SERVICE_KEY = str(_keys.SERVICE_KEY)
METHOD_KEY = str(_keys.METHOD_KEY)
FILE_KEY = str(_keys.FILE_KEY)
LOGGER_KEY = str(_keys.LOGGER_KEY)
HTTP_METHOD_KEY = str(_keys.HTTP_METHOD_KEY)
HTTP_URL_KEY = str(_keys.HTTP_URL_KEY)
HTTP_FROM_KEY = str(_keys.HTTP_FROM_KEY)
HTTP_STATUS_KEY = str(_keys.HTTP_STATUS_KEY)
HTTP_DURATION_KEY = str(_keys.HTTP_DURATION_KEY)
HTTP_BYTES_KEY = str(_keys.HTTP_BYTES_KEY)
HTTP_BODY_KEY = str(_keys.HTTP_BODY_KEY)
GRPC_SERVICE_KEY = str(_keys.GRPC_SERVICE_KEY)
GRPC_METHOD_KEY = str(_keys.GRPC_METHOD_KEY)
GRPC_CODE_KEY = str(_keys.GRPC_CODE_KEY)
GRPC_STATUS_KEY = str(_keys.GRPC_STATUS_KEY)
GRPC_DURATION_KEY = str(_keys.GRPC_DURATION_KEY)
TIMESTAMP_FORMAT = _keys.TIMESTAMP_FORMAT

__all__ = [
    "ASGIMiddleware",
    "AioGrpcServerInterceptor",
    "AsyncHttpxTransport",
    "BufferingProcessor",
    "ERROR_MESSAGE_KEY",
    "EXCEPTION_KEY",
    "Entry",
    "FILE_KEY",
    "Fields",
    "GRPC_CODE_KEY",
    "GRPC_DURATION_KEY",
    "GRPC_METHOD_KEY",
    "GRPC_SERVICE_KEY",
    "GRPC_STATUS_KEY",
    "GrpcClientInterceptor",
    "GrpcServerInterceptor",
    "HTTP_BODY_KEY",
    "HTTP_BYTES_KEY",
    "HTTP_DURATION_KEY",
    "HTTP_FROM_KEY",
    "HTTP_METHOD_KEY",
    "HTTP_STATUS_KEY",
    "HTTP_URL_KEY",
    "HttpxTransport",
    "KV",
    "LOGGER_KEY",
    "MESSAGE_KEY",
    "METHOD_KEY",
    "REQUEST_ID_KEY",
    "RequestsAdapter",
    "SERVICE_KEY",
    "SEVERITY_KEY",
    "SPAN_ID_KEY",
    "StdlibHandler",
    "TIMESTAMP_FORMAT",
    "TIMESTAMP_KEY",
    "TRACE_ID_KEY",
    "TimeStamper",
    "WSGIMiddleware",
    "aio_grpc_client_interceptors",
    "as_std_logger",
    "bind",
    "buffering_wrapper_class",
    "configure",
    "context",
    "debug",
    "debug_enabled",
    "endpoint",
    "error",
    "fatal",
    "flush",
    "format_json",
    "format_terminal",
    "format_text",
    "info",
    "is_tracing",
    "otlp_output",
    "print",
    "span",
    "warn",
    "warning",
]


class _Module(types.ModuleType):
    """Forwards ``clue.log.<KEY> = value`` to the key table read at call time."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _keys.NAMES:
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty str, got {value!r}")
            _keys.set_name(name, value)
        super().__setattr__(name, value)


# Integrations on optional dependencies, imported on first use so that ``import clue.log``
# never imports grpcio, requests or httpx: name -> (module, extra).
_LAZY = {
    "GrpcServerInterceptor": ("_grpc_server", "grpc"),
    "AioGrpcServerInterceptor": ("_grpc_aio_server", "grpc"),
    "GrpcClientInterceptor": ("_grpc_client", "grpc"),
    "aio_grpc_client_interceptors": ("_grpc_aio_client", "grpc"),
    "RequestsAdapter": ("_requests", "requests"),
    "HttpxTransport": ("_httpx", "httpx"),
    "AsyncHttpxTransport": ("_httpx", "httpx"),
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


sys.modules[__name__].__class__ = _Module
