"""The ``grpc.health.v1.Health`` service backed by a ``Checker`` (extra ``clue-health[grpc]``).

Kubernetes' native gRPC probes, ``grpc_health_probe`` and load balancers call this
service. Importing ``clue.health`` never imports grpc; this module does.

Service names answered:

- ``""`` (the server as a whole) and each name in ``services``: SERVING when every
  dependency is OK and readiness is on, NOT_SERVING otherwise;
- ``liveness_service`` (default ``"liveness"``): SERVING while the process answers, with
  no dependency call (point a liveness probe's ``service`` field at it);
- each dependency's name: that dependency alone.

``Check`` answers NOT_FOUND for any other name; ``Watch`` streams SERVICE_UNKNOWN for it,
as the protocol says. ``Watch`` sends the status when the call starts and whenever it
changes (re-checked every ``watch_interval`` seconds, at once on ``Probes.shutdown()``).
``List`` answers every known name.

A sync ``grpc.server`` runs each open stream on one of its pool's threads for the
stream's whole life, so ``HealthServicer`` serves at most ``max_watchers`` (default 4)
``Watch`` streams at once and refuses more with RESOURCE_EXHAUSTED: watchers can never
starve ``Check`` (or the service's own RPCs) of threads. ``AioHealthServicer`` holds no
thread per stream and is unbounded by default.

Example:
    >>> from concurrent import futures
    >>> import grpc
    >>> from clue.health import Checker
    >>> from clue.health.grpc import HealthServicer, add_to_server
    >>> server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    >>> add_to_server(HealthServicer(Checker()), server)

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

try:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
except ImportError as exc:
    raise ImportError(
        f"clue.health.grpc needs the 'grpc' extra: pip install 'clue-health[grpc]' ({exc})",
        name=exc.name,
    ) from exc

from clue.health._checker import Checker
from clue.health._fork import reinit_after_fork
from clue.health._health import OK, Health
from clue.health._probes import Probes
from clue.health._validate import seconds

__all__ = ["AioHealthServicer", "HealthServicer", "add_to_server"]

SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: int = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
DEFAULT_WATCH_INTERVAL = 5.0
DEFAULT_MAX_WATCHERS = 4


class _Default:
    """The type of ``_DEFAULT``: "the servicer's own default" (4 sync, unbounded aio)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<default>"


_DEFAULT = _Default()


def add_to_server(servicer: HealthServicer | AioHealthServicer, server: Any) -> None:
    """Register ``servicer`` on a ``grpc.server`` or ``grpc.aio.server``."""
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)


class _Base(health_pb2_grpc.HealthServicer):  # type: ignore[misc] # grpc ships no type stubs
    """Maps service names to serving statuses; shared by the sync and aio servicers."""

    _default_max_watchers: int | None = None

    def __init__(
        self,
        checker: Checker,
        *,
        probes: Probes | None = None,
        services: Iterable[str] = (),
        liveness_service: str | None = "liveness",
        watch_interval: float = DEFAULT_WATCH_INTERVAL,
        max_watchers: int | _Default | None = _DEFAULT,
    ) -> None:
        if not isinstance(checker, Checker):
            raise TypeError(f"checker must be a clue.health.Checker, got {checker!r}")
        if probes is not None and not isinstance(probes, Probes):
            raise TypeError(f"probes must be a clue.health.Probes, got {probes!r}")
        if isinstance(services, str):
            raise ValueError(f"services must be a list of names, got the string {services!r}")
        self._checker = checker
        self._probes = probes
        self._overall = frozenset(("", *services))
        self._liveness = liveness_service
        self._interval = seconds("watch_interval", watch_interval)
        if isinstance(max_watchers, _Default):
            max_watchers = self._default_max_watchers
        if max_watchers is not None and (
            isinstance(max_watchers, bool) or not isinstance(max_watchers, int) or max_watchers < 0
        ):
            raise ValueError(f"max_watchers must be an int >= 0 or None, got {max_watchers!r}")
        self._max_watchers = max_watchers
        self._watchers = 0
        self._watchers_lock = threading.Lock()
        reinit_after_fork(self)

    def _after_fork(self) -> None:
        # No stream of the parent lives on in a forked child.
        self._watchers_lock = threading.Lock()
        self._watchers = 0

    def _admit_watcher(self) -> bool:
        """Count one more ``Watch`` stream; False (not counted) past ``max_watchers``."""
        with self._watchers_lock:
            if self._max_watchers is not None and self._watchers >= self._max_watchers:
                return False
            self._watchers += 1
            return True

    def _release_watcher(self) -> None:
        with self._watchers_lock:
            self._watchers -= 1

    def _too_many_watchers(self) -> str:
        return (
            f"too many Watch streams (max_watchers={self._max_watchers}); poll with Check, "
            "or raise max_watchers (keep it below the server's thread count)"
        )

    def _ready(self) -> bool:
        return self._probes is None or self._probes.ready

    def _needs_check(self, service: str) -> bool:
        """Whether the status of ``service`` depends on a check."""
        if service == self._liveness:
            return False
        return not (service in self._overall and not self._ready())

    def _status_of(self, service: str, health: Health | None) -> int:
        """The status of ``service`` (``health`` is given when ``_needs_check``)."""
        if service == self._liveness:
            return SERVING
        if service in self._overall:
            ok = self._ready() and health is not None and health.healthy
            return SERVING if ok else NOT_SERVING
        if health is not None and service in health.status:
            return SERVING if health.status[service] == OK else NOT_SERVING
        if service in self._checker.names:
            return NOT_SERVING
        return SERVICE_UNKNOWN

    def _list(self, health: Health) -> Any:
        names = [*sorted(self._overall), *([self._liveness] if self._liveness else [])]
        names += [n for n in self._checker.names if n not in names]
        return health_pb2.HealthListResponse(
            statuses={name: _response(self._status_of(name, health)) for name in names}
        )

    def _subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        if self._probes is None:
            return lambda: None
        return self._probes.add_listener(wake)


