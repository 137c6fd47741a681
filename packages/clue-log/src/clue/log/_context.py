"""Log contexts: the unit of buffering, carried by a ContextVar.

A log context holds the buffered entries, the bound key/values and the per-context
switches. ``context()`` opens one and resets the ContextVar with its token on exit, so a
reused worker thread never sees a previous request's context; asyncio tasks and
``copy_context()`` see the context that was current when they were created.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections import deque
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

from clue.log._budget import ENTRY_BYTES, budget, ended, fork_epoch, reset_after_fork
from clue.log._kv import KV
from clue.log._render import limits
from clue.log._state import state

P = ParamSpec("P")
R = TypeVar("R")

#: Bound key/values: an immutable tuple of pairs, replaced (never mutated) on bind, so a
#: buffered entry keeps a reference to what was bound when it was logged.
Bound = tuple[tuple[str, Any], ...]


class Request:
    """What every task and copied context of one log context shares.

    That is the buffer, its bounds and what it holds of the process-wide budget, and the
    per-context switches.
    """

    __slots__ = (
        "aside",
        "buf",
        "counted",
        "debug",
        "disable",
        "dropped",
        "epoch",
        "gen",
        "limit",
        "lost",
        "room",
        "units",
        "written",
        "wrote",
    )

    # Written for speed on purpose: every request, RPC and task context opens one. Chained
    # stores and conditional expressions (no ``min()``), no helper calls.
    def __init__(
        self, debug: bool | None, disable: bool | None, buffered: bool, max_buffered: int
    ) -> None:
        # None: follow ``configure(debug=...)``; an explicit value wins over it.
        self.debug = debug
        # None: follow ``configure(disable_buffering=...)``; an explicit value wins over it.
        self.disable = disable
        # The hot path's one counter, read and written once per buffered call: estimated
        # bytes the context may still buffer, at most ``ENTRY_BYTES`` a free slot of the
        # buffer (below zero, ``_budget.tight`` decides); what is over that is ``aside``;
        # ``limit`` minus both is what it holds. Entries dropped since the last drain
        # (``lost``); tokens it holds of the process-wide budget's pool (``units``), in the
        # pool's generation ``gen`` (``_budget``). Entries written and dropped by drains so
        # far, and whether anything was written (not only buffered): counted when the
        # context ends.
        self.limit = self.room = self.aside = self.lost = self.units = 0
        self.written = self.dropped = 0
        self.wrote = False
        self.gen = budget.gen
        self.epoch = fork_epoch[0]
        # Only a context that buffers counts in ``clue.log.contexts`` (not a debug view).
        self.counted = buffered
        if not buffered:
            # None means unbuffered: every entry is written at once.
            self.buf: deque[Any] | None = None
            return
        # ``_budget.admit`` keeps it within ``max_buffered`` entries (maxlen backs that up).
        self.buf = deque((), max_buffered)  # noqa: RUF037 - positional: no keyword parsing
        # Its first token, when the pool has one (``_budget.admit`` takes more later).
        try:
            budget.pool.pop()
        except IndexError:
            return
        self.units = 1
        most = state.max_buffered_bytes
        grant = budget.grant
        self.limit = limit = most if most < grant else grant  # noqa: FURB136 - no call
        # ``_budget.set_room`` written inline (the buffer is empty).
        cap = (max_buffered + 1) * ENTRY_BYTES - 1
        self.room = room = limit if limit < cap else cap  # noqa: FURB136 - no call
        self.aside = limit - room

    # The context has ended, on whatever path it was left (a ``with`` block, a
    # middleware's token reset, a generator or task dropped): its outcome is counted and
    # its share of the budget given back. Never raises, never blocks.
    __del__ = ended

    @property
    def appended(self) -> int:
        """Calls buffered since the last drain, dropped ones included."""
        return self.lost + (len(self.buf) if self.buf is not None else 0)

    def debug_on(self) -> bool:
        """Whether debug is on here: the explicit value, else the global default."""
        return state.debug if self.debug is None else self.debug


class LogContext:
    """One task's view of a log context.

    It pairs the shared request state with the key/values bound in this task (or copied
    context).

    The ContextVar holds the view. ``bind`` sets a new view rather than mutating this one,
    so a bind in a child task or a copied context stays there, while every view of the
    request shares its one ``Request`` (and so its one buffer).
    """

    __slots__ = ("bound", "req")

    def __init__(self, req: Request, bound: Bound) -> None:
        self.req = req
        self.bound = bound

    def __repr__(self) -> str:
        buf = self.req.buf
        size = "unbuffered" if buf is None else f"{len(buf)} buffered"
        return f"<LogContext {size} debug={self.req.debug} bound={dict(self.bound)!r}>"


current: ContextVar[LogContext | None] = ContextVar("clue.log.context", default=None)


class _Root:
    """Key/values bound outside any log context: process-wide, inherited by all."""

    bound: Bound = ()


root = _Root()


class context:  # noqa: N801 - reads as a function: ``with log.context():``
    """Open a new log context: a fresh buffer that inherits bound key/values and switches.

    Usable as ``with log.context(): ...`` (in sync and async code alike) and as a
    decorator of sync and async functions (each call gets its own context).

    Args:
        debug: turn debug logs on (and buffering off) for this context, or off even under
            ``configure(debug=True)``; default: inherited from the enclosing context, else
            the global setting. An explicit value wins over the global default.
        disable_buffering: ``True`` writes every entry of this context at once; ``False``
            keeps buffering even when ``configure(disable_buffering=...)``'s predicate
            says otherwise (a sampled span, for the default); default: inherited from the
            enclosing context, else the predicate.

    Example:
        >>> import io
        >>> from clue import log
        >>> out = io.StringIO()
        >>> log.configure(output=out, format=log.format_text)
        >>> with log.context():
        ...     log.info("buffered")
        >>> out.getvalue()  # a successful context writes nothing
        ''

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_debug", "_disable", "_req", "_token")

    def __init__(self, *, debug: bool | None = None, disable_buffering: bool | None = None) -> None:
        if debug is not None and not isinstance(debug, bool):
            raise ValueError(f"debug must be a bool or None, got {debug!r}")
        if disable_buffering is not None and not isinstance(disable_buffering, bool):
            raise ValueError(f"disable_buffering must be a bool or None, got {disable_buffering!r}")
        self._debug = debug
        self._disable = disable_buffering
        self._token: Token[LogContext | None] | None = None
        self._req: Request | None = None

    def __enter__(self) -> LogContext:
        ctx = new_context(self._debug, self._disable)
        self._token = current.set(ctx)
        self._req = ctx.req
        return ctx

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        req, self._req = self._req, None
        if token is not None:
            try:
                current.reset(token)
            except ValueError:
                # Exited in another contextvars.Context than it was entered in: a
                # generator suspended inside the block and closed from another thread,
                # or an async generator the event loop finalizes in a task of its own.
                # This Context only holds the block's context if it was copied from the
                # one the block ran in; restore what was current before the block there.
                leave_foreign(token, req)

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        debug, disable = self._debug, self._disable
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            return wrap_generator(fn, lambda: _GeneratorContext(debug, disable))
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


