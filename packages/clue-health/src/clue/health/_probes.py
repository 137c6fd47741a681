"""Liveness and readiness: serving state, shutdown flip, SIGTERM hook and routing."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Literal

from clue.health._checker import Checker
from clue.health._fork import reinit_after_fork
from clue.health._health import Health
from clue.health._respond import (
    SHUTDOWN_CHECK,
    Query,
    Response,
    health_response,
    livez_response,
    not_found,
    readyz_response,
    single_check_response,
)
from clue.health._validate import seconds

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from clue.health._types import ASGIApp

Route = tuple[Literal["healthz", "livez", "readyz", "check"], str] | None
_Handler = Callable[[int, FrameType | None], object] | int | None


class Probes:
    """Kubernetes-style probes over one ``Checker``.

    - ``/livez``: 200 while the process answers; never calls a dependency.
    - ``/readyz``: the dependencies, in Kubernetes' text form (``?verbose`` lists each
      check, ``?exclude=name`` ignores one, ``/readyz/<name>`` checks one); 503 once
      ``shutdown()`` was called, while ``/livez`` stays 200.
    - ``/healthz``: the JSON/XML report of ``wsgi_handler`` / ``asgi_handler``.

    Serve them with ``wsgi(app)`` / ``asgi(app)`` (middleware in front of ``app``, or a
    standalone app when ``app`` is None), and on gRPC with ``clue.health.grpc``.

    Args:
        checker: the dependencies readiness checks.
        livez, readyz, healthz: the paths (each may be None to not serve it).

    Example:
        >>> probes = Probes(Checker())
        >>> probes.ready
        True
        >>> probes.shutdown()
        >>> probes.ready
        False

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        checker: Checker,
        *,
        livez: str | None = "/livez",
        readyz: str | None = "/readyz",
        healthz: str | None = "/healthz",
    ) -> None:
        if not isinstance(checker, Checker):
            raise TypeError(f"checker must be a clue.health.Checker, got {checker!r}")
        for option, path in (("livez", livez), ("readyz", readyz), ("healthz", healthz)):
            if path is not None and (not isinstance(path, str) or not path.startswith("/")):
                raise ValueError(f"{option} must be a path starting with '/', got {path!r}")
        self._checker = checker
        self._paths = {"livez": livez, "readyz": readyz, "healthz": healthz}
        self._ready = True
        # Reentrant: the SIGTERM hook runs shutdown() on the main thread, which may hold it.
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        reinit_after_fork(self)

    def _after_fork(self) -> None:
        self._lock = threading.RLock()  # the parent's may be held by a thread not here

    @property
    def checker(self) -> Checker:
        """The checker behind readiness."""
        return self._checker

    @property
    def ready(self) -> bool:
        """False once ``shutdown()`` was called."""
        return self._ready

    def shutdown(self) -> None:
        """Answer not ready from now on (503 on ``/readyz``, NOT_SERVING on gRPC)."""
        with self._lock:
            if not self._ready:
                return
            self._ready = False
            listeners = list(self._listeners)
        for notify in listeners:
            with contextlib.suppress(Exception):  # a listener (a gRPC watch) never breaks shutdown
                notify()

    def install_sigterm_hook(self, *, grace: float = 0.0) -> None:
        """On SIGTERM, turn readiness off, then let the previous handler act.

        Kubernetes sends SIGTERM and keeps routing traffic until readiness fails, so a
        ``grace`` of a few seconds lets the load balancers notice before the process
        stops. After ``grace`` seconds (or at once on a second SIGTERM) the handler that
        was installed before runs; when that was the default action, the process
        terminates by SIGTERM as usual. Call from the main thread.

        Raises:
            ValueError: ``grace`` is negative or not finite, or the caller is not the
                main thread.
        """
        grace = seconds("grace", grace, zero=True)
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("install_sigterm_hook must be called from the main thread")
        previous: _Handler = signal.getsignal(signal.SIGTERM)
        state = {"armed": False, "due": grace == 0}

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            self.shutdown()
            if state["due"] or state["armed"]:
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
                _chain(previous, signum, frame)
                return
            state["armed"] = True
            timer = threading.Timer(grace, _signal_main_thread, (signum,))
            timer.daemon = True
            timer.start()

        signal.signal(signal.SIGTERM, on_sigterm)

    def route(self, path: str) -> Route:
        """Which probe a request path asks for, if any."""
        p = self._paths
        if path == p["livez"]:
            return ("livez", "")
        if path == p["readyz"]:
            return ("readyz", "")
        if p["readyz"] is not None and path.startswith(p["readyz"] + "/"):
            return ("check", path[len(p["readyz"]) + 1 :])
        if path == p["healthz"]:
            return ("healthz", "")
        return None

    def wsgi(self, app: WSGIApplication | None = None) -> WSGIApplication:
        """A WSGI app serving the probes' paths, passing every other request to ``app``.

        Without ``app``, other paths answer 404 (a standalone app for an internal port).
        """
        from clue.health._wsgi import probes_wsgi

        return probes_wsgi(self, app)

    def asgi(self, app: ASGIApp | None = None) -> ASGIApp:
        """An ASGI app serving the probes' paths, passing every other request to ``app``.

        Without ``app``, other paths answer 404, and the lifespan shutdown event turns
        readiness off. Works as Starlette middleware: ``app.add_middleware(probes.asgi)``.
        """
        from clue.health._asgi import probes_asgi

        return probes_asgi(self, app)

    def needs_check(self, route: Route, query: Query) -> bool:
        """Whether answering ``route`` calls the checker."""
        if route is None or route[0] == "livez":
            return False
        if route[0] == "readyz":
            return self._ready or SHUTDOWN_CHECK in query.exclude
        return True

    def respond(
        self, route: Route, query: Query, accept: str | None, health: Health | None
    ) -> Response:
        """The answer to a probe; ``health`` is the check when ``needs_check`` said so."""
        if route is None:
            return not_found()
        kind, name = route
        if kind == "livez":
            return livez_response(query)
        if kind == "readyz":
            return readyz_response(health, self._ready, query)
        if health is None:  # not reached: needs_check() is True for the routes below
            return not_found()
        if kind == "check":
            return single_check_response(health, name)
        return health_response(health, health.healthy, accept)

    def add_listener(self, notify: Callable[[], None]) -> Callable[[], None]:
        """Call ``notify`` when readiness changes; returns the function that unsubscribes."""
        with self._lock:
            self._listeners.append(notify)

        def remove() -> None:
            with self._lock:
                if notify in self._listeners:
                    self._listeners.remove(notify)

        return remove


def _signal_main_thread(signum: int) -> None:
    """Deliver ``signum`` to the main thread, where Python runs signal handlers."""
    signal.pthread_kill(threading.main_thread().ident or 0, signum)


def _chain(previous: _Handler, signum: int, frame: FrameType | None) -> None:
    if callable(previous):
        previous(signum, frame)
    elif previous in (signal.SIG_DFL, None):
        signal.raise_signal(signum)
