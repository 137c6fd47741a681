"""The process-wide debug-log switch."""

from __future__ import annotations

import threading

import pytest

from clue import debug


def test_switch_starts_off_and_flips() -> None:
    """A new switch is off; turn_on and turn_off change what enabled() says."""
    switch = debug.DebugLogSwitch()
    assert not switch.enabled()
    switch.turn_on()
    assert switch.enabled()
    assert switch.remaining() is None
    switch.turn_off()
    assert not switch.enabled()


def test_time_limit_is_reported() -> None:
    """With a duration the switch is on and reports the time left."""
    switch = debug.DebugLogSwitch()
    switch.turn_on(duration=60)
    assert switch.enabled()
    remaining = switch.remaining()
    assert remaining is not None
    assert 50 < remaining <= 60
    switch.turn_off()


def test_time_limit_switches_itself_off(poll, logs) -> None:
    """With a duration the switch turns itself off and logs that it did."""
    switch = debug.DebugLogSwitch()
    switch.turn_on(duration=0.05)
    poll(lambda: not switch.enabled())
    poll(lambda: any(e.get("source") == "time limit" for e in logs))
    assert switch.remaining() is None


def test_turning_on_again_replaces_the_time_limit(poll) -> None:
    """A later turn_on without a limit cancels the earlier limit's timer."""
    switch = debug.DebugLogSwitch()
    switch.turn_on(duration=0.05)
    switch.turn_on()
    assert switch.remaining() is None
    poll(lambda: not any(t.name == "clue-debug-switch-timer" for t in threading.enumerate()))
    assert switch.enabled()
    switch.turn_off()


def test_state_changes_are_logged(logs) -> None:
    """Each change of state is logged with the new state and the previous one."""
    switch = debug.DebugLogSwitch()
    switch.turn_on(duration=30, source="test")
    switch.turn_off(source="test")
    changes = [e for e in logs if e["event"] == "debug logs switched"]
    assert [(e["debug_logs"], e["previous"]) for e in changes] == [("on", False), ("off", True)]
    assert changes[0]["duration_s"] == 30
    assert changes[0]["source"] == "test"
    assert changes[0]["log_level"] == "info"


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_invalid_duration_is_refused(bad: float) -> None:
    """A duration that is not a positive finite number raises ValueError and changes nothing."""
    switch = debug.DebugLogSwitch()
    with pytest.raises(ValueError, match="duration"):
        switch.turn_on(duration=bad)
    assert not switch.enabled()


def test_concurrent_flips_leave_a_consistent_state() -> None:
    """Many threads flipping the switch never corrupt it: the last writer wins."""
    switch = debug.DebugLogSwitch()
    barrier = threading.Barrier(8)

    def flip(i: int) -> None:
        barrier.wait()
        for n in range(200):
            if (n + i) % 2:
                switch.turn_on(duration=60)
            else:
                switch.turn_off()

    threads = [threading.Thread(target=flip, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    switch.turn_off()
    assert not switch.enabled()
    assert switch.remaining() is None
