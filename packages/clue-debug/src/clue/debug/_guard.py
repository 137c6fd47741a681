"""What every debug endpoint checks first.

The method, the ``Host``, cross-site requests and the auth hook.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import structlog

from clue.debug._http import AuthHook, Handler, Request, Response, text_response

__all__ = ["DEFAULT_ALLOWED_HOSTS", "HostPolicy", "guard", "is_cross_site"]

DEFAULT_ALLOWED_HOSTS = ("localhost", ".localhost")
"""Names always served besides IP addresses: they resolve to loopback and cannot be
re-pointed by another site's DNS."""

# host[:port], IPv6 literals in brackets; the port may be empty (RFC 3986).
_HOST_HEADER = re.compile(r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::[0-9]{0,5})?")
_ENTRY = re.compile(r"\*|(?:\*\.|\.)?[a-z0-9_-][a-z0-9._-]*")


class HostPolicy:
    """Which ``Host`` header values a debug listener answers (DNS-rebinding defence).

    A page on ``evil.example`` can re-point its own name at 127.0.0.1 and then read the
    answers as same-origin: the browser still sends ``Host: evil.example``. So a request
    is answered only when its ``Host`` is an IP address, ``localhost`` (or a
    ``.localhost`` name), or a name in ``allowed_hosts``. A request without ``Host`` (no
    browser sends one) is answered.

    ``allowed_hosts`` entries: ``"name"`` (exactly), ``".name"`` or ``"*.name"`` (the
    name and every subdomain), ``"*"`` (any host: for a listener behind a proxy that
    checks ``Host`` itself). Ports are not compared.
    """

    __slots__ = ("_any", "_exact", "_suffixes", "allowed_hosts")

    def __init__(self, allowed_hosts: Iterable[str] | None = None) -> None:
        if isinstance(allowed_hosts, str):
            msg = f"allowed_hosts must be a list of names, got the string {allowed_hosts!r}"
            raise ValueError(msg)
        extra = list(allowed_hosts or ())
        for entry in extra:
            if not isinstance(entry, str) or not _ENTRY.fullmatch(entry.strip().lower()):
                msg = (
                    f"allowed_hosts entries are host names ('name', '.name', '*.name' or '*'), "
                    f"got {entry!r}"
                )
                raise ValueError(msg)
        self.allowed_hosts: tuple[str, ...] = tuple(extra)
        entries = [e.strip().lower().rstrip(".") for e in (*DEFAULT_ALLOWED_HOSTS, *extra)]
        self._any = "*" in entries
        self._exact = frozenset(e for e in entries if not e.startswith(("*", ".")))
        self._suffixes = tuple("." + e.lstrip("*").lstrip(".") for e in entries if e[0] in "*.")
        self._exact |= {s[1:] for s in self._suffixes if s != "."}

    def allows(self, host: str | None) -> bool:
        """Whether a request with this ``Host`` header (``None``: absent) is answered."""
        if host is None or self._any:
            return True
        match = _HOST_HEADER.fullmatch(host.strip().lower())
        if match is None:
            return False
        if match["ip6"] is not None:
            return _is_ip(match["ip6"], 6)
        name = match["name"]
        if name.endswith(".") and not name.endswith(".."):
            name = name[:-1]  # the fully qualified spelling of the same name
        if _is_ip(name, 4):
            return True
        return name in self._exact or name.endswith(self._suffixes)


def _is_ip(text: str, version: int) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return address.version == version


def guard(
    handler: Handler,
    *,
    auth: AuthHook | None,
    methods: frozenset[str],
    hosts: HostPolicy | None = None,
) -> Handler:
    """Wrap ``handler`` with the checks every debug endpoint makes.

    The method check, the ``Host`` check, the cross-site refusal and ``auth``.

    Debug endpoints change process state (the switch, tracemalloc) or cost CPU (profiles),
    so a request a browser sends on behalf of another site is refused: a page elsewhere
    cannot flip the switch through an operator's browser, nor read the answers after
    re-pointing its own name at the listener. Tools (curl, ``go tool pprof``) send
    neither ``Sec-Fetch-Site``, ``Origin`` nor ``Referer``, and the host they were told.
    ``hosts=None`` leaves the ``Host`` check to the router (``Mux`` and ``adapt`` do it).
    """

    def guarded(request: Request) -> Response:
        if request.method not in methods:
            allow = ", ".join(sorted(methods))
            return text_response(405, "method not allowed\n", headers=[("Allow", allow)])
        if hosts is not None and not hosts.allows(request.headers.get("host")):
            return host_refused()
        if is_cross_site(request):
            return text_response(403, "cross-site request refused\n")
        if auth is not None and not _authorized(auth, request):
            return text_response(403, "forbidden\n")
        try:
            return handler(request)
        except Exception as exc:  # a debug endpoint must never break the server
            with contextlib.suppress(Exception):
                structlog.get_logger("clue.debug").warning(
                    "clue.debug: endpoint failed", path=request.path, err=repr(exc)
                )
            return text_response(500, f"internal error: {type(exc).__name__}\n")

    return guarded


def host_refused() -> Response:
    """The answer to a request whose ``Host`` the listener does not serve."""
    return text_response(
        403, "Host not allowed for debug endpoints; add the name to allowed_hosts\n"
    )


def is_cross_site(request: Request) -> bool:
    """Whether a browser sent ``request`` on behalf of another site.

    ``Sec-Fetch-Site`` other than ``same-origin``/``none``, an ``Origin`` that is
    ``null`` or names another host than ``Host``, or a ``Referer`` from another host.
    A browser sends Fetch Metadata only to https and loopback URLs (and old ones never
    do); without it, a browser must show the page it comes from with an ``Origin`` or
    ``Referer`` of this host, because another site's ``<img referrerpolicy=no-referrer>``
    sends neither.
    """
    headers = request.headers
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in {"same-origin", "none"}:
        return True
    host = (headers.get("host") or "").strip().lower()
    origin = headers.get("origin")
    if origin is not None and not _same_host(origin.strip(), host, origin=True):
        return True
    referer = (headers.get("referer") or "").strip()
    if referer and not _same_host(referer, host):
        return True
    # Origin and Referer, when present, are this host's by now.
    return site is None and _is_browser(headers) and origin is None and not referer


def _is_browser(headers: Mapping[str, str]) -> bool:
    # Every browser's User-Agent starts so, and a page cannot change it; tools' do not.
    return headers.get("user-agent", "").lstrip().startswith("Mozilla/")


def _same_host(url: str, host: str, *, origin: bool = False) -> bool:
    if not host or url == "null":
        return False
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    if parts.scheme.lower() not in {"http", "https"}:
        return False
    if origin and (parts.path or parts.query or parts.fragment):
        return False  # an Origin is scheme://host[:port], nothing more
    return parts.netloc.lower() == host


def _authorized(auth: AuthHook, request: Request) -> bool:
    try:
        return auth(request) is True
    except Exception as exc:  # a failing hook denies; it never breaks the server
        with contextlib.suppress(Exception):
            structlog.get_logger("clue.debug").warning(
                "clue.debug: auth hook failed", path=request.path, err=repr(exc)
            )
        return False
