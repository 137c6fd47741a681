"""The clue.log_control seam: discovery, override and fault tolerance."""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterator

import pytest

from clue import debug
from clue.debug import _control
from clue.debug.testing import FakeLogControl


class _Broken:
    def debug_enabled(self) -> bool:
        raise RuntimeError("boom")

    def debug_scope(self) -> contextlib.AbstractContextManager[None]:
        raise RuntimeError("boom")


class _BrokenExit:
    def debug_enabled(self) -> bool:
        return True

    @contextlib.contextmanager
    def debug_scope(self) -> Iterator[None]:
        yield
        raise RuntimeError("exit boom")


class _FakeEntryPoint:
    def __init__(self, name: str, value: object, *, fail: bool = False) -> None:
        self.name = name
        self.value = f"fake:{name}"
        self._obj = value
        self._fail = fail
        self.loads = 0

    def load(self) -> object:
        self.loads += 1
        if self._fail:
            raise ImportError("cannot import")
        return self._obj


def test_override_is_used() -> None:
    """set_log_control makes get_log_control return the given object."""
    fake = FakeLogControl()
    debug.set_log_control(fake)
    assert debug.get_log_control() is fake


def test_override_rejects_non_controls() -> None:
    """An object without the two methods is refused with TypeError."""
    with pytest.raises(TypeError, match="LogControl"):
        debug.set_log_control(object())  # type: ignore[arg-type]


def test_discovery_loads_the_entry_point_group_once(monkeypatch) -> None:
    """Discovery skips broken or foreign entry points, takes the first control, and runs once."""
    good = FakeLogControl()
    eps = [
        _FakeEntryPoint("a-broken", None, fail=True),
        _FakeEntryPoint("b-foreign", object()),
        _FakeEntryPoint("c-good", good),
    ]
    calls: list[str] = []

    def entry_points(*, group: str) -> list[_FakeEntryPoint]:
        calls.append(group)
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    debug.set_log_control(None)
    _control._reset_discovery()
    try:
        assert debug.get_log_control() is good
        assert debug.get_log_control() is good
        assert calls == ["clue.log_control"]
        assert [ep.loads for ep in eps] == [1, 1, 1]
    finally:
        _control._reset_discovery()


def test_no_implementation_degrades_to_a_local_flag(monkeypatch) -> None:
    """With nothing registered, the fallback keeps the debug flag for the scope only."""
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda *, group: [])
    debug.set_log_control(None)
    _control._reset_discovery()
    try:
        control = debug.get_log_control()
        assert not control.debug_enabled()
        with control.debug_scope():
            assert control.debug_enabled()
        assert not control.debug_enabled()
    finally:
        _control._reset_discovery()


def test_failing_control_never_raises_into_the_request() -> None:
    """A control that raises on enter or check costs only the debug flag."""
    debug.set_log_control(_Broken())
    ran = []
    with _control.safe_debug_scope():
        ran.append(True)
    assert ran == [True]
    assert _control.debug_enabled_safely() is False


def test_failing_exit_keeps_the_body_result_and_exception() -> None:
    """A control failing on exit neither raises nor hides the body's own exception."""
    debug.set_log_control(_BrokenExit())
    with _control.safe_debug_scope():
        pass
    with pytest.raises(KeyError), _control.safe_debug_scope():
        raise KeyError("from the app")
