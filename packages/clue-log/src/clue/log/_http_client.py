"""What the HTTP client integrations (requests, httpx) share: options and the log line."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from clue.log import _api, _keys
from clue.log._server_options import check_not_async, verdict

__all__ = ["MESSAGE", "ClientOptions", "redact_url"]

#: The message of the line logged for every outgoing request.
MESSAGE = "finished client HTTP request"

#: Decides whether a response status is logged as an error (default: ``status >= 400``).
StatusErrorFunc = Callable[[int], bool]


def _client_error(status: int) -> bool:
    return status >= 400


class ClientOptions:
    """HTTP client logging options, checked at construction time (``ValueError``)."""

    __slots__ = ("error_func", "log_body", "log_func", "max_body_size")

    def __init__(
        self,
        error_func: StatusErrorFunc | None,
        log_body_on_error: bool,
        max_body_size: int,
        request_log_func: Callable[..., Any] | None,
    ) -> None:
        if error_func is not None and not callable(error_func):
            raise ValueError(f"error_func must be callable, got {error_func!r}")
        check_not_async("error_func", error_func)
        if not isinstance(log_body_on_error, bool):
            raise ValueError(f"log_body_on_error must be a bool, got {log_body_on_error!r}")
        if (
            not isinstance(max_body_size, int)
            or isinstance(max_body_size, bool)
            or max_body_size < 1
        ):
            raise ValueError(f"max_body_size must be a positive int, got {max_body_size!r}")
        if request_log_func is not None and not callable(request_log_func):
            raise ValueError(f"request_log_func must be callable, got {request_log_func!r}")
        check_not_async("request_log_func", request_log_func)
        self.error_func: StatusErrorFunc = error_func or _client_error
        self.log_body = log_body_on_error
        self.max_body_size = max_body_size
        self.log_func: Callable[..., Any] = request_log_func or _api.print

    def is_error(self, status: int) -> bool:
        # A user predicate must not break the call: a failing one falls back to >= 400.
        try:
            return verdict(self.error_func(status))
        except Exception:
            return status >= 400

    def log_response(
        self, method: str, url: str, status: int, ms: float, body: Callable[[], str] | None
    ) -> None:
        """Log the finished request: an error for error statuses, else a plain line."""
        # Telemetry never raises into the app: a failing user callback is swallowed.
        with contextlib.suppress(Exception):
            kv: dict[str, Any] = {
                _keys.HTTP_METHOD_KEY: method,
                _keys.HTTP_URL_KEY: redact_url(url),
                _keys.HTTP_STATUS_KEY: status,
                _keys.HTTP_DURATION_KEY: ms,
            }
            if not self.is_error(status):
                self.log_func(MESSAGE, **kv)
                return
            if body is not None:
                kv[_keys.HTTP_BODY_KEY] = body()
            _api.error(MESSAGE, err=f"HTTP status {status}", **kv)

    def log_failure(self, method: str, url: str, ms: float, exc: BaseException) -> None:
        """Log a transport failure (no response at all) as an error."""
        with contextlib.suppress(Exception):  # telemetry never raises into the app
            _api.error(
                MESSAGE,
                err=exc,
                **{
                    _keys.HTTP_METHOD_KEY: method,
                    _keys.HTTP_URL_KEY: redact_url(url),
                    _keys.HTTP_DURATION_KEY: ms,
                },
            )

    def cap(self, text: str) -> str:
        """``text`` cut to ``max_body_size`` characters."""
        return text if len(text) <= self.max_body_size else text[: self.max_body_size]


def redact_url(url: str) -> str:
    """``url`` without its user:password part, so credentials never reach the logs.

    Everything else is kept byte for byte (no re-encoding, empty query kept).
    """
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    start = scheme_end + 3
    end = len(url)
    for sep in "/?#":
        i = url.find(sep, start)
        if 0 <= i < end:
            end = i
    at = url.rfind("@", start, end)
    if at < 0:
        return url
    return url[:start] + url[at + 1 :]
