"""``RequestsAdapter`` (extra ``clue-log[requests]``): logs every outgoing request.

This module imports ``requests``; the ``clue.log`` facade loads it only when
``log.RequestsAdapter`` is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any

import requests
import requests.adapters

from clue.log._http_client import ClientOptions, StatusErrorFunc
from clue.log._server_options import elapsed_ms

__all__ = ["RequestsAdapter"]


class RequestsAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` transport adapter that logs each outgoing request.

    Every request logs one line, ``finished client HTTP request``, with ``http.method``,
    ``http.url`` (credentials removed), ``http.status`` (an int) and ``http.time_ms``, in
    the caller's log context. Transport failures (connection refused, reset, timeout...)
    and error statuses (``error_func``, default ``status >= 400``) are logged as errors,
    which flushes the caller's buffer. With ``log_body_on_error`` the response body of an
    error status is added as ``http.body``, cut to ``max_body_size`` characters; the
    response stays fully readable by the caller.

    Args:
        error_func: ``status -> bool``, whether a status is an error.
        log_body_on_error: add the (capped) response body to error entries.
        max_body_size: the cap, in characters.
        request_log_func: writes the line of a successful request; default
            ``log.print``; ``log.info`` makes it buffered.
        **adapter_kwargs: passed to ``requests.adapters.HTTPAdapter`` (``max_retries``,
            ``pool_maxsize``...).

    Raises:
        ValueError: an option is malformed.

    Example:
        >>> import requests
        >>> from clue import log
        >>> session = requests.Session()
        >>> adapter = log.RequestsAdapter(log_body_on_error=True)
        >>> session.mount("http://", adapter)
        >>> session.mount("https://", adapter)
        >>> session.close()

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        error_func: StatusErrorFunc | None = None,
        log_body_on_error: bool = False,
        max_body_size: int = 1024,
        request_log_func: Callable[..., Any] | None = None,
        **adapter_kwargs: Any,
    ) -> None:
        self._clue_opts = ClientOptions(
            error_func, log_body_on_error, max_body_size, request_log_func
        )
        super().__init__(**adapter_kwargs)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        opts = self._clue_opts
        method = request.method or ""
        url = request.url or ""
        start = perf_counter()
        try:
            response = super().send(request, stream, timeout, verify, cert, proxies)
        except Exception as exc:
            opts.log_failure(method, url, elapsed_ms(start, perf_counter()), exc)
            raise
        ms = elapsed_ms(start, perf_counter())
        body = None
        if opts.log_body:

            def body() -> str:
                # .content reads the body once and caches it: the caller can still
                # read it (.content, .text, .json(), iter_content()).
                content = response.content[: opts.max_body_size * 4]
                return opts.cap(content.decode(response.encoding or "utf-8", "replace"))

        opts.log_response(method, url, response.status_code, ms, body)
        return response
