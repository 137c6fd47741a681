"""The health endpoints as WSGI applications."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from clue.health._checker import Checker
from clue.health._respond import (
    Query,
    Response,
    health_response,
    method_not_allowed,
    not_found,
    status_line,
)

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from clue.health._probes import Probes


def wsgi_handler(checker: Checker) -> WSGIApplication:
    """A WSGI app answering the health report, wherever it is mounted.

    200 when every dependency is OK, 503 otherwise; JSON by default, XML when the
    ``Accept`` header prefers it; never cached. ``GET`` and ``HEAD`` only.

    Example:
        >>> from wsgiref.util import setup_testing_defaults
        >>> environ: dict = {}
        >>> setup_testing_defaults(environ)
        >>> seen = []
        >>> body = wsgi_handler(Checker())(environ, lambda status, headers: seen.append(status))
        >>> seen
        ['200 OK']

    .. versionadded:: 0.1.0
    """
    if not isinstance(checker, Checker):
        raise TypeError(f"checker must be a clue.health.Checker, got {checker!r}")

    def health_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _send(method_not_allowed(), method, start_response)
        health, healthy = checker.check()
        return _send(
            health_response(health, healthy, environ.get("HTTP_ACCEPT")), method, start_response
        )

    return health_app


def probes_wsgi(probes: Probes, app: WSGIApplication | None) -> WSGIApplication:
    """See ``Probes.wsgi``."""

    def probes_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        route = probes.route(environ.get("PATH_INFO", "") or "/")
        if route is None:
            if app is not None:
                return app(environ, start_response)
            return _send(not_found(), environ.get("REQUEST_METHOD", "GET"), start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _send(method_not_allowed(), method, start_response)
        query = Query.parse(environ.get("QUERY_STRING", ""))
        health = probes.checker.check()[0] if probes.needs_check(route, query) else None
        response = probes.respond(route, query, environ.get("HTTP_ACCEPT"), health)
        return _send(response, method, start_response)

    return probes_app


def _send(response: Response, method: str, start_response: StartResponse) -> list[bytes]:
    start_response(status_line(response.status), list(response.headers))
    return [response.head(method)]
