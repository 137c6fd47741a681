"""httpx transports (extra ``clue-log[httpx]``) that log every outgoing request.

This module imports ``httpx``; the ``clue.log`` facade loads it only when one of its names
is used.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Any

import httpx

from clue.log._http_client import ClientOptions, StatusErrorFunc
from clue.log._server_options import elapsed_ms

__all__ = ["AsyncHttpxTransport", "HttpxTransport"]


class HttpxTransport(httpx.BaseTransport):
    """An ``httpx`` transport that logs each outgoing request, wrapping another one.

    Logs like :class:`RequestsAdapter`: one ``finished client HTTP request`` line with
    ``http.method``, ``http.url`` (credentials removed), ``http.status`` and
    ``http.time_ms``; errors for transport failures and error statuses; optionally the
    capped body of error responses, which stay fully readable.

    Args:
        transport: the transport doing the work; default ``httpx.HTTPTransport()``.
        error_func: ``status -> bool``, whether a status is an error (default ``>= 400``).
        log_body_on_error: add the (capped) response body to error entries.
        max_body_size: the cap, in characters.
        request_log_func: writes the line of a successful request; default ``log.print``.

    Raises:
        ValueError: an option is malformed.

    Example:
        >>> import httpx
        >>> from clue import log
        >>> with httpx.Client(transport=log.HttpxTransport()) as client:
        ...     pass

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        error_func: StatusErrorFunc | None = None,
        log_body_on_error: bool = False,
        max_body_size: int = 1024,
        request_log_func: Callable[..., Any] | None = None,
    ) -> None:
        self._opts = ClientOptions(error_func, log_body_on_error, max_body_size, request_log_func)
        self._transport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        opts = self._opts
        start = perf_counter()
        try:
            response = self._transport.handle_request(request)
        except Exception as exc:
            opts.log_failure(
                request.method, str(request.url), elapsed_ms(start, perf_counter()), exc
            )
            raise
        ms = elapsed_ms(start, perf_counter())
        body = None
        if opts.log_body and opts.is_error(response.status_code):
            raw = _read_sync(response)
            body = _body_text(opts, response, raw)
        opts.log_response(request.method, str(request.url), response.status_code, ms, body)
        return response

    def close(self) -> None:
        self._transport.close()


class AsyncHttpxTransport(httpx.AsyncBaseTransport):
    """The asyncio form of :class:`HttpxTransport`, for ``httpx.AsyncClient``.

    Args:
        transport: the transport doing the work; default ``httpx.AsyncHTTPTransport()``.
        error_func: ``status -> bool``, whether a status is an error (default ``>= 400``).
        log_body_on_error: add the (capped) response body to error entries.
        max_body_size: the cap, in characters.
        request_log_func: writes the line of a successful request; default ``log.print``.

    Raises:
        ValueError: an option is malformed.

    Example:
        >>> import httpx
        >>> from clue import log
        >>> async def fetch(url: str) -> bytes:
        ...     async with httpx.AsyncClient(transport=log.AsyncHttpxTransport()) as client:
        ...         return (await client.get(url)).content

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        error_func: StatusErrorFunc | None = None,
        log_body_on_error: bool = False,
        max_body_size: int = 1024,
        request_log_func: Callable[..., Any] | None = None,
    ) -> None:
        self._opts = ClientOptions(error_func, log_body_on_error, max_body_size, request_log_func)
        self._transport = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        opts = self._opts
        start = perf_counter()
        try:
            response = await self._transport.handle_async_request(request)
        except Exception as exc:
            opts.log_failure(
                request.method, str(request.url), elapsed_ms(start, perf_counter()), exc
            )
            raise
        ms = elapsed_ms(start, perf_counter())
        body = None
        if opts.log_body and opts.is_error(response.status_code):
            raw = await _read_async(response)
            body = _body_text(opts, response, raw)
        opts.log_response(request.method, str(request.url), response.status_code, ms, body)
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


def _read_sync(response: httpx.Response) -> bytes | None:
    """Read the raw body and put it back as a replayable stream (None on failure)."""
    stream = response.stream
    if not isinstance(stream, httpx.SyncByteStream):
        return None
    try:
        raw = b"".join(stream)
    except Exception:
        return None
    finally:
        stream.close()
    response.stream = httpx.ByteStream(raw)
    return raw


async def _read_async(response: httpx.Response) -> bytes | None:
    """Read the raw body and put it back as a replayable stream (None on failure)."""
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        return None
    try:
        raw = b"".join([chunk async for chunk in stream])
    except Exception:
        return None
    finally:
        await stream.aclose()
    response.stream = httpx.ByteStream(raw)
    return raw


def _body_text(
    opts: ClientOptions, response: httpx.Response, raw: bytes | None
) -> Callable[[], str] | None:
    if raw is None:
        return None

    def body() -> str:
        # Decode as the caller would (content-encoding, charset) on a throwaway copy.
        copy = httpx.Response(
            response.status_code, headers=response.headers, stream=httpx.ByteStream(raw)
        )
        copy.read()
        return opts.cap(copy.text)

    return body
