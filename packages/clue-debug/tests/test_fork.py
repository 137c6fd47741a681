"""Fork safety: a child forked while another thread holds one of clue-debug's locks
uses the switch, the Mux, the log-control registry and the profile endpoints at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clue import debug
from clue.debug import _control, _profiling
from clue.debug.testing import FakeLogControl


def _switch_case() -> tuple[Any, Callable[[], object]]:
    switch = debug.DebugLogSwitch()

    def child() -> None:
        switch.turn_on(duration=60)
        assert switch.enabled()
        assert 0 < (switch.remaining() or 0) <= 60
        switch.turn_off()
        assert not switch.enabled()

    return switch._lock, child


_TIMED: list[debug.DebugLogSwitch] = []  # turned off in the parent after the fork


def _timer_case() -> tuple[Any, Callable[[], object]]:
    switch = debug.DebugLogSwitch()
    switch.turn_on(duration=3600)
    _TIMED.append(switch)

    def child() -> None:  # the parent's timer thread is gone; the child has its own
        assert switch._timer is not None
        assert switch._timer.is_alive()
        switch.turn_off()

    return switch._lock, child


def _mux_case() -> tuple[Any, Callable[[], object]]:
    mux = debug.Mux()

    def child() -> None:
        debug.mount_debug_log_enabler(mux, switch=debug.DebugLogSwitch())
        assert "/debug" in mux.paths()

    return mux._lock, child


def _control_case() -> tuple[Any, Callable[[], object]]:
    class Holder:  # the registry's lock is a module global: hold whichever is current
        def __enter__(self) -> None:
            _control._lock.acquire()

        def __exit__(self, *exc: object) -> None:
            _control._lock.release()

    def child() -> None:
        debug.set_log_control(FakeLogControl())
        debug.set_log_control(None)
        _control._reset_discovery()
        assert debug.get_log_control() is not None

    return Holder(), child


def _profile_case() -> tuple[Any, Callable[[], object]]:
    mux = debug.Mux()
    debug.mount_pprof_handlers(mux, max_seconds=5)

    class Holder:  # a profile running in the parent when it forks
        def __enter__(self) -> None:
            _profiling._PROFILE_LOCK.acquire()

        def __exit__(self, *exc: object) -> None:
            _profiling._PROFILE_LOCK.release()

    def child() -> None:  # 400 (reached, bad frames) rather than 429 (busy)
        request = debug.Request("GET", "/debug/pprof/allocs", {"seconds": "0.01", "frames": "0"})
        assert mux.dispatch(request).status == 400

    return Holder(), child


CASES = {
    "switch": _switch_case,
    "switch-timer": _timer_case,
    "mux": _mux_case,
    "log-control": _control_case,
    "profile": _profile_case,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_child_forked_while_a_lock_is_held_works_at_once(
    case: str, fork_while_held: Callable[..., int]
) -> None:
    """The child neither hangs on a lock its parent's thread held nor sees the parent's
    timer or running profile."""
    lock, child = CASES[case]()
    try:
        assert fork_while_held(lock, child) == 0
    finally:
        while _TIMED:
            _TIMED.pop().turn_off()
