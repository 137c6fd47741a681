"""Log contexts: the unit of buffering, carried by a ContextVar.

A log context holds the buffered entries, the bound key/values and the per-context
switches. ``context()`` opens one and resets the ContextVar with its token on exit, so a
reused worker thread never sees a previous request's context; asyncio tasks and
``copy_context()`` see the context that was current when they were created.
"""

from __future__ import annotations

import functools
import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from clue.log._config import state
from clue.log._format import limits
from clue.log._kv import KV

P = ParamSpec("P")
R = TypeVar("R")

#: Bound key/values: an immutable tuple of pairs, replaced (never mutated) on bind, so a
#: buffered entry keeps a reference to what was bound when it was logged.
Bound = tuple[tuple[str, Any], ...]


class LogContext:
    """The state of one log context (one request, one RPC, one stream message)."""

    __slots__ = ("appended", "bound", "buf", "debug")

    def __init__(self, bound: Bound, debug: bool, buffered: bool, max_buffered: int) -> None:
        self.bound = bound
        self.debug = debug
        # None means unbuffered: every entry is written at once.
        self.buf: deque[Any] | None = deque(maxlen=max_buffered) if buffered else None
        self.appended = 0

    def __repr__(self) -> str:
        size = "unbuffered" if self.buf is None else f"{len(self.buf)} buffered"
        return f"<LogContext {size} debug={self.debug} bound={dict(self.bound)!r}>"


current: ContextVar[LogContext | None] = ContextVar("clue.log.context", default=None)


class _Root:
    """Key/values bound outside any log context: process-wide, inherited by all."""

    bound: Bound = ()


root = _Root()


class context:  # noqa: N801 - reads as a function: ``with log.context():``
    """Open a new log context: a fresh buffer that inherits bound key/values and debug.

    Usable as ``with log.context(): ...`` (in sync and async code alike) and as a
    decorator of sync and async functions (each call gets its own context).

    Args:
        debug: turn debug logs on (and buffering off) for this context; default:
            inherited from the enclosing context.
        disable_buffering: write every entry of this context at once.

    Example:
        >>> import io
        >>> from clue import log
        >>> out = io.StringIO()
        >>> log.configure(output=out, format=log.format_text)
        >>> with log.context():
        ...     log.info("buffered")
        >>> out.getvalue()  # a successful context writes nothing
        ''
    """

    __slots__ = ("_debug", "_disable", "_token")

    def __init__(self, *, debug: bool | None = None, disable_buffering: bool = False) -> None:
        if debug is not None and not isinstance(debug, bool):
            raise ValueError(f"debug must be a bool or None, got {debug!r}")
        if not isinstance(disable_buffering, bool):
            raise ValueError(f"disable_buffering must be a bool, got {disable_buffering!r}")
        self._debug = debug
        self._disable = disable_buffering
        self._token: Token[LogContext | None] | None = None

    def __enter__(self) -> LogContext:
        ctx = new_context(self._debug, self._disable)
        self._token = current.set(ctx)
        return ctx

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            current.reset(token)

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        debug, disable = self._debug, self._disable
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with context(debug=debug, disable_buffering=disable):
                    return await fn(*args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            with context(debug=debug, disable_buffering=disable):
                return fn(*args, **kwargs)

        return cast("Callable[P, Any]", wrapper)


def new_context(debug: bool | None, disable_buffering: bool) -> LogContext:
    """Build a context that inherits from the current one (not yet made current)."""
    parent = current.get()
    bound = parent.bound if parent is not None else root.bound
    if debug is None:
        debug = parent.debug if parent is not None else False
    buffered = not (debug or disable_buffering or state.debug)
    return LogContext(bound, debug, buffered, state.max_buffered)


def bind(*fielders: Any, **kv: Any) -> None:
    """Add key/values to the current context for every later entry (the seed's ``With``).

    Accepts ``KV`` and ``Fields`` positionally and keywords. Outside any log context the
    key/values are bound process-wide and inherited by every context opened later.

    Example:
        >>> from clue import log
        >>> with log.context():
        ...     log.bind(order_id="abc123")
        ...     log.bind(log.KV("user", "alice"))
    """
    pairs: list[tuple[str, Any]] = []
    for f in fielders:
        pairs.extend(pairs_of(f))
    pairs.extend(kv.items())
    if not pairs:
        return
    ctx = current.get()
    target: LogContext | _Root = ctx if ctx is not None else root
    target.bound = (*target.bound, *snapshot_pairs(pairs))


def pairs_of(obj: Any) -> list[tuple[str, Any]]:
    """Key/value pairs of a ``KV``, a mapping, or an iterable of pairs."""
    if isinstance(obj, KV):
        return [(obj.k, obj.v)]
    if isinstance(obj, dict):
        return list(obj.items())
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str):
        return [obj]
    raise TypeError(f"expected log.KV, log.Fields or a (key, value) pair, got {obj!r}")


_MUTABLE = frozenset({list, dict, set, bytearray})


def snapshot(v: Any) -> Any:
    """A shallow copy of a mutable container, capped so a huge one costs little."""
    cap = limits.max_size + 1
    t = type(v)
    try:
        if t is list:
            return v[:cap]
        if t is dict:
            return dict(v) if len(v) <= cap else dict(list(v.items())[:cap])
        if t is set:
            return set(v) if len(v) <= cap else set(list(v)[:cap])
        if t is bytearray:
            return bytes(v)
    except Exception:  # mutated concurrently: keep the object itself
        return v
    return v


def snapshot_pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(k, snapshot(v)) if type(v) in _MUTABLE else (k, v) for k, v in pairs]
