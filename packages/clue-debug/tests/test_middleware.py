"""ASGIMiddleware and WSGIMiddleware apply the switch per request."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from clue import debug
from clue.debug import _control


def _asgi_app(control, gate: threading.Event | None = None, entered: threading.Event | None = None):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if gate is not None and scope["path"] == "/slow":
            import asyncio

            assert entered is not None
            entered.set()
            await asyncio.to_thread(gate.wait, 10)
        body = json.dumps({"debug": control.debug_enabled()}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def _wsgi_app(control):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])

        def body():
            # Streaming: the check runs while the server iterates the response.
            yield b'{"debug":'
            yield json.dumps(control.debug_enabled()).encode()
            yield b"}"

        return body()

    return app


def test_asgi_requests_get_debug_while_the_switch_is_on(asgi_server, http, control) -> None:
    """Under uvicorn, requests see debug on exactly while the switch is on."""
    url = asgi_server(debug.ASGIMiddleware(_asgi_app(control)))
    assert http(url + "/").json() == {"debug": False}
    debug.default_switch.turn_on()
    assert http(url + "/").json() == {"debug": True}
    debug.default_switch.turn_off()
    assert http(url + "/").json() == {"debug": False}
    assert control.scopes_entered == 1


def test_asgi_request_started_while_off_stays_off(asgi_server, http, control) -> None:
    """Turning the switch on mid-request does not change a request already running."""
    gate, entered = threading.Event(), threading.Event()
    url = asgi_server(debug.ASGIMiddleware(_asgi_app(control, gate, entered)))
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(http, url + "/slow")
        assert entered.wait(10)
        debug.default_switch.turn_on()
        gate.set()
        assert slow.result(10).json() == {"debug": False}
    assert http(url + "/").json() == {"debug": True}


def test_asgi_trigger_header_is_per_request(asgi_server, http, control) -> None:
    """The trigger header turns debug on for that request only, with the right value only."""
    app = debug.ASGIMiddleware(
        _asgi_app(control), trigger_header="X-Clue-Debug", trigger_value="tok3n"
    )
    url = asgi_server(app)
    with ThreadPoolExecutor(8) as pool:
        with_header = [pool.submit(http, url + "/", {"X-Clue-Debug": "tok3n"}) for _ in range(10)]
        without = [pool.submit(http, url + "/") for _ in range(10)]
        wrong = [pool.submit(http, url + "/", {"X-Clue-Debug": "nope"}) for _ in range(5)]
        assert all(f.result().json() == {"debug": True} for f in with_header)
        assert all(f.result().json() == {"debug": False} for f in without + wrong)


async def test_asgi_lifespan_passes_through(control) -> None:
    """Lifespan scopes reach the app untouched and never open a debug scope."""
    debug.default_switch.turn_on()
    sent = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message["type"])

    await debug.ASGIMiddleware(_asgi_app(control))({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert control.scopes_entered == 0


def test_wsgi_streaming_body_runs_with_debug(wsgi_server, http, control) -> None:
    """Under wsgiref, the response body is produced inside the debug scope."""
    url = wsgi_server(debug.WSGIMiddleware(_wsgi_app(control), trigger_header="x-debug"))
    assert http(url + "/").json() == {"debug": False}
    assert http(url + "/", {"X-Debug": "on"}).json() == {"debug": True}
    debug.default_switch.turn_on()
    assert http(url + "/").json() == {"debug": True}
    assert control.scopes_entered == 2


def test_wsgi_app_exception_propagates_and_closes_the_scope(control) -> None:
    """An exception from the app propagates unchanged and the scope is closed."""

    def failing(environ, start_response):
        assert control.debug_enabled()
        raise LookupError("app failure")

    debug.default_switch.turn_on()
    with pytest.raises(LookupError):
        debug.WSGIMiddleware(failing)({"REQUEST_METHOD": "GET"}, lambda *a: None)
    assert not control.debug_enabled()


def test_broken_log_control_never_breaks_requests(wsgi_server, http) -> None:
    """A log control that raises leaves requests served normally."""

    class Broken:
        def debug_enabled(self):
            raise RuntimeError("no")

        def debug_scope(self):
            raise RuntimeError("no")

    debug.set_log_control(Broken())

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"ok"]

    url = wsgi_server(debug.WSGIMiddleware(app))
    debug.default_switch.turn_on()
    reply = http(url + "/")
    assert (reply.status, reply.body) == (200, b"ok")
    assert _control.debug_enabled_safely() is False


def test_bad_trigger_options_raise() -> None:
    """An empty trigger header name fails at construction with ValueError."""
    with pytest.raises(ValueError, match="trigger_header"):
        debug.ASGIMiddleware(_asgi_app(None), trigger_header=" ")
    with pytest.raises(ValueError, match="trigger_value"):
        debug.WSGIMiddleware(_wsgi_app(None), trigger_header="x", trigger_value="")
