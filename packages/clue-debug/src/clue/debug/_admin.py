"""``serve_admin``: the debug and profiling endpoints on a loopback-only admin port."""

from __future__ import annotations

import contextlib
import ipaddress
import socketserver
import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog

from clue.debug._enabler import mount_debug_log_enabler
from clue.debug._http import AuthHook
from clue.debug._mux import Mux
from clue.debug._profiling import mount_pprof_handlers
from clue.debug._switch import DebugLogSwitch

__all__ = ["AdminServer", "serve_admin"]


class AdminServer:
    """A running admin listener (see ``serve_admin``); ``close()`` stops it.

    Attributes:
        host: the bound address.
        port: the bound port (the real one when 0 was asked for).
        url: ``http://host:port``.
        mux: the ``Mux`` it serves; more endpoints can be mounted on it.

    .. versionadded:: 0.1.0
    """

    def __init__(self, server: WSGIServer, mux: Mux, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.mux = mux
        self.host: str = str(server.server_address[0])
        self.port: int = int(server.server_address[1])
        bracketed = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{bracketed}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> AdminServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_admin(
    port: int = 6060,
    *,
    host: str = "127.0.0.1",
    auth: AuthHook | None = None,
    switch: DebugLogSwitch | None = None,
    allow_non_loopback: bool = False,
    allowed_hosts: Iterable[str] | None = None,
) -> AdminServer:
    """Serve the debug switch and pprof endpoints on a loopback-only admin port.

    One line keeps profiling off the public listener::

        debug.serve_admin(port=6060)   # http://127.0.0.1:6060/debug, /debug/pprof/

    The server (``wsgiref``, one thread per request) runs in a daemon thread, so a CPU
    profile never blocks the service's own workers, and a second concurrent profile is
    refused at once. Binding anything but a loopback address needs
    ``allow_non_loopback=True`` (then put ``auth`` in front).

    Args:
        port: the TCP port; 0 picks a free one (read it from ``.port``).
        host: the address to bind; loopback only unless ``allow_non_loopback``.
        auth: a hook consulted by every endpoint.
        switch: the debug switch to drive; the process-wide one by default.
        allow_non_loopback: allow binding a non-loopback address.
        allowed_hosts: names besides IP addresses and ``localhost`` that requests may
            carry in ``Host`` (any other name answers 403: DNS rebinding).

    Returns:
        The running ``AdminServer``.

    Raises:
        ValueError: ``host`` is not loopback (without ``allow_non_loopback``), ``port``
            is out of range, or an ``allowed_hosts`` entry is not a host name.
        OSError: the port cannot be bound.

    Example:
        >>> from clue import debug
        >>> admin = debug.serve_admin(port=0)
        >>> admin.url.startswith("http://127.0.0.1:")
        True
        >>> admin.close()

    .. versionadded:: 0.1.0
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        msg = f"port must be an int in [0, 65535], got {port!r}"
        raise ValueError(msg)
    if not allow_non_loopback and not _is_loopback(host):
        msg = (
            f"host {host!r} is not a loopback address; profiling endpoints must not be "
            "reachable by accident (pass allow_non_loopback=True and an auth hook to override)"
        )
        raise ValueError(msg)
    mux = Mux(auth=auth, allowed_hosts=allowed_hosts)
    mount_debug_log_enabler(mux, switch=switch)
    mount_pprof_handlers(mux)
    server_class = _ThreadingWSGIServer6 if ":" in host else _ThreadingWSGIServer
    server = make_server(host, port, mux, server_class=server_class, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="clue-debug-admin"
    )
    thread.daemon = True
    thread.start()
    admin = AdminServer(server, mux, thread)
    with contextlib.suppress(Exception):
        structlog.get_logger("clue.debug").info("debug admin listening", url=admin.url)
    return admin


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingWSGIServer6(_ThreadingWSGIServer):
    import socket as _socket

    address_family = _socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """wsgiref's handler without its per-request lines on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
