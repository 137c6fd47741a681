"""Fork safety: re-create locks and per-process state in a forked child.

A process forked while another thread holds a lock (gunicorn ``--preload``,
``multiprocessing`` with fork) inherits the lock held by a thread that does not exist in
the child, and its first use would hang. Objects register here; in the child, right
after ``fork()``, each one's ``_after_fork()`` runs before any other code.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["at_fork", "reinit_after_fork"]


class _Forkable(Protocol):
    def _after_fork(self) -> None: ...


_instances: weakref.WeakSet[_Forkable] = weakref.WeakSet()
_hooks: list[Callable[[], None]] = []


def reinit_after_fork(obj: _Forkable) -> None:
    """Call ``obj._after_fork()`` in the child of every later fork (``obj`` held weakly)."""
    _instances.add(obj)


def at_fork(hook: Callable[[], None]) -> Callable[[], None]:
    """Run ``hook()`` in the child of every later fork (module-level state)."""
    _hooks.append(hook)
    return hook


def _in_child() -> None:
    for hook in _hooks:
        with contextlib.suppress(Exception):  # one broken hook must not keep the others
            hook()
    for obj in list(_instances):
        with contextlib.suppress(Exception):
            obj._after_fork()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_in_child)
