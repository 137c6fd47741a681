"""``log.endpoint(service, method)``: bind the service and method names for one call."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast, overload

from clue.log import _keys
from clue.log._context import LogContext, Request, context, current, wrap_generator

__all__ = ["endpoint"]

P = ParamSpec("P")
R = TypeVar("R")


class endpoint:  # noqa: N801 - reads as a function: ``@log.endpoint("orders", "create")``
    """Decorator binding the service and method names for each call of a function.

    The keys are ``service`` and ``method``; the function may be sync or async.

    The names are added to the current log context while the call runs and removed when
    it returns or raises; other key/values bound meanwhile stay. Outside any log context,
    each call opens one.

    Args:
        service: the service name.
        method: the method (endpoint) name.

    Raises:
        ValueError: ``service`` or ``method`` is not a non-empty string.

    Example:
        >>> import io
        >>> from clue import log
        >>> out = io.StringIO()
        >>> log.configure(output=out, format=log.format_text)
        >>> @log.endpoint("orders", "create")
        ... def create(order_id: str) -> None:
        ...     log.print("creating", order=order_id)
        >>> create("o-1")
        >>> out.getvalue().split(" ", 2)[2].strip()
        'service=orders method=create msg=creating order=o-1'

    .. versionadded:: 0.1.0
    """

    __slots__ = ("method", "service")

    def __init__(self, service: str, method: str) -> None:
        if not isinstance(service, str) or not service:
            raise ValueError(f"service must be a non-empty str, got {service!r}")
        if not isinstance(method, str) or not method:
            raise ValueError(f"method must be a non-empty str, got {method!r}")
        self.service = service
        self.method = method

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        enter, leave = self._enter, _leave
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            return wrap_generator(fn, lambda: _Steps(enter))
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                scope = enter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    leave(scope)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            scope = enter()
            try:
                return fn(*args, **kwargs)
            finally:
                leave(scope)

        return cast("Callable[P, Any]", wrapper)

    def _enter(self) -> tuple[Request, tuple[tuple[str, Any], ...], context | None]:
        opened = None
        ctx = current.get()
        if ctx is None:
            opened = context()
            ctx = opened.__enter__()
        pairs = (
            (_keys.SERVICE_KEY, self.service),
            (_keys.METHOD_KEY, self.method),
        )
        # A new view of the context for this call: concurrent calls in other tasks keep
        # their own names.
        current.set(LogContext(ctx.req, (*ctx.bound, *pairs)))
        return ctx.req, pairs, opened


def _leave(scope: tuple[Request, tuple[tuple[str, Any], ...], context | None]) -> None:
    req, pairs, opened = scope
    if opened is not None:
        opened.__exit__(None, None, None)
        return
    # Remove exactly the pairs added for this call (by identity): what the call bound
    # itself stays bound.
    ctx = current.get()
    if ctx is not None and ctx.req is req:
        kept = tuple(p for p in ctx.bound if not any(p is q for q in pairs))
        current.set(LogContext(req, kept))


class _Steps:
    """The names bound around each step of a decorated generator (its body runs there)."""

    __slots__ = ("enter",)

    def __init__(self, enter: Callable[[], Any]) -> None:
        self.enter = enter

    def leave(self, scope: Any, /) -> None:
        _leave(scope)
