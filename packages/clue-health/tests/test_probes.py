"""Liveness and readiness probes, the shutdown flip and the SIGTERM hook."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clue.health import Checker, Health, Probes
from clue.health._respond import Query, readyz_response


def test_livez_never_calls_a_dependency(serve_wsgi, pingers):
    """/livez answers 200 "ok" at once even with a hung dependency, without pinging it."""
    hung = pingers.sync("db", block=True)
    served = serve_wsgi(Probes(Checker(hung, timeout=5)).wsgi())
    t0 = time.monotonic()
    assert served.get("/livez") == (200, served.get("/livez")[1], b"ok")
    assert served.get("/livez?verbose")[2] == b"[+]ping ok\nlivez check passed\n"
    assert time.monotonic() - t0 < 1
    assert hung.calls == 0


def test_readyz_reports_dependencies(serve_wsgi, pingers):
    """/readyz is 200 "ok" when all dependencies are OK, 503 with the list otherwise."""
    db = pingers.sync("db")
    served = serve_wsgi(Probes(Checker(db, pingers.sync("cache"), cache_ttl=0)).wsgi())
    status, headers, body = served.get("/readyz")
    assert (status, body) == (200, b"ok")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    db.error = OSError("down")
    status, _, body = served.get("/readyz")
    assert status == 503
    assert body == (
        b"[-]db failed: reason withheld\n[+]cache ok\n[+]shutdown ok\nreadyz check failed\n"
    )


def test_readyz_verbose_lists_every_check(serve_wsgi, pingers):
    """?verbose lists each check even when all pass, Kubernetes style."""
    served = serve_wsgi(Probes(Checker(pingers.sync("db"))).wsgi())
    status, _, body = served.get("/readyz?verbose")
    assert status == 200
    assert body == b"[+]db ok\n[+]shutdown ok\nreadyz check passed\n"


def test_readyz_exclude_ignores_a_dependency(serve_wsgi, pingers):
    """?exclude=name ignores that dependency's failure; unknown names are warned about."""
    checker = Checker(pingers.sync("db"), pingers.sync("flaky", error=OSError()), cache_ttl=0)
    served = serve_wsgi(Probes(checker).wsgi())
    assert served.get("/readyz")[0] == 503
    assert served.get("/readyz?exclude=flaky")[:3:2] == (200, b"ok")
    status, _, body = served.get("/readyz?exclude=flaky&exclude=nope&verbose=1")
    assert status == 200
    assert body.decode().splitlines() == [
        "[+]db ok",
        "[+]flaky excluded: ok",
        "[+]shutdown ok",
        "warn: some health checks cannot be excluded: no matches for nope",
        "readyz check passed",
    ]


def test_readyz_single_check(serve_wsgi, pingers):
    """/readyz/<name> checks one dependency; an unknown name is 404."""
    checker = Checker(pingers.sync("db"), pingers.sync("cache", error=OSError()), cache_ttl=0)
    served = serve_wsgi(Probes(checker).wsgi())
    assert served.get("/readyz/db")[0::2] == (200, b"ok")
    assert served.get("/readyz/cache")[0] == 503
    assert served.get("/readyz/nope")[0] == 404


def test_shutdown_flips_readiness_but_not_liveness(serve_wsgi, pingers):
    """After shutdown(), /readyz is 503 without pinging while /livez stays 200."""
    db = pingers.sync("db")
    probes = Probes(Checker(db, cache_ttl=0))
    served = serve_wsgi(probes.wsgi())
    assert served.get("/readyz")[0] == 200
    calls = db.calls
    probes.shutdown()
    status, _, body = served.get("/readyz")
    assert status == 503
    assert body == b"[-]shutdown failed: reason withheld\nreadyz check failed\n"
    assert served.get("/livez")[0] == 200
    assert db.calls == calls
    assert not probes.ready


def test_healthz_serves_the_json_report(serve_wsgi, pingers):
    """The probes also serve /healthz with the JSON report."""
    served = serve_wsgi(Probes(Checker(pingers.sync("db"))).wsgi())
    status, _, body = served.get("/healthz")
    assert status == 200
    assert json.loads(body)["status"] == {"db": "OK"}


