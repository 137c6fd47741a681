"""A service run as a real process by the end-to-end tests: ``e2e_server.py asgi|wsgi``.

It binds 127.0.0.1 on a free port, prints ``PORT <n>`` as its first line, then serves
until SIGTERM, writing clue.log's JSON lines to stdout.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from typing import Any

from clue import log


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    log.info("handling", path=scope["path"])
    if scope["path"] == "/fail":
        raise RuntimeError("e2e failure")
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    log.info("handling", path=environ["PATH_INFO"])
    if environ["PATH_INFO"] == "/fail":
        raise RuntimeError("e2e failure")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    log.configure(output=sys.stdout, format=log.format_json)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print("PORT", sock.getsockname()[1], flush=True)
    if sys.argv[1] == "asgi":
        import uvicorn

        app = log.ASGIMiddleware(asgi_app, request_log_func=log.info)
        uvicorn.Server(uvicorn.Config(app, log_level="critical")).run(sockets=[sock])
    else:
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = WSGIServer(("127.0.0.1", 0), Quiet, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.server_bind = lambda: None  # type: ignore[method-assign]
        server.server_name, server.server_port = "127.0.0.1", sock.getsockname()[1]
        server.setup_environ()
        server.set_app(log.WSGIMiddleware(wsgi_app, request_log_func=log.info))
        # Stop between requests: a SystemExit raised inside a request (the server may still
        # be closing the last response) would be swallowed by wsgiref's error handling.
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
