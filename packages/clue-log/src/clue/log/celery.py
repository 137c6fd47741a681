"""Celery (extra ``clue-log[celery]``): one log context per task, the same promise as a request.

The enqueuing request's trace context and request id are carried in the task's headers.

Nothing happens on import: :func:`install` connects the signal handlers (``import
clue.log`` never imports Celery, and importing this module changes nothing by itself).

- ``before_task_publish`` (the enqueuing process): the current trace context (the global
  OpenTelemetry propagator: W3C ``traceparent``/``tracestate``/``baggage`` by default) and
  the current log context's ``request_id`` go into the message headers.
- ``task_prerun`` (the worker): a log context opens for the task, binding ``request_id``
  (the enqueuing request's, else a new one), ``celery.task`` and ``celery.task_id``; the
  trace context from the headers becomes current, so the task's lines (``log.span``) and
  spans join the request's trace. A ``start`` line is logged.
- ``task_failure`` / ``task_retry``: an error with the exception (and its traceback) is
  logged, which writes the task's buffered context.
- ``task_postrun``: the ``end`` line (``celery.state``, ``celery.time_ms``; at error
  severity for a failed or retried task), then the log context closes: a task that
  succeeded discards what it buffered.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from time import perf_counter
from typing import Any

try:
    from celery import signals  # type: ignore[import-untyped]  # Celery ships no type hints
    from celery.exceptions import Retry  # type: ignore[import-untyped]  # no type hints either
except ImportError as exc:
    raise ImportError(
        f"clue.log.celery needs the 'celery' extra: pip install 'clue-log[celery]' ({exc})",
        name=exc.name,
    ) from exc
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.propagators.textmap import Getter

from clue.log import _api, _context, _keys
from clue.log._request_id import new_request_id, request_id_from
from clue.log._server_options import check_not_async, elapsed_ms, log_line

__all__ = [
    "CELERY_DURATION_KEY",
    "CELERY_STATE_KEY",
    "CELERY_TASK_ID_KEY",
    "CELERY_TASK_KEY",
    "REQUEST_ID_HEADER",
    "install",
    "uninstall",
]

#: The task's name, bound for every line of the task.
CELERY_TASK_KEY = "celery.task"
#: The task's id, bound for every line of the task.
CELERY_TASK_ID_KEY = "celery.task_id"
#: The task's final state on the ``end`` line (``SUCCESS``, ``FAILURE``, ``RETRY``...).
CELERY_STATE_KEY = "celery.state"
#: How long the task ran, in milliseconds, on the ``end`` line.
CELERY_DURATION_KEY = "celery.time_ms"
#: The message header carrying the enqueuing request's id.
REQUEST_ID_HEADER = "x-request-id"

_FAILED_STATES = frozenset({"FAILURE", "RETRY"})
_UID = "clue.log.celery"


class _Task:
    """One running task: its log context, the attached trace context, when it started."""

    __slots__ = ("cm", "start", "token")

    def __init__(self, cm: Any, token: object, start: float) -> None:
        self.cm = cm
        self.token = token
        self.start = start


class _Handlers:
    """The signal handlers, with the options given to :func:`install`."""

    def __init__(self, log_tasks: bool, log_func: Callable[..., Any]) -> None:
        self.log_tasks = log_tasks
        self.log_func = log_func
        # Keyed by task id and thread: a message redelivered while its first delivery
        # still runs (a visibility timeout) runs the same task id twice at once.
        self.running: dict[tuple[str, int], _Task] = {}
        self.lock = threading.Lock()

    # Enqueuing side ----------------------------------------------------------------------

    def before_publish(self, headers: dict[str, Any] | None = None, **_: Any) -> None:
        if headers is None:
            return
        try:
            propagate.inject(headers)
            rid = _caller_request_id()
            if rid is not None and REQUEST_ID_HEADER not in headers:
                headers[REQUEST_ID_HEADER] = rid
        except Exception:  # noqa: S110 - telemetry never breaks the enqueuing code
            pass

    # Worker side -------------------------------------------------------------------------

    def prerun(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        if task_id is None or task is None:
            return
        try:
            request = getattr(task, "request", None)
            incoming = getattr(request, REQUEST_ID_HEADER, None)
            if not isinstance(incoming, str | bytes):
                # An eager task (no headers) keeps its caller's request id, as its trace.
                incoming = _caller_request_id()
            # On top of the current context: an eager task (no headers) keeps its caller's.
            current = otel_context.get_current()
            token = otel_context.attach(propagate.extract(request, current, getter=_GETTER))
            cm = _context.context()
            cm.__enter__()
            with self.lock:
                self.running[task_id, threading.get_ident()] = _Task(cm, token, perf_counter())
            _context.bind(
                **{
                    _keys.REQUEST_ID_KEY: request_id_from(incoming)
                    if isinstance(incoming, str | bytes)
                    else new_request_id(),
                    CELERY_TASK_KEY: str(getattr(task, "name", "")),
                    CELERY_TASK_ID_KEY: task_id,
                }
            )
            if self.log_tasks:
                log_line(self.log_func, "start", {})
        except Exception:  # noqa: S110 - telemetry never breaks the task
            pass

    def failure(self, task_id: str | None = None, exception: Any = None, **_: Any) -> None:
        if (task_id, threading.get_ident()) in self.running:
            _api.error("task failed", err=exception)

    def retry(self, request: Any = None, reason: Any = None, **_: Any) -> None:
        if (getattr(request, "id", None), threading.get_ident()) in self.running:
            _api.error("task retried", err=getattr(reason, "exc", None) or reason)

    def _propagated(self, exc: BaseException | None) -> str | None:
        """Log an exception Celery re-raises to an eager caller as the task's failure (or retry).

        As the signals would; returns the state it stands for (``None`` for a non-``Exception``).
        """
        if not isinstance(exc, Exception):
            return None
        if isinstance(exc, Retry):
            _api.error("task retried", err=getattr(exc, "exc", None) or exc)
            return "RETRY"
        _api.error("task failed", err=exc)
        return "FAILURE"

    def postrun(self, task_id: str | None = None, state: str | None = None, **_: Any) -> None:
        with self.lock:
            running = self.running.pop((task_id or "", threading.get_ident()), None)
        if running is None:
            return
        try:
            if state is None:
                # No outcome recorded: Celery is re-raising the task's exception to an
                # eager caller (task_eager_propagates, apply(throw=True)) without sending
                # task_failure or task_retry. The exception is the one in flight.
                state = self._propagated(sys.exc_info()[1])
            kv = {
                CELERY_STATE_KEY: state or "",
                CELERY_DURATION_KEY: elapsed_ms(running.start, perf_counter()),
            }
            if state in _FAILED_STATES:
                if self.log_tasks:
                    _api.error("end", **kv)
            elif self.log_tasks:
                log_line(self.log_func, "end", kv)
        except Exception:  # noqa: S110 - telemetry never breaks the task
            pass
        finally:
            try:
                running.cm.__exit__(None, None, None)
                otel_context.detach(running.token)  # type: ignore[arg-type]
            except Exception:  # noqa: S110 - left in another context: discarded with it
                pass


def _caller_request_id() -> str | None:
    """The request id bound in the current log context (the caller of an eager task)."""
    ctx = _context.current.get()
    if ctx is None:
        return None
    for key, value in reversed(ctx.bound):
        if key == _keys.REQUEST_ID_KEY and isinstance(value, str):
            return value
    return None


class _RequestGetter(Getter[Any]):
    """Reads propagation headers off a Celery task request (headers are attributes)."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        value = getattr(carrier, key, None)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Any) -> list[str]:
        return []


