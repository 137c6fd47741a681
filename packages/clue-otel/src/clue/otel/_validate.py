"""Configuration-time checks: a ValueError naming the bad option and what it got."""

from __future__ import annotations

import math

__all__ = ["is_positive_number", "require"]


def require(ok: bool, option: str, expected: str, value: object) -> None:
    """Raise ``ValueError("<option> must be <expected>, got <value>")`` unless ``ok``."""
    if not ok:
        msg = f"{option} must be {expected}, got {value!r}"
        raise ValueError(msg)


def is_positive_number(value: object) -> bool:
    """A finite int or float above zero (bools excluded)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