def _response(status: int) -> Any:
    return health_pb2.HealthCheckResponse(status=status)


class HealthServicer(_Base):
    """``grpc.health.v1.Health`` for ``grpc.server`` (sync).

    Args:
        checker: the dependencies.
        probes: readiness state; after ``probes.shutdown()`` the server is NOT_SERVING.
        services: gRPC service names that report the overall status too.
        liveness_service: name answering SERVING with no dependency call (None: none).
        watch_interval: seconds between re-checks for ``Watch`` (default 5).
        max_watchers: ``Watch`` streams served at once (default 4); each holds one of
            the server's threads while open, so keep it below the pool's size. More are
            refused with RESOURCE_EXHAUSTED. ``None``: unbounded.

    Raises:
        TypeError, ValueError: an argument is malformed.
    """

    _default_max_watchers = DEFAULT_MAX_WATCHERS

    def _status(self, service: str) -> int:
        health = self._checker.check()[0] if self._needs_check(service) else None
        return self._status_of(service, health)

    def Check(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        """The status of ``request.service``; NOT_FOUND for an unknown name."""
        status = self._status(request.service)
        if status == SERVICE_UNKNOWN:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return _response(status)

    def Watch(self, request: Any, context: Any) -> Iterator[Any]:  # noqa: N802 - gRPC method name
        """The status of ``request.service`` now and on every change, until cancelled."""
        if not self._admit_watcher():
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, self._too_many_watchers())
        wake = threading.Event()
        try:
            unsubscribe = self._subscribe(wake.set)
        except BaseException:
            self._release_watcher()
            raise
        context.add_callback(wake.set)
        last = None
        try:
            while context.is_active():
                status = self._status(request.service)
                if status != last:
                    last = status
                    yield _response(status)
                wake.wait(self._interval)
                wake.clear()
        finally:
            unsubscribe()
            self._release_watcher()

    def List(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        """Every known name and its status."""
        return self._list(self._checker.check()[0])


class AioHealthServicer(_Base):
    """``grpc.health.v1.Health`` for ``grpc.aio.server``; same arguments as ``HealthServicer``.

    A ``Watch`` stream holds no thread here (it awaits), so ``max_watchers`` defaults to
    ``None`` (unbounded).
    """

    async def _status(self, service: str) -> int:
        health = (await self._checker.acheck())[0] if self._needs_check(service) else None
        return self._status_of(service, health)

    async def Check(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        """The status of ``request.service``; NOT_FOUND for an unknown name."""
        status = await self._status(request.service)
        if status == SERVICE_UNKNOWN:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return _response(status)

    async def Watch(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802 - gRPC method name
        """The status of ``request.service`` now and on every change, until cancelled."""
        if not self._admit_watcher():
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, self._too_many_watchers())
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def notify() -> None:
            loop.call_soon_threadsafe(wake.set)

        try:
            unsubscribe = self._subscribe(notify)
        except BaseException:
            self._release_watcher()
            raise
        last = None
        try:
            while True:
                status = await self._status(request.service)
                if status != last:
                    last = status
                    yield _response(status)
                try:
                    async with asyncio.timeout(self._interval):
                        await wake.wait()
                except TimeoutError:
                    pass
                wake.clear()
        finally:
            unsubscribe()
            self._release_watcher()

    async def List(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        """Every known name and its status."""
        return self._list((await self._checker.acheck())[0])