_GETTER = _RequestGetter()
# The connected handlers, if any (one set per process).
_installed: list[_Handlers] = []

_SIGNALS = (
    ("before_task_publish", "before_publish"),
    ("task_prerun", "prerun"),
    ("task_failure", "failure"),
    ("task_retry", "retry"),
    ("task_postrun", "postrun"),
)


def install(
    *, disable_task_logging: bool = False, task_log_func: Callable[..., Any] | None = None
) -> None:
    """Connect clue's Celery signal handlers (in the enqueuing process and in the worker).

    Call it where the Celery app is defined, so that both the code enqueuing tasks and
    the worker run it. Calling it again replaces the options.

    Args:
        disable_task_logging: no ``start``/``end`` lines (failures are still logged).
        task_log_func: writes the ``start``/``end`` lines; default ``log.print``;
            ``log.info`` makes them buffered too.

    Raises:
        ValueError: an option is malformed.

    Example:
        >>> import celery
        >>> import clue.log.celery
        >>> app = celery.Celery("tasks")
        >>> clue.log.celery.install()
    """
    if not isinstance(disable_task_logging, bool):
        raise ValueError(f"disable_task_logging must be a bool, got {disable_task_logging!r}")
    if task_log_func is not None and not callable(task_log_func):
        raise ValueError(f"task_log_func must be callable, got {task_log_func!r}")
    check_not_async("task_log_func", task_log_func)
    uninstall()
    handlers = _Handlers(not disable_task_logging, task_log_func or _api.print)
    for signal, method in _SIGNALS:
        getattr(signals, signal).connect(getattr(handlers, method), weak=False, dispatch_uid=_UID)
    _installed.append(handlers)


def uninstall() -> None:
    """Disconnect the handlers :func:`install` connected (tests, reconfiguration)."""
    if not _installed:
        return
    for signal, _ in _SIGNALS:
        getattr(signals, signal).disconnect(dispatch_uid=_UID)
    _installed.clear()
