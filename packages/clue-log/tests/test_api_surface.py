"""The public surface: SPEC names exist, __all__ is complete and sorted, docs run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import types

import pytest

import clue.log
from clue import log
from clue.log.testing import reset

SPEC_NAMES = {
    "configure", "context", "bind", "print", "debug", "info", "warn", "warning", "error",
    "fatal", "flush", "debug_enabled", "KV", "Fields", "is_tracing", "span", "Entry",
    "format_text", "format_terminal", "format_json", "StdlibHandler", "as_std_logger",
    "MESSAGE_KEY", "ERROR_MESSAGE_KEY", "TIMESTAMP_KEY", "SEVERITY_KEY", "TRACE_ID_KEY",
    "SPAN_ID_KEY", "REQUEST_ID_KEY", "HTTP_METHOD_KEY", "HTTP_URL_KEY", "HTTP_FROM_KEY",
    "HTTP_STATUS_KEY", "HTTP_DURATION_KEY", "HTTP_BYTES_KEY", "HTTP_BODY_KEY",
    "GRPC_SERVICE_KEY", "GRPC_METHOD_KEY", "GRPC_CODE_KEY", "GRPC_STATUS_KEY",
    "GRPC_DURATION_KEY", "TIMESTAMP_FORMAT",
}  # fmt: skip


def test_spec_names_exported() -> None:
    """Every core name of SPEC §3.2 is exported."""
    assert set(log.__all__) >= SPEC_NAMES
    for name in log.__all__:
        assert hasattr(log, name), name


def test_otlp_output_exported() -> None:
    """``log.otlp_output`` is public, beside the names every release has."""
    assert "otlp_output" in log.__all__
    assert callable(log.otlp_output)


def test_all_sorted_and_complete() -> None:
    """__all__ is sorted and lists every public attribute defined by the facade."""
    assert list(log.__all__) == sorted(log.__all__)
    public = {
        n
        for n, v in vars(log).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and n not in {"annotations", "Any"}
    }
    assert public - set(log.__all__) == set()


#: The public API, exactly: a name added to or removed from a module's ``__all__`` is a
#: change of the public API and is made here too.
PUBLIC_API = {
    "clue.log": {
        "ASGIMiddleware", "AioGrpcServerInterceptor", "AsyncHttpxTransport", "BufferingProcessor",
        "ERROR_MESSAGE_KEY", "EXCEPTION_KEY", "Entry", "FILE_KEY", "Fields", "GRPC_CODE_KEY",
        "GRPC_DURATION_KEY", "GRPC_METHOD_KEY", "GRPC_SERVICE_KEY", "GRPC_STATUS_KEY",
        "GrpcClientInterceptor", "GrpcServerInterceptor", "HTTP_BODY_KEY", "HTTP_BYTES_KEY",
        "HTTP_DURATION_KEY", "HTTP_FROM_KEY", "HTTP_METHOD_KEY", "HTTP_STATUS_KEY", "HTTP_URL_KEY",
        "HttpxTransport", "KV", "LOGGER_KEY", "MESSAGE_KEY", "METHOD_KEY", "REQUEST_ID_KEY",
        "RequestsAdapter", "SERVICE_KEY", "SEVERITY_KEY", "SPAN_ID_KEY", "StdlibHandler",
        "TIMESTAMP_FORMAT", "TIMESTAMP_KEY", "TRACE_ID_KEY", "TimeStamper", "WSGIMiddleware",
        "aio_grpc_client_interceptors", "as_std_logger", "bind", "buffering_wrapper_class",
        "configure", "context", "debug", "debug_enabled", "endpoint", "error", "fatal", "flush",
        "format_json", "format_terminal", "format_text", "info", "is_tracing", "otlp_output",
        "print", "span", "warn", "warning",
    },
    "clue.log.testing": {"CapturedLogs", "capture", "clue_logs", "reset"},
    "clue.log.celery": {
        "CELERY_DURATION_KEY", "CELERY_STATE_KEY", "CELERY_TASK_ID_KEY", "CELERY_TASK_KEY",
        "REQUEST_ID_HEADER", "install", "uninstall",
    },
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_all_is_exactly_the_public_api(module: str) -> None:
    """Each public module's __all__ is exactly its public API, once each, every name resolving."""
    mod = importlib.import_module(module)
    assert len(mod.__all__) == len(set(mod.__all__))
    assert set(mod.__all__) == PUBLIC_API[module]
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_key_values_match_spec() -> None:
    """Key variables have the SPEC's default values."""
    assert (log.MESSAGE_KEY, log.ERROR_MESSAGE_KEY, log.TIMESTAMP_KEY) == ("msg", "err", "time")
    assert (log.HTTP_FROM_KEY, log.GRPC_DURATION_KEY) == ("http.remote_addr", "grpc.time_ms")


def test_log_control_entry_point() -> None:
    """clue-log registers its log control under the clue.log_control entry-point group."""
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="clue.log_control") if e.name == "clue-log"]
    control = ep.load()
    assert not control.debug_enabled()
    with control.debug_scope():
        assert control.debug_enabled()
        assert log.debug_enabled()
    assert not control.debug_enabled()


def test_debug_scope_inside_context_unbuffers(clue_logs: object) -> None:
    """debug_scope on an open context flushes it and writes debug entries."""
    from clue.log._control import LOG_CONTROL

    with log.context():
        log.info("before")
        with LOG_CONTROL.debug_scope():
            log.debug("dbg")
        log.debug("not any more")
    assert clue_logs.messages == ["before", "dbg"]  # type: ignore[attr-defined]


def _modules() -> list[str]:
    return [
        "clue.log",
        *(f"clue.log.{m.name}" for m in pkgutil.iter_modules(clue.log.__path__)),
    ]


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    """Every Example: in the docstrings runs as written."""
    module = importlib.import_module(name)
    reset()
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    reset()
    assert result.failed == 0


def test_every_documented_public_name_says_when_it_was_added() -> None:
    """Each public function and class of ``clue.log`` carries ``versionadded``."""
    missing = [
        name
        for name in log.__all__
        if callable(obj := getattr(log, name))
        and not isinstance(obj, str)
        and "versionadded" not in (obj.__doc__ or "")
    ]
    assert missing == []
