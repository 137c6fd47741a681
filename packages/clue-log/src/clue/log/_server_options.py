"""Options shared by the HTTP server middleware (ASGI and WSGI), validated once."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

from clue.log import _api, _keys

__all__ = ["ErrorStatus", "RequestLogFunc", "ServerOptions"]

#: What start/end lines are written with: ``log.print`` (default) or ``log.info``...
RequestLogFunc = Callable[..., Any]
#: Decides whether a response status makes the request a failure (default ``>= 500``).
ErrorStatus = Callable[[int], bool]


def server_error(status: int) -> bool:
    """The default ``error_status``: a 5xx answer is a failure."""
    return status >= 500


class ServerOptions:
    """The middleware options, checked at construction time (``ValueError`` when bad)."""

    __slots__ = ("error_status", "filters", "log_func", "log_requests", "request_ids")

    def __init__(
        self,
        path_filters: Iterable[str | re.Pattern[str]] | None,
        disable_request_logging: bool,
        disable_request_id: bool,
        request_log_func: RequestLogFunc | None,
        error_status: ErrorStatus | None = None,
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
        check_not_async("request_log_func", request_log_func)
        self.log_requests = not disable_request_logging
        self.request_ids = not disable_request_id
        if error_status is not None and not callable(error_status):
            raise ValueError(
                f"error_status must be a callable taking the status int, got {error_status!r}"
            )
        check_not_async("error_status", error_status)
        self.log_func: RequestLogFunc = request_log_func or _api.print
        self.error_status: ErrorStatus = error_status or server_error

    def is_error(self, status: int) -> bool:
        """Whether ``status`` makes the request a failure.

        A user predicate must not break the request: one that raises, or answers an
        awaitable instead of a verdict, counts the status by the default rule.
        """
        if self.error_status is server_error:
            return status >= 500
        try:
            return verdict(self.error_status(status))
        except Exception:
            return status >= 500

    def logs(self, path: str) -> bool:
        """Whether the request for ``path`` gets start/end lines."""
        if not self.log_requests:
            return False
        return not any(f.search(path) for f in self.filters)


def check_not_async(name: str, func: object) -> None:
    """A callback option is called, never awaited: ``ValueError`` naming the option if async.

    An ``async def`` one would only make a coroutine (a predicate's coroutine is true for
    everything, a log function's lines are never written).
    """
    if func is not None and (
        inspect.iscoroutinefunction(func)
        or inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004 - the bound method, not callable()
    ):
        raise ValueError(f"{name} must be a plain (not async) function, got {func!r}")


def verdict(answer: object) -> bool:
    """A predicate's answer as a bool; an awaitable (no verdict) raises ``TypeError``.

    A coroutine is closed first, so it is never left unawaited.
    """
    if type(answer) is bool:
        return answer
    if inspect.isawaitable(answer):
        close = getattr(answer, "close", None)
        if close is not None:
            close()
        raise TypeError(f"a predicate answered an awaitable, not a verdict: {answer!r}")
    return bool(answer)


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


def log_end(opts: ServerOptions, logs: bool, kv: dict[str, Any], *, failed: bool = False) -> None:
    """End a request by its outcome. Never raises.

    An exception that escaped the app (``failed``), even after a successful status went out, or a
    failing status writes the request's buffered context and an ``end`` line at error severity; any
    other writes the ``end`` line (if ``logs``) with the request log function.
    """
    try:
        if failed or opts.is_error(kv[_keys.HTTP_STATUS_KEY]):
            if logs:
                _api.error("end", **kv)
            else:
                _api.flush()
            return
    except Exception:
        return
    if logs:
        log_line(opts.log_func, "end", kv)


def elapsed_ms(start: float, now: float) -> float:
    """Milliseconds between two ``perf_counter()`` readings, to the microsecond.

    Never negative and always finite: readings from a clock a test patched (travelling
    back in time, or reading ``inf`` or ``nan``) give ``0.0``, never an error.
    """
    # Hot path (every request's end line): whole microseconds divided by 1000 is the float
    # nearest the rounded value, as ``round(ms, 3)`` gives, at less than half its cost.
    us = (now - start) * 1e6
    if 0.0 <= us < _INF:  # false for nan too
        return round(us) / 1000
    return 0.0


_INF = float("inf")
