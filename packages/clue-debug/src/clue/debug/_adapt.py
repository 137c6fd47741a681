"""``adapt(app)``: register debug endpoints on a Flask or Starlette/FastAPI app."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clue.debug._guard import HostPolicy, host_refused
from clue.debug._http import Handler, Request, Response, Router

__all__ = ["adapt", "as_router"]

_METHODS = ["GET", "HEAD", "POST"]


def adapt(app: object, *, allowed_hosts: Iterable[str] | None = None) -> Router:
    """A ``Router`` that mounts debug endpoints as routes of ``app``.

    Supports Flask apps (and blueprints) and Starlette apps (FastAPI included). The
    frameworks are imported only here, only when such an app is passed. The endpoints
    mounted through it answer only requests whose ``Host`` is an IP address,
    ``localhost`` or a name in ``allowed_hosts`` (DNS rebinding); the app's other routes
    are not affected.

    Args:
        app: a ``flask.Flask`` or ``starlette.applications.Starlette`` (or a FastAPI app).
        allowed_hosts: more names the debug endpoints answer to (``"name"``,
            ``".name"`` for a domain and its subdomains, ``"*"`` for any).

    Returns:
        A router for ``mount_debug_log_enabler`` and ``mount_pprof_handlers``.

    Raises:
        TypeError: ``app`` is of no supported framework.
        ValueError: an ``allowed_hosts`` entry is not a host name.

    Example:
        >>> import flask
        >>> from clue import debug
        >>> app = flask.Flask("svc")
        >>> debug.mount_debug_log_enabler(debug.adapt(app))

    .. versionadded:: 0.1.0
    """
    policy = HostPolicy(allowed_hosts)
    if isinstance(app, Router):
        if not hasattr(app, "host_policy"):
            return _HostChecked(app, policy)
        if allowed_hosts is not None:
            msg = (
                "allowed_hosts: this router checks Host already; "
                "pass allowed_hosts where it is created (Mux(allowed_hosts=...))"
            )
            raise ValueError(msg)
        return app
    module = type(app).__module__.split(".")[0]
    if module == "flask" or hasattr(app, "add_url_rule"):
        return _FlaskRouter(app, policy)
    router = getattr(app, "router", app)
    if hasattr(router, "add_route"):
        return _StarletteRouter(router, policy)
    msg = (
        f"adapt: unsupported app {type(app).__qualname__!r}; pass a Flask or Starlette/FastAPI "
        "app, a clue.debug.Mux, or any object with handle(path, handler)"
    )
    raise TypeError(msg)


def as_router(mux: object) -> Router:
    """A router that checks ``Host``.

    ``mux`` when it does (``Mux``, ``adapt``), else ``adapt(mux)`` (a plain ``Router`` gets the
    default host policy).
    """
    if isinstance(mux, Router) and hasattr(mux, "host_policy"):
        return mux
    return adapt(mux)


def _host_checked(handler: Handler, policy: HostPolicy) -> Handler:
    def checked(request: Request) -> Response:
        if not policy.allows(request.headers.get("host")):
            return host_refused()
        return handler(request)

    return checked


class _HostChecked:
    """A user's ``Router`` whose handlers check ``Host`` first."""

    def __init__(self, router: Router, policy: HostPolicy) -> None:
        self._router = router
        self.host_policy = policy

    def handle(self, path: str, handler: Handler) -> None:
        self._router.handle(path, _host_checked(handler, self.host_policy))


class _FlaskRouter:
    def __init__(self, app: Any, policy: HostPolicy) -> None:
        self._app = app
        self.host_policy = policy

    def handle(self, path: str, handler: Handler) -> None:
        import flask

        handler = _host_checked(handler, self.host_policy)

        def view() -> Any:
            req = flask.request
            request = Request(
                method=req.method,
                path=req.path,
                query={k: req.args.get(k, "") for k in req.args},
                headers={k.lower(): v for k, v in req.headers.items()},
                client=req.remote_addr,
            )
            response = handler(request)
            return flask.Response(
                response.body,
                status=response.status,
                headers=[h for h in response.header_list() if h[0] != "Content-Length"],
            )

        # Flask would answer OPTIONS itself, before the Host check: 405 like the others.
        self._app.add_url_rule(
            path,
            endpoint=f"clue_debug:{path}",
            view_func=view,
            methods=_METHODS,
            provide_automatic_options=False,
        )


class _StarletteRouter:
    def __init__(self, router: Any, policy: HostPolicy) -> None:
        self._router = router
        self.host_policy = policy

    def handle(self, path: str, handler: Handler) -> None:
        handler = _host_checked(handler, self.host_policy)
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request as StarletteRequest
        from starlette.responses import Response as StarletteResponse

        async def endpoint(req: StarletteRequest) -> StarletteResponse:
            request = Request(
                method=req.method,
                # Not req.url: building it parses Host, which the attacker controls.
                path=req.scope.get("root_path", "") + req.scope["path"],
                query=dict(req.query_params),
                headers={k.lower(): v for k, v in req.headers.items()},
                client=req.client.host if req.client else None,
            )
            # Handlers block (a profile lasts seconds): run them off the event loop.
            response: Response = await run_in_threadpool(handler, request)
            return StarletteResponse(
                response.body,
                status_code=response.status,
                headers={k: v for k, v in response.header_list() if k != "Content-Length"},
            )

        self._router.add_route(
            path, endpoint, methods=_METHODS, name=f"clue_debug:{path}", include_in_schema=False
        )
