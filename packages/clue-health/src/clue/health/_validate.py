"""Checks of configuration values, failing fast with the option's name."""

from __future__ import annotations

import math

MAX_SECONDS = 86400.0  # a day: longer waits overflow some platforms' timers


def seconds(option: str, value: float, *, zero: bool = False) -> float:
    """``value`` as a float number of seconds: > 0 (>= 0 when ``zero``), at most a day.

    Raises:
        ValueError: naming ``option``.
    """
    # Not math.isfinite(value): an int beyond a float's range would raise OverflowError.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise ValueError(f"{option} must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{option} must be {bound} seconds, got {value!r}")
    if value > MAX_SECONDS:
        raise ValueError(f"{option} must be at most {MAX_SECONDS:g} seconds, got {value!r}")
    return float(value)