class _GeneratorContext:
    """The log context of one call of a decorated generator.

    It is made current for each step of the generator (where its body runs) and only then,
    so it never leaks into the caller between steps; what the body binds is kept for its
    next step.
    """

    __slots__ = ("debug", "disable", "view")

    def __init__(self, debug: bool | None, disable: bool | None) -> None:
        self.debug = debug
        self.disable = disable
        self.view: LogContext | None = None

    def enter(self) -> Token[LogContext | None]:
        if self.view is None:  # opened at the first step, inheriting from its caller
            self.view = new_context(self.debug, self.disable)
        return current.set(self.view)

    def leave(self, token: Token[LogContext | None]) -> None:
        view = current.get()
        if view is not None and self.view is not None and view.req is self.view.req:
            self.view = view
        try:
            current.reset(token)
        except ValueError:  # a step left in another contextvars.Context
            leave_foreign(token, self.view.req if self.view is not None else None)


class Scope(Protocol):
    """What a decorator does around each step of a generator it wraps."""

    def enter(self) -> Any: ...
    def leave(self, token: Any, /) -> None: ...


def wrap_generator(fn: Callable[..., Any], scope: Callable[[], Scope]) -> Callable[..., Any]:
    """Wrap a generator or async generator function so that ``scope`` covers its steps.

    That is each step of each call's generator: its body runs at the steps, not at the
    call.
    """
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            return _async_steps(fn(*args, **kwargs), scope())

        return agen_wrapper

    @functools.wraps(fn)
    def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        return _steps(fn(*args, **kwargs), scope())

    return gen_wrapper


