"""Export what is queued however the process stops; start clean in a forked child.

:func:`~clue.otel.configure_opentelemetry` calls :func:`install`, which arranges for the
current configuration to be shut down (flushing spans, metric points and log records,
bounded by ``shutdown_timeout``) on every way a server ends a process:

- **Normal interpreter exit** (gunicorn's sync and gthread workers leave with
  ``sys.exit``; ``multiprocessing`` children): a ``threading`` exit hook, which runs
  before non-daemon threads are joined, and an ``atexit`` hook as a fallback.
- **SIGTERM (or SIGINT) with the default action** (a bare process, or uvicorn restoring
  the default handler after its graceful shutdown and re-raising the signal; gunicorn's
  uvicorn worker resets SIGINT to the default): ``atexit`` never runs there, so clue
  installs a handler that shuts the configuration down and then re-raises the signal
  with the handler that was there before, so the process still dies of the signal.
- **SIGTERM through a handler of the server or the application**: clue chains to it,
  with SIGTERM blocked in the main thread while it runs. A re-raise with the default
  action from within it (clue-health's hook when due) is let through after the export.
  uvicorn's handler (``uvicorn app:app`` imports the application inside the server's
  signal-capturing block) starts a graceful shutdown, at the end of which the server
  restores the default action and re-raises the signal: for it SIGTERM stays blocked,
  so the re-raise stays pending until the exit hook has exported, then is delivered.
  The process exits exactly as it would have, after the export. For any other handler
  SIGTERM is unblocked at once.
- **A signal landing inside telemetry code**: the main thread, running the SDK's code or
  clue's, may hold a lock the export needs; the export then starts when that call
  returns, whether the signal's default action or a handler re-raising it asked for it.
- **A signal during the exit**: from the interpreter's shutdown to the end of the
  export, SIGTERM or SIGINT with the default action (uvicorn's supervisor sends SIGTERM
  to a worker already leaving after a Ctrl-C, whose handlers uvicorn has restored to the
  defaults) waits for the export, then ends the process as it says; one that would call
  the server's handler again (gunicorn's ``sys.exit``) is absorbed.

After ``fork`` (gunicorn ``--preload``) the SDK re-creates its batch processors' worker
threads and locks and empties their queues (what the parent queued is exported once, by
the parent); the hooks above are inherited, their state starts empty, and the signal
handler is installed again at the first span (or log record, for a configuration that
exports logs) the child's main thread starts, because the server sets its workers'
handlers after forking.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

from clue.otel._bounded import prepare_for_shutdown, run_all_bounded

__all__ = ["install", "rearm_if_due", "shutdown_pending"]

_logger = structlog.get_logger("clue.otel")

# The signals whose default action ends the process without running ``atexit``. Python's
# own SIGINT handler raises KeyboardInterrupt, which unwinds normally and runs the exit
# hooks, and is left alone; but servers reset SIGINT to the default action in their
# workers (gunicorn's uvicorn worker), where a Ctrl-C, which signals every process of
# the terminal's group, kills the worker outright after its graceful shutdown.
_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _Hooks:
    # Process-wide: what is installed, what to call, what was deferred. The lock is
    # reentrant: the signal handler runs in the main thread, possibly while it holds it.
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.on_exit: Callable[[], object] | None = None
        self.timeout = 5.0
        self.exit_registered = False
        self.previous: dict[int, _Handler] = {}
        # Signals received, each with whether its default action must be taken at the end
        # (True) or only if the application re-raised it meanwhile (False).
        self.deferred: dict[int, bool] = {}
        self.hooked_pid: int | None = None
        # Hook the signals at the first span the main thread starts: set in a forked child
        # (a server sets its own handlers after forking, see ``_RearmAfterFork``), and when
        # configured from another thread, which may not set handlers.
        self.rearm = False
        self.forked = False
        self.providers: weakref.WeakSet[SdkTracerProvider] = weakref.WeakSet()
        # The global SDK logger provider whose own exit shutdown clue took over.
        self.logger_provider_exit: Any = None
        # From the interpreter's shutdown to the end of the export at exit, a signal whose
        # action would end the process at once waits for the export: the handlers clue
        # replaced for that (signal -> handler), and the signals held meanwhile.
        self.holding: dict[int, _Handler] = {}
        self.held: list[int] = []
        self.exporting = False
        # A signal whose export is postponed until the main thread has left the SDK's
        # code (signal -> when it first came), and how long the last one waited: the
        # export has the rest of the timeout.
        self.postponed: dict[int, float] = {}
        self.waited = 0.0


_HOOKS = _Hooks()


def install(on_exit: Callable[[], object], timeout: float, tracer_provider: object = None) -> None:
    """Run ``on_exit`` (a bounded shutdown that never raises) however the process stops.

    A global SDK logger provider the application installed itself is flushed at the
    same time, within ``timeout`` seconds (clue's own, with a log exporter, is part of
    the configuration ``on_exit`` shuts down). Idempotent; a later call replaces
    ``on_exit`` and ``timeout``. Signal handlers can only be set from the main thread: called from
    another thread, they are set at the first span the main thread starts.
    ``tracer_provider``, when it is the SDK's, gets the span processor that does that,
    and re-arms the signal hooks in a forked child.
    """
    with _HOOKS.lock:
        _HOOKS.on_exit = on_exit
        _HOOKS.timeout = timeout
        if not _HOOKS.exit_registered:
            _register_exit_hooks()
            _HOOKS.exit_registered = True
        prepare_for_shutdown()
        if isinstance(tracer_provider, SdkTracerProvider) and (
            tracer_provider not in _HOOKS.providers
        ):
            tracer_provider.add_span_processor(_RearmAfterFork())
            _HOOKS.providers.add(tracer_provider)
    if threading.current_thread() is threading.main_thread():
        _hook_signals()
    elif _HOOKS.hooked_pid != os.getpid():
        _HOOKS.rearm = True


def rearm_if_due() -> None:
    """Hook the signals again if due, from the main thread (see ``_RearmAfterFork``).

    Called at each span start and each log record of clue's providers. Hot path: one
    attribute read when nothing is due.
    """
    if _HOOKS.rearm and threading.current_thread() is threading.main_thread():
        _HOOKS.rearm = False
        _hook_signals(after_fork=_HOOKS.forked)


def shutdown_pending() -> None:
    """Run the exit hook now, then deliver a signal whose default action was deferred."""
    with _HOOKS.lock:
        if _HOOKS.exporting:
            # Re-entered from a signal handler: the export running delivers what came.
            return
        _HOOKS.exporting = True
        on_exit, timeout = _HOOKS.on_exit, max(_HOOKS.timeout - _HOOKS.waited, 0.0)
        deferred = sorted(_HOOKS.deferred.items())
        _HOOKS.deferred.clear()
    _hold_signals(during_export=True)
    try:
        if on_exit is not None:
            steps: dict[str, Callable[[], object]] = {"exit shutdown": on_exit}
            logger_provider = _sdk_logger_provider()
            if logger_provider is not None and logger_provider is _HOOKS.logger_provider_exit:
                steps["logger provider shutdown"] = logger_provider.shutdown
            elif logger_provider is not None:
                millis = int(timeout * 1000)
                steps["logger provider flush"] = lambda: logger_provider.force_flush(millis)
            run_all_bounded(steps, timeout)
    except Exception as exc:  # never raise out of an exit hook or a signal handler
        _logger.warning("otel.shutdown.failed", err=repr(exc))
    finally:
        with _HOOKS.lock:
            _HOOKS.exporting = False
    held = _release_signals()
    for signum, default_action in deferred:
        _deliver(signum, default_action)
    for signum in dict.fromkeys(held):
        if signum not in dict(deferred):
            _deliver(signum, default_action=True)


def _at_threading_exit() -> None:
    # The interpreter is shutting down and is about to join non-daemon threads. With a
    # re-raised SIGTERM pending, end the process now, as the signal would have. Without
    # one, leave the export to ``atexit``, after those threads have finished their spans.
    with _HOOKS.lock:
        pending = bool(_HOOKS.deferred)
        configured = _HOOKS.on_exit is not None
        if configured:
            _take_over_logger_provider_exit()
    if pending:
        shutdown_pending()
    elif configured:
        # Until that export has run, a signal with the default action (a supervisor's
        # SIGTERM to a worker already leaving, as uvicorn's does after a Ctrl-C) exports
        # first, then ends the process as it says.
        _hold_signals(during_export=False)


def _take_over_logger_provider_exit() -> None:
    # The SDK's logger provider shuts itself down from an ``atexit`` handler of its own,
    # unbounded: with a collector that hangs it waits for the exporter's timeout, or for
    # ever, and one created after clue's configuration runs before clue's hook. Before
    # any ``atexit`` handler runs, clue takes that shutdown into its bounded export.
    provider = _sdk_logger_provider()
    handler = getattr(provider, "_at_exit_handler", None)
    if handler is not None:
        atexit.unregister(handler)
        provider._at_exit_handler = None
        _HOOKS.logger_provider_exit = provider


def _register_exit_hooks() -> None:
    # ``threading._register_atexit`` runs when the interpreter starts shutting down, before
    # non-daemon threads are joined (a lingering thread must not keep a pending SIGTERM
    # from ending the process); ``atexit`` runs after them.
    register_threading = getattr(threading, "_register_atexit", None)
    if register_threading is not None:
        with contextlib.suppress(RuntimeError):  # already shutting down
            register_threading(_at_threading_exit)
    atexit.register(shutdown_pending)


def _hook_signals(after_fork: bool = False) -> None:
    with _HOOKS.lock:
        if _HOOKS.hooked_pid == os.getpid():
            return
        _HOOKS.hooked_pid = os.getpid()
        for signum in _SIGNALS:
            previous = signal.getsignal(signum)
            if _to_hook(signum, previous, after_fork):
                _HOOKS.previous[signum] = previous
                signal.signal(signum, _on_signal)


def _to_hook(signum: int, previous: _Handler, after_fork: bool) -> bool:
    if previous is signal.SIG_IGN or previous is None or previous is _on_signal:
        # Ignored on purpose (nohup), set outside Python, or ours already.
        return False
    if signum != signal.SIGINT or previous is signal.SIG_DFL:
        return True
    # Python's SIGINT handler raises KeyboardInterrupt, which unwinds and runs the exit
    # hooks, and asyncio.run and uvicorn replace it and restore it: leave SIGINT to them.
    # In a forked worker, though, the server reset it to the default action before
    # installing the handler it restores before re-raising (gunicorn's uvicorn worker).
    return after_fork and previous is not signal.default_int_handler


def _on_signal(signum: int, frame: FrameType | None) -> None:
    previous = _HOOKS.previous.get(signum, signal.SIG_DFL)
    if not callable(previous):
        # The default action (termination, skipping atexit): export, then let it happen.
        if _postponed(signum, frame, lambda: _on_signal(signum, None)):
            return
        with _HOOKS.lock:
            _HOOKS.deferred[signum] = True
        shutdown_pending()
        return
    # A handler of the application or its server decides what the signal does. It runs
    # with the signal blocked in this thread, so that a re-raise with the default action
    # waits for the export instead of ending the process at once.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
    try:
        previous(signum, frame)
    except BaseException:
        # It ends the process its own way (``sys.exit``): the exit hook exports, and a
        # re-raise it made on the way, if any, is delivered after that.
        with _HOOKS.lock:
            _HOOKS.deferred.setdefault(signum, False)
        raise
    if signum in signal.sigpending():
        # It re-raised the signal at once, with the default action restored (clue-health's
        # SIGTERM hook does when it is due): export, then let it end the process.
        with _HOOKS.lock:
            _HOOKS.deferred.setdefault(signum, False)
        if not _postponed(signum, frame, shutdown_pending):
            shutdown_pending()
    elif _reraises_after_shutdown(previous):
        # uvicorn: the graceful shutdown starts now; at its end the server restores the
        # default action and re-raises the signal. Keep it blocked until the exit hook.
        with _HOOKS.lock:
            _HOOKS.deferred.setdefault(signum, False)
    else:
        # Anything else keeps the signal as it was (a later SIGTERM, also one sent to
        # the main thread by a timer, reaches the handlers again).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})


def _postponed(signum: int, frame: FrameType | None, resume: Callable[[], object]) -> bool:
    # The main thread may have been interrupted inside the SDK's code or clue's, holding a
    # lock the export needs: a metric stream's while it aggregates a measurement (a new
    # attribute set, or any with delta temporality), the error promotion processor's
    # while a span ends. Exported from here, the export would wait until the timeout for
    # a lock this very thread holds, and lose everything. Instead the signal is handled
    # when the outermost such call returns (microseconds later; its locks are released
    # by then): ``resume`` then runs. A call that does not return is waited for half the
    # timeout at most, the export having the rest.
    now = time.monotonic()
    with _HOOKS.lock:
        since = _HOOKS.postponed.get(signum)
        if since is not None and now - since < _HOOKS.timeout / 2:
            return True  # sent again meanwhile: still waiting for that call
        if since is not None:
            # The call did not return in time (blocked): export anyway.
            del _HOOKS.postponed[signum]
            _HOOKS.waited = now - since
            sys.settrace(None)
            return False
    outermost = _outermost_telemetry_frame(frame)
    if outermost is None or sys.gettrace() is not None:
        return False  # nothing to wait for, or a debugger's tracing: export at once
    main = threading.get_ident()
    watchdog = threading.Thread(
        target=_wake_if_still_postponed,
        args=(main, signum, now, _HOOKS.timeout / 2),
        name="clue-otel signal",
        daemon=True,
    )
    try:
        watchdog.start()
    except RuntimeError:  # no new thread at interpreter shutdown: export at once
        return False
    with _HOOKS.lock:
        _HOOKS.postponed[signum] = now

    def on_return(traced: FrameType, event: str, arg: object) -> Any:
        if event != "return" or traced is not outermost:
            return on_return
        sys.settrace(None)
        with _HOOKS.lock:
            due = _HOOKS.postponed.pop(signum, None)
            if due is not None:
                _HOOKS.waited = time.monotonic() - due
        if due is not None:
            resume()
        return None

    outermost.f_trace_lines = False
    outermost.f_trace = on_return
    sys.settrace(_trace_no_new_frame)
    return True


# Modules whose code may hold a lock the export needs.
_TELEMETRY_MODULES = ("opentelemetry.sdk.", "clue.otel.")


def _outermost_telemetry_frame(frame: FrameType | None) -> FrameType | None:
    outermost = None
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if isinstance(name, str) and name.startswith(_TELEMETRY_MODULES):
            outermost = frame
        frame = frame.f_back
    return outermost


def _trace_no_new_frame(frame: FrameType, event: str, arg: object) -> None:
    # Tracing is on for the postponed frame's return event only.
    return None


def _wake_if_still_postponed(main: int, signum: int, since: float, delay: float) -> None:
    # The postponed call is blocked (a ``force_flush`` of the application's own, say):
    # send the signal to the main thread again, which then exports without waiting more.
    # A re-raise with the default action restored, held blocked in the main thread, is
    # let take its effect through another thread instead.
    time.sleep(delay)
    if _HOOKS.postponed.get(signum) != since:
        return
    with contextlib.suppress(OSError, ValueError):
        handler = signal.getsignal(signum)
        if handler is _on_signal:
            signal.pthread_kill(main, signum)
        elif handler is signal.SIG_DFL:
            os.kill(os.getpid(), signum)


def _reraises_after_shutdown(handler: Callable[..., object]) -> bool:
    # uvicorn's ``Server.handle_exit`` (or a subclass's): ``Server.capture_signals``
    # restores the handlers it replaced after the graceful shutdown and re-raises the
    # signals it caught; with ``uvicorn app:app`` the application (and clue) is imported
    # inside it, so what it restores is the default action.
    owner = getattr(handler, "__self__", None)
    return any(
        cls.__module__ == "uvicorn.server" and cls.__name__ == "Server"
        for cls in type(owner).__mro__
    )


def _hold_signals(during_export: bool) -> None:
    # From the main thread only (where handlers are set and run). During the export at
    # exit, a signal that would end the process at once (the default action, restored by
    # uvicorn before its re-raise, or clue's handler over it) or run the server's
    # handler again (gunicorn's ``sys.exit`` inside the export), or raise a
    # KeyboardInterrupt into it, is held until the export is over. Before it (interpreter
    # shutting down, non-daemon threads being joined), a default-action signal starts the
    # export at once, then ends the process.
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            current = signal.getsignal(signum)
            if current is _on_hold:
                continue
            if current is signal.SIG_DFL or (during_export and current in _HELD_DURING_EXPORT):
                _HOOKS.holding[signum] = current
                signal.signal(signum, _on_hold)


# Besides the default action, the handlers held during the export: clue's (over the
# default action, or over a server's handler that already chose how to end), and
# Python's SIGINT handler, whose KeyboardInterrupt (Ctrl-C pressed again while the
# process leaves) would be raised in the middle of the export and cut it short.
_HELD_DURING_EXPORT = (_on_signal, signal.default_int_handler)


def _on_hold(signum: int, frame: FrameType | None) -> None:
    # Nothing is logged: the main thread may be inside a write holding its lock.
    replaced = _HOOKS.holding.get(signum, signal.SIG_DFL)
    # What the signal would have done: end the process (the default action, directly or
    # after clue's export; an uncaught KeyboardInterrupt ends it of SIGINT too), or call a
    # handler that already chose how to end (absorbed).
    ends = replaced in (signal.SIG_DFL, signal.default_int_handler) or not callable(
        _HOOKS.previous.get(signum)
    )
    if _HOOKS.exporting:
        if ends:
            _HOOKS.held.append(signum)
        return
    with _HOOKS.lock:
        _HOOKS.deferred[signum] = True
    shutdown_pending()


def _release_signals() -> list[int]:
    # Put back the handlers ``_hold_signals`` replaced; return the signals held meanwhile.
    if threading.current_thread() is threading.main_thread():
        for signum, replaced in list(_HOOKS.holding.items()):
            with contextlib.suppress(OSError, ValueError):
                if signal.getsignal(signum) is _on_hold:
                    signal.signal(signum, replaced)
        _HOOKS.holding.clear()
    held, _HOOKS.held = _HOOKS.held, []
    return held


def _deliver(signum: int, default_action: bool) -> None:
    # Let ``signum`` have its effect, so the process ends as the signal says: after a
    # default-action signal, its default action; after a chained one, only what the
    # application re-raised (pending, blocked by us), with the handler now installed.
    # Otherwise the application's handler chose how to end (``sys.exit(0)`` in
    # gunicorn's workers): respect it.
    if threading.current_thread() is not threading.main_thread():
        return
    pending = signum in signal.sigpending()
    try:
        current = signal.getsignal(signum)
        if not pending and not default_action:
            return
        if default_action or current in (_on_signal, signal.SIG_DFL):
            signal.signal(signum, signal.SIG_DFL)
            if not pending:
                signal.raise_signal(signum)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    except (OSError, ValueError):  # pragma: no cover - no signal support at shutdown
        _logger.warning("otel.shutdown.signal_not_delivered", signal=signum)


def _sdk_logger_provider() -> Any:
    # The global logger provider when it is an SDK one the application installed (log
    # records queued in its batch processors); None otherwise, and when it is clue's
    # switchable provider, whose delegate the configuration's shutdown covers. Looked up, never
    # imported: without the logs SDK imported nobody installed one, and an import at
    # interpreter shutdown may fail.
    api, sdk = sys.modules.get("opentelemetry._logs"), sys.modules.get("opentelemetry.sdk._logs")
    if api is None or sdk is None:
        return None
    provider = api.get_logger_provider()
    return provider if isinstance(provider, sdk.LoggerProvider) else None


def _after_fork_in_child() -> None:
    # The child starts with no deferred signal; handlers are inherited as they are.
    # ``_HOOKS.lock`` may have been held by another thread of the parent at fork time.
    _HOOKS.lock = threading.RLock()
    _HOOKS.deferred = {}
    _HOOKS.holding = {}
    _HOOKS.held = []
    _HOOKS.exporting = False
    _HOOKS.postponed = {}
    _HOOKS.waited = 0.0
    _HOOKS.rearm = True
    _HOOKS.forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


class _RearmAfterFork(SpanProcessor):
    # A server that forks its workers from a parent that configured clue (gunicorn
    # ``--preload``) sets the workers' signal handlers itself after the fork, replacing
    # ours (gunicorn's uvicorn worker resets SIGTERM to the default, then uvicorn
    # re-raises it after its graceful shutdown). Nothing is queued in the child before
    # its first span, so hooking the signals again then, from the main thread (where
    # uvicorn serves), is in time; the server's handler is chained as usual. The same
    # holds for a configuration made from another thread (a lifespan's
    # ``run_in_executor``), which may not set handlers itself.

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        rearm_if_due()
