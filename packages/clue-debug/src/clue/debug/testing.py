"""Test helpers: a fake ``LogControl`` and switch reset, for users' tests and ours.

Example:
    >>> from clue import debug
    >>> from clue.debug.testing import FakeLogControl
    >>> control = FakeLogControl()
    >>> debug.set_log_control(control)
    >>> with control.debug_scope():
    ...     control.debug_enabled()
    True
    >>> debug.set_log_control(None)

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

from clue.debug._control import set_log_control
from clue.debug._fork import reinit_after_fork
from clue.debug._switch import DebugLogSwitch, default_switch

__all__ = ["FakeLogControl", "reset"]


class FakeLogControl:
    """A ``LogControl`` that keeps the debug flag in a context variable and counts scopes.

    Attributes:
        scopes_entered: how many ``debug_scope()`` blocks were entered.
    """

    def __init__(self) -> None:
        self._flag: contextvars.ContextVar[bool] = contextvars.ContextVar(
            "clue_debug_fake_debug", default=False
        )
        self._lock = threading.Lock()
        self.scopes_entered = 0
        reinit_after_fork(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def debug_enabled(self) -> bool:
        """Whether a ``debug_scope()`` is active in this context."""
        return self._flag.get()

    @contextlib.contextmanager
    def debug_scope(self) -> Iterator[None]:
        """Debug on for the block, in this context only."""
        with self._lock:
            self.scopes_entered += 1
        token = self._flag.set(True)
        try:
            yield
        finally:
            self._flag.reset(token)


def reset(switch: DebugLogSwitch | None = None) -> None:
    """Turn the switch off (the process-wide one by default) and drop any log-control override."""
    target = switch if switch is not None else default_switch
    target.turn_off(source="test reset")
    set_log_control(None)
