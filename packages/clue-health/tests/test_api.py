"""The public surface: SPEC names, a complete sorted __all__, a PEP 420 namespace."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import clue
from clue import health

SPEC_NAMES = {
    "Pinger",
    "Checker",
    "Health",
    "new_pinger",
    "wsgi_handler",
    "asgi_handler",
    "VERSION",
    "STARTED_AT",
}


def test_spec_names_are_exported():
    """Every name SPEC §5 promises is in clue.health.__all__."""
    assert set(health.__all__) >= SPEC_NAMES


def test_all_is_sorted_and_complete():
    """__all__ is sorted and lists every public name the facade defines."""
    assert list(health.__all__) == sorted(health.__all__)
    public = {
        n
        for n in vars(health)
        if not n.startswith("_") and not inspect.ismodule(getattr(health, n))
    }
    public -= {"annotations"}
    assert public == set(health.__all__)


#: The public API, exactly: a name added to or removed from a module's ``__all__`` is a
#: change of the public API and is made here too.
PUBLIC_API = {
    "clue.health": {
        "Checker", "DEFAULT_CACHE_TTL", "DEFAULT_TIMEOUT", "HTTPPinger", "Health", "NOT_OK", "OK",
        "PingError", "Pinger", "Probes", "STARTED_AT", "VERSION", "asgi_handler", "new_pinger",
        "wsgi_handler",
    },
    "clue.health.grpc": {"AioHealthServicer", "HealthServicer", "add_to_server"},
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_all_is_exactly_the_public_api(module: str) -> None:
    """Each public module's __all__ is exactly its public API, once each, every name resolving."""
    mod = importlib.import_module(module)
    assert len(mod.__all__) == len(set(mod.__all__))
    assert set(mod.__all__) == PUBLIC_API[module]
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_clue_is_a_namespace_package():
    """clue has no __init__.py: other clue-* distributions can share it."""
    assert getattr(clue, "__file__", None) is None
    assert [
        m.name for m in pkgutil.iter_modules(health.__path__) if not m.name.startswith("_")
    ] == ["grpc"]


def test_public_names_have_docstrings():
    """Every exported class and function documents itself."""
    for name in health.__all__:
        obj = getattr(health, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, name
    assert importlib.import_module("clue.health.grpc").__doc__
