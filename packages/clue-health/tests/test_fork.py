"""Fork safety: a child forked while another thread holds one of clue-health's locks
checks, serves and shuts down at once."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue.health import Checker, Probes, _pool, new_pinger
from clue.health.grpc import HealthServicer


class _Global:
    """Holds whichever lock a module global names when entered."""

    def __init__(self, module: Any, name: str) -> None:
        self.module, self.name = module, name

    def __enter__(self) -> None:
        getattr(self.module, self.name).acquire()

    def __exit__(self, *exc: object) -> None:
        getattr(self.module, self.name).release()


def _cases(pingers: Any) -> dict[str, tuple[Any, Callable[[], object]]]:
    sync_checker = Checker(pingers.sync("db"), cache_ttl=0, timeout=10)
    aio_checker = Checker(pingers.aio("cache"), cache_ttl=0, timeout=10)
    probes = Probes(sync_checker)
    servicer = HealthServicer(sync_checker)
    aio_checker.check()  # the background loop exists in the parent

    def check_sync() -> None:
        assert sync_checker.check()[1]

    def check_async() -> None:
        assert aio_checker.check()[1]

    def shutdown() -> None:
        probes.shutdown()
        assert not probes.ready

    def watch() -> None:
        assert all(servicer._admit_watcher() for _ in range(4))
        assert not servicer._admit_watcher()

    return {
        "checker": (sync_checker._lock, check_sync),
        "pool": (sync_checker._pool._lock, check_sync),
        "background-loop": (_Global(_pool, "_loop_lock"), check_async),
        "probes": (probes._lock, shutdown),
        "watchers": (servicer._watchers_lock, watch),
    }


@pytest.mark.parametrize("case", ["checker", "pool", "background-loop", "probes", "watchers"])
def test_a_child_forked_while_a_lock_is_held_works_at_once(
    case: str, pingers: Any, fork_while_held: Callable[..., int]
) -> None:
    """The child neither hangs on a lock its parent's thread held nor waits for the
    parent's pings, threads or loop."""
    lock, child = _cases(pingers)[case]
    assert fork_while_held(lock, child, timeout=20) == 0


def test_durations_are_bounded() -> None:
    """A duration beyond a day is a ValueError naming the option."""
    with pytest.raises(ValueError, match="timeout"):
        Checker(timeout=1e10)
    with pytest.raises(ValueError, match="watch_interval"):
        HealthServicer(Checker(), watch_interval=86401)


_DURATION_OPTIONS: dict[str, Callable[[Any], object]] = {
    "timeout": lambda v: Checker(timeout=v),
    "deadline": lambda v: Checker(deadline=v),
    "cache_ttl": lambda v: Checker(cache_ttl=v),
    "watch_interval": lambda v: HealthServicer(Checker(), watch_interval=v),
    "grace": lambda v: Probes(Checker()).install_sigterm_hook(grace=v),
    "pinger timeout": lambda v: new_pinger("users", "users.internal:8080", timeout=v),
}


@settings(max_examples=60, deadline=None)
@given(
    option=st.sampled_from(sorted(_DURATION_OPTIONS)),
    value=st.one_of(
        st.integers(min_value=86401),
        st.integers(max_value=-1),
        st.sampled_from([10**400, -(10**400), 2**1024]),
        st.floats(min_value=86400.001),
        st.floats(max_value=-0.001),
        st.sampled_from([math.inf, -math.inf, math.nan]),
    ),
)
def test_any_duration_out_of_range_is_a_value_error_naming_it(option: str, value: float) -> None:
    """However large the number (an int beyond a float's range too), a duration out of
    range is a ValueError naming the option."""
    with pytest.raises(ValueError, match=option.rsplit(maxsplit=1)[-1]):
        _DURATION_OPTIONS[option](value)