def test_wsgi_probes_pass_other_paths_to_the_app(serve_wsgi, pingers):
    """As middleware, the probes answer their paths and pass the rest to the app."""

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app:" + environ["PATH_INFO"].encode()]

    probes = Probes(Checker(pingers.sync("db")))
    served = serve_wsgi(probes.wsgi(app))
    assert served.get("/orders")[2] == b"app:/orders"
    assert served.get("/livez")[2] == b"ok"
    alone = serve_wsgi(probes.wsgi())
    assert alone.get("/orders")[0] == 404
    assert alone.get("/readyz", method="POST")[0] == 405


def test_custom_and_disabled_paths(serve_wsgi, pingers):
    """Paths are configurable, and None turns one off."""
    probes = Probes(Checker(pingers.sync("db")), livez="/alive", healthz=None)
    served = serve_wsgi(probes.wsgi())
    assert served.get("/alive")[0] == 200
    assert served.get("/livez")[0] == 404
    assert served.get("/healthz")[0] == 404
    with pytest.raises(ValueError, match="readyz"):
        Probes(Checker(), readyz="ready")
    with pytest.raises(TypeError, match="Checker"):
        Probes(object())  # type: ignore[arg-type]


async def test_asgi_probes(asgi, pingers):
    """The ASGI probes answer the same way, honour root_path and pass the rest on."""
    seen = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    db = pingers.aio("db")
    probes = Probes(Checker(db, cache_ttl=0))
    wrapped = probes.asgi(app)
    assert (await asgi(wrapped, "/livez")).body == b"ok"
    assert (await asgi(wrapped, "/readyz", query="verbose")).body.startswith(b"[+]db ok\n")
    assert (await asgi(wrapped, "/readyz", root_path="/ops")).status == 200
    assert (await asgi(wrapped, "/orders")).status == 204
    assert seen == ["/orders"]
    assert (await asgi(probes.asgi(), "/orders")).status == 404
    probes.shutdown()
    assert (await asgi(wrapped, "/readyz")).status == 503
    assert (await asgi(wrapped, "/livez")).status == 200


async def test_asgi_lifespan_shutdown_turns_readiness_off():
    """Served alone, the ASGI probes turn readiness off on lifespan shutdown."""
    probes = Probes(Checker())
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent = []

    async def receive():  # type: ignore[no-untyped-def]
        return next(messages)

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message["type"])

    await probes.asgi()({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not probes.ready


@given(
    names=st.lists(st.text(min_size=1, max_size=15), max_size=5, unique=True),
    failing=st.sets(st.integers(0, 4)),
)
def test_verbose_output_is_one_line_per_check(names, failing):
    """Any dependency name gives exactly one line per check (no forged lines)."""
    status = {n: "NOT OK" if i in failing else "OK" for i, n in enumerate(names)}
    body = readyz_response(Health(0, "", status), True, Query(True, frozenset())).body
    lines = body.decode().split("\n")
    assert lines[-1] == ""
    assert len(lines[:-1]) == len(names) + 2
    assert lines[-2] in ("readyz check passed", "readyz check failed")


def test_sigterm_hook_flips_readiness_then_chains(pingers):
    """On SIGTERM the hook turns readiness off and then calls the previous handler."""
    called = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: called.append(signum))
    try:
        probes = Probes(Checker(pingers.sync("db")))
        probes.install_sigterm_hook()
        signal.raise_signal(signal.SIGTERM)
        assert not probes.ready
        assert called == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_hook_rejects_bad_grace():
    """A negative or non-finite grace fails at configuration time."""
    with pytest.raises(ValueError, match="grace"):
        Probes(Checker()).install_sigterm_hook(grace=-1)


_SERVER = textwrap.dedent(
    """
    import sys, threading
    from wsgiref.simple_server import make_server, WSGIServer, WSGIRequestHandler
    from socketserver import ThreadingMixIn
    from clue.health import Checker, Probes

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    probes = Probes(Checker())
    probes.install_sigterm_hook(grace=float(sys.argv[1]))
    server = make_server("127.0.0.1", 0, probes.wsgi(), server_class=Server, handler_class=Quiet)
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.05)
    """
)


def test_sigterm_in_a_real_server_process(tmp_path, poll):
    """A served process on SIGTERM: readyz 503 and livez 200 during grace, then it exits."""
    import http.client

    script = tmp_path / "server.py"
    script.write_text(_SERVER)
    proc = subprocess.Popen([sys.executable, str(script), "0.6"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())

        def get(path: str) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", path)
                return conn.getresponse().status
            finally:
                conn.close()

        assert get("/readyz") == 200
        proc.send_signal(signal.SIGTERM)
        poll(lambda: get("/readyz") == 503)
        assert get("/livez") == 200
        assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
