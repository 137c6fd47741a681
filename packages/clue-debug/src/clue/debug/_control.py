"""The seam to the log side: a ``LogControl`` found through an entry point.

clue-debug never imports ``clue.log``. A logging package (clue-log) registers, under the
entry-point group ``clue.log_control``, an object with ``debug_enabled()`` and
``debug_scope()``; clue-debug loads the group lazily, once, the first time it needs it.
``set_log_control`` overrides the discovery (tests, or a custom logging stack).

With nothing installed, clue-debug falls back to a control that only keeps the per-request
debug flag in a context variable: the switch and the payload logs keep working through
plain structlog, and nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib.metadata
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
)
from typing import Any, Protocol, TypeVar, runtime_checkable

import structlog

from clue.debug._fork import at_fork
from clue.debug._mark import attached

_T = TypeVar("_T")

__all__ = ["ENTRY_POINT_GROUP", "LogControl", "get_log_control", "set_log_control"]

ENTRY_POINT_GROUP = "clue.log_control"


@runtime_checkable
class LogControl(Protocol):
    """What clue-debug needs from the logging side.

    .. versionadded:: 0.1.0
    """

    def debug_enabled(self) -> bool:
        """Whether debug logs are on for the current log context."""
        ...

    def debug_scope(self) -> contextlib.AbstractContextManager[None]:
        """Turn debug logs on for the current log context for the ``with`` block.

        Opens a log context with debug on when there is none; contexts opened inside
        inherit debug.
        """
        ...


class _LocalLogControl:
    """Fallback control: a context variable holds the per-request debug flag."""

    def __init__(self) -> None:
        self._flag: contextvars.ContextVar[bool] = contextvars.ContextVar(
            "clue_debug_local_debug", default=False
        )

    def debug_enabled(self) -> bool:
        return self._flag.get()

    @contextlib.contextmanager
    def debug_scope(self) -> Iterator[None]:
        token = self._flag.set(True)
        try:
            yield
        finally:
            self._flag.reset(token)


_lock = threading.Lock()
_override: LogControl | None = None
_discovered: LogControl | None = None
LOCAL_CONTROL = _LocalLogControl()


@at_fork
def _new_lock() -> None:
    global _lock  # noqa: PLW0603 -- per-process state re-created after fork
    _lock = threading.Lock()


def set_log_control(control: LogControl | None) -> None:
    """Use ``control`` instead of the one registered under ``clue.log_control``.

    Args:
        control: an object with ``debug_enabled()`` and ``debug_scope()``; ``None``
            goes back to entry-point discovery.

    Raises:
        TypeError: ``control`` lacks one of the two methods.

    Example:
        >>> from clue.debug import set_log_control
        >>> from clue.debug.testing import FakeLogControl
        >>> set_log_control(FakeLogControl())
        >>> set_log_control(None)

    .. versionadded:: 0.1.0
    """
    global _override  # noqa: PLW0603 -- the process-wide registration point
    candidate: object = control  # validated at run time: callers may not type-check
    if candidate is not None and not isinstance(candidate, LogControl):
        msg = (
            f"set_log_control: {control!r} is not a LogControl "
            "(it needs debug_enabled() and debug_scope())"
        )
        raise TypeError(msg)
    with _lock:
        _override = control


def get_log_control() -> LogControl:
    """The control in force: the override, else the registered one, else the fallback.

    .. versionadded:: 0.1.0
    """
    # Hot path (every request): two global reads once discovery has run.
    control = _override
    if control is not None:
        return control
    found = _discovered
    if found is not None:
        return found
    return _discover()


def _discover() -> LogControl:
    global _discovered  # noqa: PLW0603 -- loaded lazily, once per process
    with _lock:
        if _discovered is None:
            _discovered = _load_entry_point()
        return _discovered


def _load_entry_point() -> LogControl:
    logger = structlog.get_logger("clue.debug")
    try:
        eps = sorted(
            importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name
        )
    except Exception as exc:  # a broken distribution's metadata must not break the app
        logger.warning("clue.debug: cannot read entry points", group=ENTRY_POINT_GROUP, err=exc)
        return LOCAL_CONTROL
    for ep in eps:
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin is reported, not raised into the app
            logger.warning("clue.debug: cannot load log control", entry_point=ep.value, err=exc)
            continue
        if isinstance(obj, LogControl):
            return obj
        logger.warning("clue.debug: entry point is not a LogControl", entry_point=ep.value)
    return LOCAL_CONTROL


def _reset_discovery() -> None:
    """Forget the discovered control so the next lookup reads the entry points again."""
    global _discovered  # noqa: PLW0603 -- test hook for the lazy, once-only discovery
    with _lock:
        _discovered = None


@contextlib.contextmanager
def safe_debug_scope(control: LogControl | None = None) -> Iterator[None]:
    """``control.debug_scope()`` whose own failures are logged, never raised.

    Exceptions from the body propagate unchanged; a control that fails to enter or exit
    only loses the debug flag for this request.
    """
    ctl = control if control is not None else get_log_control()
    try:
        cm = ctl.debug_scope()
        cm.__enter__()
    except Exception as exc:  # the logging side must never break a request
        _report(exc, "enter")
        yield
        return
    try:
        yield
    except BaseException as exc:
        try:
            cm.__exit__(type(exc), exc, exc.__traceback__)
        except Exception as exit_exc:  # the original exception matters more
            _report(exit_exc, "exit")
        raise
    else:
        try:
            cm.__exit__(None, None, None)
        except Exception as exc:  # the logging side must never break a request
            _report(exc, "exit")


def debug_enabled_safely(control: LogControl | None = None) -> bool:
    """``control.debug_enabled()``, ``False`` when the control fails."""
    ctl = control if control is not None else get_log_control()
    try:
        return bool(ctl.debug_enabled())
    except Exception as exc:  # the logging side must never break a request
        _report(exc, "debug_enabled")
        return False


def _report(exc: BaseException, where: str) -> None:
    with contextlib.suppress(Exception):
        structlog.get_logger("clue.debug").warning(
            "clue.debug: log control failed", step=where, err=repr(exc)
        )


class PrivateDebugScope:
    """A debug scope held open in a private copy of the caller's context.

    For a scope that outlives the call that opened it (a WSGI response the server
    iterates and closes later, a gRPC response stream): the work runs through ``run`` in
    the private context, so the server's own context never changes. A response the
    server never closes, or closes from another thread or task, can then neither leak
    debug into the next request served on that thread nor end the scope in a context
    other than its own (``ContextVar.reset`` refuses a token from another context).
    """

    __slots__ = ("_closed", "_ctx", "_stack")

    def __init__(self, otel_context: Any = None, *, debug: bool = True) -> None:
        self._ctx = contextvars.copy_context()
        self._stack = contextlib.ExitStack()
        self._closed = False
        if otel_context is not None:  # the request's baggage, with or without the mark
            self._ctx.run(self._stack.enter_context, attached(otel_context))
        if debug:
            self._ctx.run(self._stack.enter_context, safe_debug_scope())

    def run(self, fn: Callable[..., _T], /, *args: object) -> _T:
        """``fn(*args)`` in the private context."""
        return self._ctx.run(fn, *args)

    async def arun(self, awaitable: Coroutine[Any, Any, _T]) -> _T:
        """Await ``awaitable`` as a task of the private context (cancelled with the caller)."""
        return await asyncio.get_running_loop().create_task(awaitable, context=self._ctx)

    async def aiterate(self, iterable: AsyncIterable[_T]) -> AsyncGenerator[_T, None]:
        """Iterate ``iterable``, each step a task of the private context."""
        iterator: AsyncIterator[_T] = self._ctx.run(aiter, iterable)
        try:
            while True:
                try:
                    item = await self.arun(_await(anext(iterator)))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await self.arun(_await(aclose()))

    def iterate(self, iterable: Iterable[_T]) -> Iterator[_T]:
        """Iterate ``iterable``, each step in the private context."""
        iterator = self._ctx.run(iter, iterable)
        while True:
            try:
                item = self._ctx.run(next, iterator)
            except StopIteration:
                return
            yield item

    def close(self) -> None:
        """End the scope (once), in the private context."""
        if not self._closed:
            self._closed = True
            self._ctx.run(self._stack.close)

    def __del__(self) -> None:
        # Dropped without close() (the server broke PEP 3333, a stream was abandoned).
        if not self._closed:
            with contextlib.suppress(Exception):
                self.close()


async def _await(awaitable: Awaitable[_T]) -> _T:  # a coroutine for create_task
    return await awaitable
