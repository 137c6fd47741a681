"""Per-process state re-created in a forked child.

A process forked while another thread holds one of clue-otel's locks (gunicorn
``--preload``, ``multiprocessing`` with fork) inherits the lock held, and the child
would hang on its first use. Every object owning a lock or per-process state
registers here; in the child, right after fork, each one's ``after_fork()``
re-creates its locks and resets what belonged to the parent (the sampler's rate
estimate, the traces held for error promotion).
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

__all__ = ["ForkAware", "register"]


class ForkAware(Protocol):
    """An object whose locks and per-process state are re-created after fork."""

    def after_fork(self) -> None:
        """Called in the child right after fork, with only the forking thread alive."""


_objects: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def register(obj: ForkAware) -> None:
    """Call ``obj.after_fork()`` in every child forked from now on (held weakly)."""
    _objects.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_objects):
        try:
            obj.after_fork()
        except Exception:  # noqa: S112 (a child must start whatever one object does)
            continue


os.register_at_fork(after_in_child=_after_fork_in_child)
