"""Per-process state: start an object afresh in every forked child."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["after_fork_in_child"]

_T = TypeVar("_T")


def after_fork_in_child(owner: _T, start: Callable[[_T], None]) -> None:
    """Call ``start(owner)`` in every child forked while ``owner`` is alive.

    A lock another thread of the parent held at the fork stays held for ever in the
    child; ``start`` re-creates it with the rest of the per-process state.
    """
    ref = weakref.ref(owner)

    def after_in_child() -> None:
        alive = ref()
        if alive is not None:
            start(alive)

    os.register_at_fork(after_in_child=after_in_child)
