"""Helpers of the end-to-end harness: deadline-bounded waits and trace headers."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["new_traceparent", "wait_for"]

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``probe`` until it returns something truthy, and return it.

    Raises:
        TimeoutError: the deadline passed; the message names ``what`` was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what or probe!r}")
        time.sleep(interval)  # polling interval of a deadline-bounded wait


def new_traceparent(*, sampled: bool) -> tuple[str, str, str]:
    """A fresh W3C ``traceparent`` header value, with its trace id and span id (hex)."""
    trace_id = secrets.token_hex(16)
    span_id = secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}", trace_id, span_id
