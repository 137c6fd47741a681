"""Options shared by the HTTP server middleware (ASGI and WSGI), validated once."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from clue.log import _api

__all__ = ["RequestLogFunc", "ServerOptions"]

#: What start/end lines are written with: ``log.print`` (default) or ``log.info``...
RequestLogFunc = Callable[..., Any]


class ServerOptions:
    """The middleware options, checked at construction time (``ValueError`` when bad)."""

    __slots__ = ("filters", "log_func", "log_requests", "request_ids")

    def __init__(
        self,
        path_filters: Iterable[str | re.Pattern[str]] | None,
        disable_request_logging: bool,
        disable_request_id: bool,
        request_log_func: RequestLogFunc | None,
    ) -> None:
        self.filters = _compile_filters(path_filters)
        if not isinstance(disable_request_logging, bool):
            raise ValueError(
                f"disable_request_logging must be a bool, got {disable_request_logging!r}"
            )
        if not isinstance(disable_request_id, bool):
            raise ValueError(f"disable_request_id must be a bool, got {disable_request_id!r}")
        if request_log_func is not None and not callable(request_log_func):
            raise ValueError(f"request_log_func must be callable, got {request_log_func!r}")
        self.log_requests = not disable_request_logging
        self.request_ids = not disable_request_id
        self.log_func: RequestLogFunc = request_log_func or _api.print

    def logs(self, path: str) -> bool:
        """Whether the request for ``path`` gets start/end lines."""
        if not self.log_requests:
            return False
        return not any(f.search(path) for f in self.filters)


def _compile_filters(
    path_filters: Iterable[str | re.Pattern[str]] | None,
) -> tuple[re.Pattern[str], ...]:
    if path_filters is None:
        return ()
    if isinstance(path_filters, str | bytes | re.Pattern):
        raise ValueError(
            f"path_filters must be a list of regexes, got the single value {path_filters!r}"
        )
    compiled: list[re.Pattern[str]] = []
    for f in path_filters:
        if isinstance(f, re.Pattern):
            compiled.append(f)
        elif isinstance(f, str):
            try:
                compiled.append(re.compile(f))
            except re.error as exc:
                raise ValueError(f"path_filters: invalid regex {f!r}: {exc}") from None
        else:
            raise ValueError(f"path_filters: expected a regex string, got {f!r}")
    return tuple(compiled)


def log_line(log_func: RequestLogFunc, msg: str, kv: dict[str, Any]) -> None:
    """Write a start/end line; a failing user ``request_log_func`` never reaches the app."""
    try:
        log_func(msg, **kv)
    except Exception:
        return


def elapsed_ms(start: float, now: float) -> float:
    """Milliseconds between two ``perf_counter()`` readings, to the microsecond."""
    return round((now - start) * 1000.0, 3)
