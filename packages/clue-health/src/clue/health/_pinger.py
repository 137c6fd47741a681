"""The ``Pinger`` protocol: one dependency the service needs."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Pinger(Protocol):
    """A dependency that can be pinged.

    ``name`` identifies the dependency in health reports (``status`` keys, span names,
    log lines). ``ping()`` returns normally when the dependency is healthy and raises
    anything when it is not; it may be a plain method or an ``async def``. A ping that
    outlasts the checker's timeout is reported ``NOT OK`` whatever it returns later.

    Example:
        >>> class Database:
        ...     name = "postgresql"
        ...
        ...     def ping(self) -> None:
        ...         pass  # e.g. connection.execute("SELECT 1")
        >>> isinstance(Database(), Pinger)
        True

    .. versionadded:: 0.1.0
    """

    @property
    def name(self) -> str:
        """Name of the dependency, unique within a checker."""
        ...

    def ping(self) -> Awaitable[None] | None:
        """Return when the dependency is healthy; raise anything when it is not."""
        ...
