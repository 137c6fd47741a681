"""The public surface: __all__, docstring examples, namespace layout."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import types
from pathlib import Path

import pytest
import structlog

import clue.debug
from clue import debug


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted, every name resolves, and every public attribute is listed."""
    assert list(debug.__all__) == sorted(debug.__all__)
    for name in debug.__all__:
        assert getattr(debug, name) is not None
    public = {
        name
        for name, value in vars(debug).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "TYPE_CHECKING", "Any"}
    }
    assert public <= set(debug.__all__)


#: The public API, exactly: a name added to or removed from a module's ``__all__`` is a
#: change of the public API and is made here too.
PUBLIC_API = {
    "clue.debug": {
        "ASGIMiddleware", "AdminServer", "AioGrpcServerInterceptor",
        "AioPayloadGrpcServerInterceptor", "AuthHook", "DebugLogSwitch", "GrpcServerInterceptor",
        "Handler", "LogControl", "Mux", "PayloadGrpcClientInterceptor",
        "PayloadGrpcServerInterceptor", "Request", "Response", "Router", "TRUNCATED_MARKER",
        "WSGIMiddleware", "adapt", "aio_payload_grpc_client_interceptors", "default_switch",
        "format_json", "get_log_control", "log_payloads", "mount_debug_log_enabler",
        "mount_pprof_handlers", "serve_admin", "set_log_control",
    },
    "clue.debug.testing": {"FakeLogControl", "reset"},
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_all_is_exactly_the_public_api(module: str) -> None:
    """Each public module's __all__ is exactly its public API, once each, every name resolving."""
    mod = importlib.import_module(module)
    assert len(mod.__all__) == len(set(mod.__all__))
    assert set(mod.__all__) == PUBLIC_API[module]
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_unknown_attribute_raises_attribute_error() -> None:
    """A missing name raises AttributeError naming it."""
    with pytest.raises(AttributeError, match="nope"):
        debug.nope  # noqa: B018 -- the access is the test


def test_namespace_package_layout() -> None:
    """clue is a namespace package: no clue/__init__.py ships; py.typed does."""
    import clue

    assert getattr(clue, "__file__", None) is None
    package_dir = Path(clue.debug.__file__).parent
    assert (package_dir / "py.typed").is_file()
    assert not (package_dir.parent / "__init__.py").exists()


MODULES = sorted(m.name for m in pkgutil.iter_modules(clue.debug.__path__, "clue.debug.") if m.name)


@pytest.mark.parametrize("module", ["clue.debug", *MODULES])
def test_docstring_examples_run(module: str) -> None:
    """Every Example in the docstrings runs as written."""
    mod = importlib.import_module(module)
    with structlog.testing.capture_logs():  # state-change logs are not part of the examples
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
