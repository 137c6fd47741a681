"""Mux over WSGI and ASGI, adapt() for Flask and Starlette, serve_admin."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import flask
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from clue import debug
from clue.debug import _profiling


def _mount_all(mux) -> None:
    debug.mount_debug_log_enabler(mux)
    debug.mount_pprof_handlers(mux, max_seconds=2)


def test_flask_adapter(wsgi_server, http) -> None:
    """adapt(flask_app) mounts the switch and pprof next to the app's own routes."""
    app = flask.Flask("svc")

    @app.get("/hello")
    def hello() -> str:
        return "hi"

    _mount_all(debug.adapt(app))
    url = wsgi_server(app)
    assert http(url + "/hello").body == b"hi"
    reply = http(url + "/debug?debug-logs=on")
    assert reply.body == b'{"debug-logs":"on"}'
    assert reply.headers["Content-Type"] == "application/json"
    assert debug.default_switch.enabled()
    assert http(url + "/debug/pprof/").status == 200
    assert http(url + "/debug?debug-logs=x").status == 400
    assert http(url + "/debug", headers={"Sec-Fetch-Site": "cross-site"}).status == 403


def test_mount_accepts_the_app_directly(wsgi_server, http) -> None:
    """Passing a Flask app as mux adapts it implicitly."""
    app = flask.Flask("svc2")
    debug.mount_debug_log_enabler(app)
    assert http(wsgi_server(app) + "/debug").body == b'{"debug-logs":"off"}'


def test_starlette_adapter(asgi_server, http, busy_thread) -> None:
    """adapt(starlette_app) serves the endpoints under uvicorn, profile off the event loop."""

    async def hello(request):
        return PlainTextResponse("hi")

    app = Starlette(routes=[Route("/hello", hello)])
    _mount_all(debug.adapt(app))
    url = asgi_server(app)
    with ThreadPoolExecutor(2) as pool:
        profile = pool.submit(http, url + "/debug/pprof/profile?seconds=0.5&format=collapsed")
        # The event loop keeps serving while the profile runs.
        assert http(url + "/hello").body == b"hi"
        assert b"clue_busy_spin" in profile.result(30).body
    assert http(url + "/debug?debug-logs=on").body == b'{"debug-logs":"on"}'
    assert debug.default_switch.enabled()


def test_fastapi_adapter(asgi_server, http) -> None:
    """adapt(fastapi_app) serves the endpoints, which stay out of the OpenAPI schema."""
    import fastapi

    app = fastapi.FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hi": "there"}

    _mount_all(debug.adapt(app))
    url = asgi_server(app)
    assert http(url + "/hello").json() == {"hi": "there"}
    assert http(url + "/debug?debug-logs=on").body == b'{"debug-logs":"on"}'
    assert http(url + "/debug/pprof/cmdline").status == 200
    assert "/debug" not in http(url + "/openapi.json").json()["paths"]


def test_mux_as_asgi_app(asgi_server, http, poll) -> None:
    """Mux is an ASGI app too: lifespan works, profiles are refused concurrently with 429."""
    mux = debug.Mux()
    _mount_all(mux)
    url = asgi_server(mux)
    assert http(url + "/debug").body == b'{"debug-logs":"off"}'
    assert http(url + "/nope").status == 404
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(http, url + "/debug/pprof/profile?seconds=2")
        poll(_profiling._PROFILE_LOCK.locked)  # the first profile runs (either sampler)
        assert http(url + "/debug/pprof/profile?seconds=0.01").status == 429
        assert first.result(30).status == 200


def test_mux_auth_guards_every_route(wsgi_server, http) -> None:
    """A Mux-level auth hook is consulted for every route."""
    mux = debug.Mux(auth=lambda request: request.headers.get("x-token") == "t")
    _mount_all(mux)
    url = wsgi_server(mux)
    assert http(url + "/debug/pprof/cmdline").status == 403
    assert http(url + "/debug/pprof/cmdline", headers={"X-Token": "t"}).status == 200


def test_unsupported_app_and_bad_paths_raise() -> None:
    """adapt() refuses unknown objects with TypeError; Mux refuses relative paths."""
    with pytest.raises(TypeError, match="unsupported app"):
        debug.adapt(object())
    with pytest.raises(ValueError, match="path"):
        debug.Mux().handle("debug", lambda r: debug.Response(200))


def test_serve_admin_is_loopback_only(http, busy_thread) -> None:
    """serve_admin binds loopback, serves switch and pprof, and closes cleanly."""
    with debug.serve_admin(port=0) as admin:
        assert admin.host == "127.0.0.1"
        assert http(admin.url + "/debug?debug-logs=on").status == 200
        assert debug.default_switch.enabled()
        body = http(admin.url + "/debug/pprof/profile?seconds=0.2&format=collapsed").body
        assert b"clue_busy_spin" in body
    assert not any(t.name == "clue-debug-admin" for t in threading.enumerate())


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.com", "::"])
def test_serve_admin_refuses_non_loopback_hosts(host: str) -> None:
    """A non-loopback host is refused with ValueError before anything is bound."""
    with pytest.raises(ValueError, match="loopback"):
        debug.serve_admin(port=0, host=host)


def test_serve_admin_validates_port() -> None:
    """An out-of-range port raises ValueError."""
    with pytest.raises(ValueError, match="port"):
        debug.serve_admin(port=70000)


def test_serve_admin_with_auth(http) -> None:
    """serve_admin's auth hook guards every endpoint."""
    with debug.serve_admin(port=0, auth=lambda r: r.headers.get("x-token") == "t") as admin:
        assert http(admin.url + "/debug").status == 403
        assert http(admin.url + "/debug", headers={"X-Token": "t"}).status == 200


@pytest.mark.parametrize("kind", ["mux", "flask", "starlette"])
@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE", "PATCH"])
def test_only_get_head_and_post_reach_the_endpoints(kind, method, wsgi_server, asgi_server, http):
    """Any other method answers 405 on every muxer, OPTIONS included, whatever the Host."""
    if kind == "mux":
        mux = debug.Mux()
        _mount_all(mux)
        url = wsgi_server(mux)
    elif kind == "flask":
        app = flask.Flask("svc-methods")
        _mount_all(debug.adapt(app))
        url = wsgi_server(app)
    else:
        starlette_app = Starlette()
        _mount_all(debug.adapt(starlette_app))
        url = asgi_server(starlette_app)
    for path in ("/debug?debug-logs=on", "/debug/pprof/", "/debug/pprof/cmdline"):
        for host in ("localhost", "evil.example"):
            reply = http(url + path, method=method, headers={"Host": host})
            assert reply.status in {403, 405}, (path, host, reply.status)
            if host == "localhost":
                assert reply.status == 405, (path, reply.status)
    assert not debug.default_switch.enabled()
