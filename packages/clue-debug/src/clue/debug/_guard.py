"""What every debug endpoint checks first: the auth hook and cross-site requests."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import structlog

from ._http import AuthHook, Handler, Request, Response, text_response

__all__ = ["guard", "is_cross_site"]


def guard(handler: Handler, *, auth: AuthHook | None, methods: frozenset[str]) -> Handler:
    """Wrap ``handler`` with the method check, the cross-site refusal and ``auth``.

    Debug endpoints change process state (the switch, tracemalloc) or cost CPU (profiles),
    so a request a browser sends on behalf of another site is refused: a page elsewhere
    cannot flip the switch through an operator's browser. Tools (curl, ``go tool pprof``)
    send neither ``Sec-Fetch-Site`` nor ``Origin`` and are not affected.
    """

    def guarded(request: Request) -> Response:
        if request.method not in methods:
            allow = ", ".join(sorted(methods))
            return text_response(405, "method not allowed\n", headers=[("Allow", allow)])
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


def is_cross_site(request: Request) -> bool:
    """Whether a browser sent ``request`` on behalf of another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() in {"cross-site", "same-site"}:
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    origin = origin.strip()
    if origin == "null":
        return True
    host = request.headers.get("host")
    if not host:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return True
    return netloc.lower() != host.strip().lower()


def _authorized(auth: AuthHook, request: Request) -> bool:
    try:
        return auth(request) is True
    except Exception as exc:  # a failing hook denies; it never breaks the server
        with contextlib.suppress(Exception):
            structlog.get_logger("clue.debug").warning(
                "clue.debug: auth hook failed", path=request.path, err=repr(exc)
            )
        return False