def _steps(gen: Generator[Any, Any, Any], scope: Scope) -> Generator[Any, Any, Any]:
    value: Any = None
    thrown: BaseException | None = None
    while True:
        token = scope.enter()
        try:
            item = gen.send(value) if thrown is None else gen.throw(thrown)
        except StopIteration as stop:
            return stop.value
        finally:
            scope.leave(token)
        thrown = value = None
        try:
            value = yield item
        except GeneratorExit:
            token = scope.enter()
            try:
                gen.close()
            finally:
                scope.leave(token)
            raise
        except BaseException as exc:  # thrown into the wrapper: into the generator
            thrown = exc


async def _async_steps(gen: AsyncGenerator[Any, Any], scope: Scope) -> AsyncGenerator[Any, Any]:
    value: Any = None
    thrown: BaseException | None = None
    while True:
        token = scope.enter()
        try:
            item = await (gen.asend(value) if thrown is None else gen.athrow(thrown))
        except StopAsyncIteration:
            return
        finally:
            scope.leave(token)
        thrown = value = None
        try:
            value = yield item
        except GeneratorExit:
            token = scope.enter()
            try:
                await gen.aclose()
            finally:
                scope.leave(token)
            raise
        except BaseException as exc:  # thrown into the wrapper: into the generator
            thrown = exc


def leave_foreign(token: Token[LogContext | None], req: Request | None) -> None:
    """End a context from another ``contextvars.Context`` than the one it was entered in.

    Its token cannot reset there. If this Context holds a view of it, put back what was
    current before it; otherwise this Context never saw it and is left as it is.
    """
    ctx = current.get()
    if ctx is not None and ctx.req is req:
        old = token.old_value
        current.set(None if old is Token.MISSING else old)


def new_context(debug: bool | None = None, disable_buffering: bool | None = None) -> LogContext:
    """Build a context that inherits from the current one (not yet made current).

    ``None`` switches inherit the enclosing context's; at the top they follow the global
    configuration, read per entry.
    """
    parent = current.get()
    if debug is None and disable_buffering is None:
        return child_of(parent)
    bound = parent.bound if parent is not None else root.bound
    if parent is not None:
        if debug is None:
            debug = parent.req.debug
        if disable_buffering is None:
            disable_buffering = parent.req.disable
    debug_on = state.debug if debug is None else debug
    req = Request(debug, disable_buffering, not (debug_on or disable_buffering), state.max_buffered)
    return LogContext(req, bound)


def child_of(parent: LogContext | None, *bound: tuple[str, Any]) -> LogContext:
    """``new_context()`` under ``parent`` (the current view, read by the caller).

    Its switches are inherited and ``bound`` is added to what it inherits. Written for
    speed on purpose: the middleware and interceptors open one per request this way.
    """
    if parent is None:
        inherited = root.bound
        debug = disable = None
    else:
        inherited = parent.bound
        req = parent.req
        debug = req.debug
        disable = req.disable
    buffered = not (state.debug if debug is None else debug) and not disable
    return LogContext(
        Request(debug, disable, buffered, state.max_buffered),
        (*inherited, *bound) if bound else inherited,
    )


def bind(*fielders: Any, **kv: Any) -> None:
    """Add key/values to the current context for every later entry (the seed's ``With``).

    Accepts ``KV`` and ``Fields`` positionally and keywords. Key/values bound in an
    asyncio task or a copied context (``contextvars.copy_context().run(...)``) are seen
    there and in what it spawns afterwards, never by its siblings or its parent; every
    task still logs into the context's one buffer. Outside any log context the key/values
    are bound process-wide and inherited by every context opened later.

    Example:
        >>> from clue import log
        >>> with log.context():
        ...     log.bind(order_id="abc123")
        ...     log.bind(log.KV("user", "alice"))

    .. versionadded:: 0.1.0
    """
    pairs: list[tuple[str, Any]] = []
    for f in fielders:
        pairs.extend(pairs_of(f))
    pairs.extend(kv.items())
    if not pairs:
        return
    ctx = current.get()
    if ctx is None:
        root.bound = (*root.bound, *snapshot_pairs(pairs))
    else:
        current.set(LogContext(ctx.req, (*ctx.bound, *snapshot_pairs(pairs))))


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


def _budget_after_fork() -> None:
    ctx = current.get()
    reset_after_fork(ctx.req if ctx is not None else None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_budget_after_fork)
