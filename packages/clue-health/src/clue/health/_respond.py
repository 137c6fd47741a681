"""What the health endpoints answer, independent of WSGI or ASGI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs

from clue.health._accept import JSON, TEXT_XML, XML, negotiate
from clue.health._health import Health
from clue.health._render import check_lines, statuses, text_safe, to_json, to_xml

REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}
# Health answers are about now: no cache on the way may keep one.
_NO_CACHE = (
    ("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
)
_TEXT = "text/plain; charset=utf-8"
_CONTENT_TYPES = {
    JSON: "application/json",
    XML: "application/xml; charset=utf-8",
    TEXT_XML: "text/xml; charset=utf-8",
}
#: Name of the synthetic readiness check that fails once shutdown has begun.
SHUTDOWN_CHECK = "shutdown"


@dataclass(frozen=True, slots=True)
class Response:
    """Status, headers and body of one answer."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def head(self, method: str) -> bytes:
        """The body to send: none for ``HEAD``."""
        return b"" if method == "HEAD" else self.body


@dataclass(frozen=True, slots=True)
class Query:
    """The probe options read from a query string."""

    verbose: bool
    exclude: frozenset[str]

    @classmethod
    def parse(cls, query: str) -> Query:
        """Read ``?verbose`` and ``?exclude=name`` (repeatable) from a raw query string."""
        try:
            params = parse_qs(query[:4096], keep_blank_values=True, max_num_fields=64)
        except ValueError:  # too many fields: read nothing rather than fail the probe
            params = {}
        return cls(verbose="verbose" in params, exclude=frozenset(params.get("exclude", ())))


def health_response(health: Health, healthy: bool, accept: str | None) -> Response:
    """The JSON (default) or XML report; 200 when healthy, 503 otherwise."""
    kind = negotiate(accept)
    body = to_json(health) if kind == JSON else to_xml(health)
    return _response(200 if healthy else 503, _CONTENT_TYPES[kind], body, vary=True)


def livez_response(query: Query) -> Response:
    """Liveness: the process answers, so it is alive; no dependency is called."""
    body = "[+]ping ok\nlivez check passed\n" if query.verbose else "ok"
    return _response(200, _TEXT, body.encode())


def readyz_response(health: Health | None, ready: bool, query: Query) -> Response:
    """Readiness in Kubernetes' form; ``health`` is None when dependencies were not checked.

    Fails with 503 when shutdown has begun or a dependency that is not excluded is
    NOT OK. On failure, or with ``?verbose``, the body lists every check.
    """
    checks: list[tuple[str, bool | None]] = []
    matched: set[str] = set()
    for name, ok in [*(statuses(health) if health else []), (SHUTDOWN_CHECK, ready)]:
        if name in query.exclude:
            matched.add(name)
            checks.append((name, None))
        else:
            checks.append((name, ok))
    failed = any(ok is False for _, ok in checks)
    if not failed and not query.verbose:
        return _response(200, _TEXT, b"ok")
    lines = check_lines(checks)
    unmatched = sorted(query.exclude - matched) if health is not None else []
    if unmatched:
        names = ", ".join(text_safe(n) for n in unmatched)
        lines.append(f"warn: some health checks cannot be excluded: no matches for {names}")
    lines.append("readyz check failed" if failed else "readyz check passed")
    return _response(503 if failed else 200, _TEXT, ("\n".join(lines) + "\n").encode())


def single_check_response(health: Health, name: str) -> Response:
    """``/readyz/<name>``: one dependency's status (404 for an unknown name)."""
    status = health.status.get(name)
    if status is None:
        return not_found()
    ok = status == "OK"
    return _response(200 if ok else 503, _TEXT, b"ok" if ok else b"failed: reason withheld\n")


def method_not_allowed() -> Response:
    """405 for anything but GET and HEAD."""
    return Response(405, (("Allow", "GET, HEAD"), *_text_headers(0)), b"")


def not_found() -> Response:
    """404 for paths the probes do not serve."""
    return _response(404, _TEXT, b"not found\n")


def _response(status: int, content_type: str, body: bytes, *, vary: bool = False) -> Response:
    headers: list[tuple[str, str]] = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"),
        *_NO_CACHE,
    ]
    if vary:
        headers.append(("Vary", "Accept"))
    return Response(status, tuple(headers), body)


def _text_headers(length: int) -> Sequence[tuple[str, str]]:
    return (("Content-Type", _TEXT), ("Content-Length", str(length)), *_NO_CACHE)


def status_line(status: int) -> str:
    """``"200 OK"`` for WSGI's ``start_response``."""
    return f"{status} {REASONS.get(status, '')}".rstrip()
