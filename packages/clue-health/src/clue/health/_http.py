"""``new_pinger``: a dependency that serves a health endpoint over HTTP."""

from __future__ import annotations

import re

import requests
from opentelemetry import propagate

from clue.health._checker import DEFAULT_TIMEOUT
from clue.health._pinger import Pinger
from clue.health._validate import seconds

# A healthy answer's body is read (so the connection is reused), up to this much.
_MAX_BODY = 64 * 1024
_ADDR = re.compile(r"^[^\s/?#@]+$")
_USER_AGENT = "clue-health/0.1.0"


class PingError(Exception):
    """A dependency's health endpoint answered something other than 2xx."""


class HTTPPinger:
    """Pings ``GET {scheme}://{addr}{path}``; healthy on 2xx only (redirects are not)."""

    def __init__(self, name: str, url: str, timeout: float, session: requests.Session) -> None:
        self._name = name
        self._url = url
        self._timeout = timeout
        self._session = session

    @property
    def name(self) -> str:
        """Name of the dependency."""
        return self._name

    @property
    def url(self) -> str:
        """The health endpoint pinged."""
        return self._url

    @property
    def session(self) -> requests.Session:
        """The session kept for this pinger (its connections are reused)."""
        return self._session

    def ping(self) -> None:
        """GET the endpoint with the current trace context; raise unless 2xx."""
        headers = {"Accept": "application/json, */*;q=0.5", "User-Agent": _USER_AGENT}
        propagate.inject(headers)
        with self._session.get(
            self._url, headers=headers, timeout=self._timeout, allow_redirects=False, stream=True
        ) as response:
            read = 0
            for chunk in response.iter_content(8192):
                read += len(chunk)
                if read >= _MAX_BODY:
                    break
            if not 200 <= response.status_code < 300:
                raise PingError(f"GET {self._url} answered {response.status_code}")

    def __repr__(self) -> str:
        return f"HTTPPinger(name={self._name!r}, url={self._url!r})"


def new_pinger(
    name: str,
    addr: str,
    *,
    scheme: str = "http",
    path: str = "/livez",
    timeout: float = DEFAULT_TIMEOUT,
    session: requests.Session | None = None,
) -> Pinger:
    """A pinger for a service exposing a health endpoint (e.g. another clue service).

    Each ping is ``GET {scheme}://{addr}{path}`` on the pinger's own ``requests``
    session (connections are reused across pings), carrying the current trace context
    (W3C ``traceparent``); the dependency is healthy when it answers 2xx.

    Args:
        name: the dependency's name in reports.
        addr: ``host:port`` (IPv6 hosts in brackets: ``[::1]:8080``).
        scheme: ``"http"`` or ``"https"``.
        path: the endpoint's path, starting with ``/``.
        timeout: seconds for connecting and for each read (default 0.5).
        session: a ``requests.Session`` to use (TLS settings, proxies, adapters);
            default: a new one for this pinger.

    Raises:
        ValueError: an option is malformed.

    Example:
        >>> pinger = new_pinger("users", "users.internal:8080")
        >>> pinger.name
        'users'

    .. versionadded:: 0.1.0
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    if not isinstance(addr, str) or not _ADDR.match(addr):
        raise ValueError(f"addr must be 'host:port' without scheme or path, got {addr!r}")
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be 'http' or 'https', got {scheme!r}")
    if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
        raise ValueError(f"path must start with '/' and contain no whitespace, got {path!r}")
    timeout = seconds("timeout", timeout)
    if session is not None and not isinstance(session, requests.Session):
        raise ValueError(f"session must be a requests.Session, got {session!r}")
    return HTTPPinger(name, f"{scheme}://{addr}{path}", timeout, session or requests.Session())
