"""``log_payloads``: log an endpoint's request and result while debug logs are on."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

import structlog

from clue.debug._control import debug_enabled_safely

__all__ = ["TRUNCATED_MARKER", "PayloadLogger", "format_json", "log_payloads", "truncate"]

TRUNCATED_MARKER = " ... <clue/debug.truncated>"
"""Appended to a payload cut to ``max_size`` characters."""

P = ParamSpec("P")
R = TypeVar("R")
Formatter = Callable[[object], str]


def format_json(value: object) -> str:
    """Serialise a payload as compact JSON, falling back to ``repr``; never raises.

    Protobuf messages become their JSON mapping (when ``protobuf`` is importable),
    dataclasses and pydantic models their fields, bytes a Python literal, anything else
    JSON cannot hold its ``repr``.

    Example:
        >>> format_json({"id": 1, "tags": ("a", "b")})
        '{"id":1,"tags":["a","b"]}'

    .. versionadded:: 0.1.0
    """
    try:
        return json.dumps(
            value, default=_json_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except Exception:  # recursion, NaN, a raising __repr__ in a nested value...
        return _safe_repr(value)


def _json_default(value: object) -> object:
    message = _protobuf_to_dict(value)
    if message is not None:
        return message
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return _safe_repr(value)


def _protobuf_to_dict(value: object) -> dict[str, Any] | None:
    # Only when protobuf is already loaded: a message instance implies it is.
    if "google.protobuf.message" not in sys.modules:
        return None
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import Message

    if isinstance(value, Message):
        return cast("dict[str, Any]", MessageToDict(value, preserving_proto_field_name=True))
    return None


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # a hostile __repr__ must not break the endpoint
        return f"<unrepresentable {type(value).__qualname__}>"


def truncate(text: str, max_size: int) -> str:
    """``text`` cut to ``max_size`` characters, followed by ``TRUNCATED_MARKER`` if cut."""
    if len(text) <= max_size:
        return text
    return text[:max_size] + TRUNCATED_MARKER


class PayloadLogger:
    """Formats and logs payloads; shared by the decorator and the gRPC interceptors."""

    __slots__ = ("format", "max_size", "payload_key", "result_key")

    def __init__(self, *, max_size: int, format: Formatter | None, client: bool) -> None:
        size: object = max_size  # validated at run time: callers may not type-check
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            msg = f"max_size must be a positive int, got {max_size!r}"
            raise ValueError(msg)
        formatter: object = format
        if formatter is not None and not callable(formatter):
            msg = f"format must be a callable value -> str, got {format!r}"
            raise ValueError(msg)
        self.max_size = max_size
        self.format: Formatter = format if format is not None else format_json
        self.payload_key = "client-payload" if client else "payload"
        self.result_key = "client-result" if client else "result"

    def enabled(self) -> bool:
        """Whether debug logs are on for the current log context."""
        return debug_enabled_safely()

    def payload(self, value: object) -> None:
        """Log ``value`` as the request payload."""
        self._log(self.payload_key, value)

    def result(self, value: object) -> None:
        """Log ``value`` as the result."""
        self._log(self.result_key, value)

    def _log(self, key: str, value: object) -> None:
        try:
            formatted: object = self.format(value)  # a user formatter may return anything
            text = formatted if isinstance(formatted, str) else _safe_repr(formatted)
        except Exception:  # a user formatter that fails falls back to repr
            text = _safe_repr(value)
        with contextlib.suppress(Exception):  # payload logging never breaks the endpoint
            structlog.get_logger("clue.debug").debug(key, **{key: truncate(text, self.max_size)})


def log_payloads(
    *,
    max_size: int = 1024,
    format: Formatter | None = None,
    client: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate an endpoint (sync or async) to log its request and result at debug level.

    While debug logs are on for the current log context (the switch, the trigger header,
    or ``clue.log``'s own debug), logs the request under ``payload`` and the return value
    under ``result`` (``client-payload`` / ``client-result`` with ``client=True``, for
    calls to other services). With debug off, it costs one check. The request is the
    single argument besides ``self``/``cls``, or a mapping of all arguments by name.
    Formatting never raises: a failing formatter falls back to ``repr``.

    Args:
        max_size: the longest logged text, in characters; longer is cut and ends with
            ``TRUNCATED_MARKER``.
        format: ``value -> str``; default ``format_json``.
        client: log under the ``client-*`` keys.

    Raises:
        ValueError: ``max_size`` is not a positive int or ``format`` is not callable.

    Example:
        >>> from clue import debug
        >>> @debug.log_payloads(max_size=256)
        ... def create_order(order: dict) -> dict:
        ...     return {"id": 1, **order}
        >>> create_order({"sku": "A1"})
        {'id': 1, 'sku': 'A1'}

    .. versionadded:: 0.1.0
    """
    logger = PayloadLogger(max_size=max_size, format=format, client=client)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        request_of = _request_extractor(fn)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                if not logger.enabled():
                    return await fn(*args, **kwargs)
                logger.payload(request_of(args, kwargs))
                result = await fn(*args, **kwargs)
                logger.result(result)
                return result

            return cast("Callable[P, R]", async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not logger.enabled():
                return fn(*args, **kwargs)
            logger.payload(request_of(args, kwargs))
            result = fn(*args, **kwargs)
            logger.result(result)
            return result

        return wrapper

    return decorate


def _request_extractor(
    fn: Callable[..., object],
) -> Callable[[tuple[Any, ...], Mapping[str, Any]], object]:
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None

    def request_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> object:
        try:
            if signature is None:
                return args[0] if len(args) == 1 and not kwargs else {"args": args, **kwargs}
            bound = signature.bind_partial(*args, **kwargs)
            values = {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}
            if len(values) == 1:
                return next(iter(values.values()))
            return values
        except Exception:  # a call the signature rejects still runs; log what was passed
            return {"args": args, "kwargs": dict(kwargs)}

    return request_of
