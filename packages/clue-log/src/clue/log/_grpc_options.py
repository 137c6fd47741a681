"""gRPC interceptors' shared pieces.

Options checked at construction time, method names, and the one ``end`` line every call (served or
outgoing, sync or aio) logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc

from clue.log import _api, _keys
from clue.log._server_options import check_not_async, verdict

#: Decides whether a status code is logged as an error (default: any code but OK).
ErrorFunc = Callable[[grpc.StatusCode], bool]
#: What start/end lines are written with: ``log.print`` (default) or ``log.info``...
CallLogFunc = Callable[..., Any]

# The metadata key a request id travels under, read by the servers, sent by the clients.
REQUEST_ID_METADATA = "x-request-id"


def _not_ok(code: grpc.StatusCode) -> bool:
    return code is not grpc.StatusCode.OK


class Options:
    """Interceptor options, checked at construction time (``ValueError`` when bad)."""

    __slots__ = ("call_ids", "error_func", "log_calls", "log_func", "ok_plain")

    def __init__(
        self,
        error_func: ErrorFunc | None,
        disable_call_logging: bool,
        disable_call_id: bool,
        call_log_func: CallLogFunc | None,
    ) -> None:
        if error_func is not None and not callable(error_func):
            raise ValueError(f"error_func must be callable, got {error_func!r}")
        check_not_async("error_func", error_func)
        if not isinstance(disable_call_logging, bool):
            raise ValueError(f"disable_call_logging must be a bool, got {disable_call_logging!r}")
        if not isinstance(disable_call_id, bool):
            raise ValueError(f"disable_call_id must be a bool, got {disable_call_id!r}")
        if call_log_func is not None and not callable(call_log_func):
            raise ValueError(f"call_log_func must be callable, got {call_log_func!r}")
        check_not_async("call_log_func", call_log_func)
        self.error_func: ErrorFunc = error_func or _not_ok
        # The default rule: an OK call is never an error (the servers' common end).
        self.ok_plain = error_func is None
        self.log_calls = not disable_call_logging
        self.call_ids = not disable_call_id
        self.log_func: CallLogFunc = call_log_func or _api.print

    def is_error(self, code: grpc.StatusCode) -> bool:
        if self.error_func is _not_ok:
            return code is not grpc.StatusCode.OK
        # A user predicate must not break the RPC: a failing one counts the code as error.
        try:
            return verdict(self.error_func(code))
        except Exception:
            return code is not grpc.StatusCode.OK


# ``StatusCode.name`` is an enum property (slow): read once per code.
_NAMES = {code: code.name for code in grpc.StatusCode}


def code_name(code: grpc.StatusCode) -> str:
    """The code's name (``OK``, ``NOT_FOUND``...)."""
    name = _NAMES.get(code)
    return name if name is not None else str(code.name)


def split_method(full: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` -> (``pkg.Service``, ``Method``)."""
    service, _, method = full.lstrip("/").rpartition("/")
    return service, method


def as_text(details: str | bytes | None) -> str:
    """Status details (or a method name) as ``str``; bytes decoded leniently."""
    if details is None:
        return ""
    if isinstance(details, bytes):
        return details.decode("utf-8", "replace")
    return details


def log_end(
    opts: Options,
    head: Mapping[str, str],
    code: grpc.StatusCode,
    details: str | bytes | None,
    exc: BaseException | None,
    ms: float,
) -> None:
    """Log the ``end`` of a call.

    At error severity (with ``grpc.status`` and ``err``, the escaping exception or else the details)
    when ``error_func`` says so, else with the call log function unless call logging is disabled.
    ``head`` goes first (the client's ``grpc.service`` and ``grpc.method``; empty on the server,
    where they are bound).
    """
    name = code_name(code)
    if opts.is_error(code):
        text = as_text(details)
        _api.error(
            "end",
            err=exc if exc is not None else (text or name),
            **head,
            **{
                _keys.GRPC_CODE_KEY: name,
                _keys.GRPC_STATUS_KEY: text,
                _keys.GRPC_DURATION_KEY: ms,
            },
        )
    elif opts.log_calls:
        if head:
            opts.log_func("end", **head, **{_keys.GRPC_CODE_KEY: name, _keys.GRPC_DURATION_KEY: ms})
        else:
            opts.log_func("end", **{_keys.GRPC_CODE_KEY: name, _keys.GRPC_DURATION_KEY: ms})
