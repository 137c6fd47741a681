"""The process-wide debug-log switch, with an optional time limit."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time

import structlog

from clue.debug._fork import reinit_after_fork

__all__ = ["MAX_DURATION", "DebugLogSwitch", "default_switch"]

MAX_DURATION = 86400.0
"""The longest time limit the switch takes, in seconds (a day)."""


class DebugLogSwitch:
    """A thread-safe on/off switch for debug logs, optionally switching itself off.

    The state lives in this process only: with several worker processes (gunicorn,
    uvicorn ``--workers``) each has its own switch, so turn it on in every worker, or
    serve the switch on an admin port per process (see ``serve_admin``).

    Example:
        >>> switch = DebugLogSwitch()
        >>> switch.turn_on(duration=60)
        >>> switch.enabled()
        True
        >>> switch.turn_off()
        >>> switch.enabled()
        False

    .. versionadded:: 0.1.0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._on = False
        self._deadline: float | None = None  # time.monotonic() at which it switches off
        self._generation = 0
        self._timer: threading.Timer | None = None
        reinit_after_fork(self)

    def _after_fork(self) -> None:
        # The child has a fresh lock and no timer thread: start one for the time left.
        self._lock = threading.Lock()
        self._timer = None
        if self._on and self._deadline is not None:
            self._start_timer(max(0.0, self._deadline - time.monotonic()))

    def enabled(self) -> bool:
        """Whether debug logs are on now."""
        # Hot path (every request): one attribute read while off.
        if not self._on:
            return False
        deadline = self._deadline
        if deadline is not None and time.monotonic() >= deadline:
            self._expire(self._generation)
            return False
        return True

    def remaining(self) -> float | None:
        """Seconds left before the switch turns itself off; ``None`` without a limit."""
        with self._lock:
            if not self._on or self._deadline is None:
                return None
            return max(0.0, self._deadline - time.monotonic())

    def turn_on(self, *, duration: float | None = None, source: str | None = None) -> None:
        """Turn debug logs on, for ``duration`` seconds when given.

        Raises:
            ValueError: ``duration`` is not a positive number of at most ``MAX_DURATION``
                (a day).
        """
        if duration is not None and not (
            isinstance(duration, int | float) and 0 < duration <= MAX_DURATION
        ):
            msg = f"duration must be in (0, {MAX_DURATION:g}] seconds, got {duration!r}"
            raise ValueError(msg)
        with self._lock:
            was_on = self._on
            self._on = True
            self._generation += 1
            self._cancel_timer()
            if duration is None:
                self._deadline = None
            else:
                self._deadline = time.monotonic() + duration
                self._start_timer(duration)
        _log_change(on=True, was_on=was_on, duration=duration, source=source)

    def turn_off(self, *, source: str | None = None) -> None:
        """Turn debug logs off."""
        with self._lock:
            was_on = self._on
            self._on = False
            self._deadline = None
            self._generation += 1
            self._cancel_timer()
        if was_on:
            _log_change(on=False, was_on=was_on, duration=None, source=source)

    def _expire(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation or not self._on:
                return  # switched again since: that change wins
            self._on = False
            self._deadline = None
            self._generation += 1
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        _log_change(on=False, was_on=True, duration=None, source="time limit")

    def _start_timer(self, duration: float) -> None:
        self._timer = threading.Timer(duration, self._expire, (self._generation,))
        self._timer.daemon = True
        self._timer.name = "clue-debug-switch-timer"
        self._timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _log_change(*, on: bool, was_on: bool, duration: float | None, source: str | None) -> None:
    kv: dict[str, object] = {"debug_logs": "on" if on else "off", "previous": was_on}
    if duration is not None:
        kv["duration_s"] = duration
    if source is not None:
        kv["source"] = source
    # Logged from an empty contextvars context, i.e. outside any request's log context, so
    # that a buffering logger writes it at once instead of dropping it with the request.
    with contextlib.suppress(Exception):  # logging a state change must not fail the change
        contextvars.Context().run(
            structlog.get_logger("clue.debug").info, "debug logs switched", **kv
        )


default_switch = DebugLogSwitch()
"""The process-wide switch used unless a ``switch=`` argument names another."""
