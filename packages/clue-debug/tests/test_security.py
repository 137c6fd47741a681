"""Debug endpoints refuse what a browser can be tricked into, on every front end.

The attacker controls ``Host`` (DNS rebinding), ``Origin``, ``Referer`` and the page's
``Sec-Fetch-*`` context. Each example is labelled when it is generated, and a small
reference predicate says from the labels alone whether the request may be answered.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import flask
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from clue import debug

ALLOWED = "debug.internal"  # configured on every front end below
SWITCH = debug.DebugLogSwitch()


@pytest.fixture(autouse=True)
def _switch_off() -> Iterator[None]:
    yield
    SWITCH.turn_off()


# ---- labelled header values -------------------------------------------------------------

ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
foreign_names = st.one_of(
    st.sampled_from(
        [
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "debug.internal.evil.example",
            "xlocalhost",
            "notdebug.internal",
            "0x7f.1",
        ]
    ),
    st.from_regex(r"[a-z][a-z0-9-]{0,12}\.(com|example|net|io)", fullmatch=True),
)


def _cases(name: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(name, st.booleans()).map(lambda t: t[0].upper() if t[1] else t[0])


hosts = st.one_of(
    st.tuples(st.just("absent"), st.none()),
    st.tuples(
        st.just("served"),
        st.one_of(
            st.tuples(
                _cases(st.sampled_from(["localhost", "app.localhost", "localhost.", ALLOWED])),
                ports,
            ).map("".join),
            st.tuples(st.ip_addresses(v=4).map(str), ports).map("".join),
            st.tuples(st.ip_addresses(v=6).map(lambda a: f"[{a}]"), ports).map("".join),
        ),
    ),
    st.tuples(st.just("foreign"), st.tuples(_cases(foreign_names), ports).map("".join)),
    st.tuples(
        st.just("junk"),
        st.tuples(
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=12),
            st.sampled_from([" ", "/", "@", ",", "\\", "?", "#", "é"]),
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=12),
        ).map("".join),
    ),
)
sites = st.one_of(
    st.none(),
    st.sampled_from(["same-origin", "none", "Same-Origin", "same-site", "cross-site"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
)
url_kinds = st.sampled_from(["absent", "same", "foreign", "null", "junk"])


@dataclass(frozen=True)
class Attack:
    host_kind: str
    host: str | None
    site: str | None
    origin_kind: str
    referer_kind: str
    scheme: str
    agent: str | None = None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.host is not None:
            headers["host"] = self.host
        if self.agent is not None:
            headers["user-agent"] = self.agent
        if self.site is not None:
            headers["sec-fetch-site"] = self.site
        origin = self._url(self.origin_kind, "")
        if origin is not None:
            headers["origin"] = origin
        referer = self._url(self.referer_kind, "/page?x=1")
        if referer is not None:
            headers["referer"] = referer
        return headers

    def _url(self, kind: str, path: str) -> str | None:
        if kind == "absent":
            return None
        if kind == "same" and self.host is not None:
            return f"{self.scheme}://{self.host}{path}"
        if kind == "null":
            return "null"
        if kind == "junk":
            return "not a url"
        return f"{self.scheme}://evil.example{path}"  # foreign (or "same" with no Host)


BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
agents = st.sampled_from([None, BROWSER, "curl/8.5.0", "Go-http-client/1.1"])

attacks = st.builds(
    lambda h, site, o, r, scheme, agent: Attack(h[0], h[1], site, o, r, scheme, agent),
    hosts,
    sites,
    url_kinds,
    url_kinds,
    st.sampled_from(["http", "https"]),
    agents,
)


def answered(attack: Attack) -> bool:
    """The reference: may a request with these headers be answered?"""
    host_ok = attack.host_kind in {"absent", "served"}
    site_ok = attack.site is None or attack.site.strip().lower() in {"same-origin", "none"}
    has_host = attack.host is not None
    origin_ok = attack.origin_kind == "absent" or (attack.origin_kind == "same" and has_host)
    referer_ok = attack.referer_kind == "absent" or (attack.referer_kind == "same" and has_host)
    # A browser sends Fetch Metadata only to https and loopback URLs: without it, it must
    # show the page it comes from (an <img referrerpolicy=no-referrer> shows none).
    shown = "same" in {attack.origin_kind, attack.referer_kind}
    browser_ok = attack.agent != BROWSER or attack.site is not None or shown
    return host_ok and site_ok and origin_ok and referer_ok and browser_ok


# ---- every debug endpoint, with a request that proves it was reached ----------------------

# (path, query, status when reached); the queries are cheap: a reached profile or
# allocation endpoint answers 400 on a bad parameter before doing any work.
ENDPOINTS = [
    ("/debug", "debug-logs=on", 200),
    ("/debug/pprof/", "", 200),
    ("/debug/pprof", "", 200),
    ("/debug/pprof/profile", "seconds=x", 400),
    ("/debug/pprof/heap", "frames=0", 400),
    ("/debug/pprof/allocs", "seconds=x", 400),
    ("/debug/pprof/goroutine", "", 200),
    ("/debug/pprof/threads", "", 200),
    ("/debug/pprof/cmdline", "", 200),
]


def _mount(router: Any) -> None:
    debug.mount_debug_log_enabler(router, switch=SWITCH)
    debug.mount_pprof_handlers(router, max_seconds=5)


def _wsgi_call(app: Any, path: str, query: str, headers: dict[str, str]) -> int:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "6060",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": __import__("io").BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status: list[str] = []
    body = app(environ, lambda s, h, exc_info=None: status.append(s))
    b"".join(body)
    getattr(body, "close", lambda: None)()
    return int(status[0].split()[0])


def _asgi_call(app: Any, path: str, query: str, headers: dict[str, str]) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 6060),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


def _mux() -> debug.Mux:
    mux = debug.Mux(allowed_hosts=[ALLOWED])
    _mount(mux)
    return mux


def _flask() -> flask.Flask:
    app = flask.Flask("svc")
    _mount(debug.adapt(app, allowed_hosts=[ALLOWED]))
    return app


def _starlette() -> Starlette:
    app = Starlette()
    _mount(debug.adapt(app, allowed_hosts=[ALLOWED]))
    return app


Call = Callable[[str, str, dict[str, str]], int]


def _over_wsgi(app: Any) -> Call:
    return lambda path, query, headers: _wsgi_call(app, path, query, headers)


def _over_asgi(app: Any) -> Call:
    return lambda path, query, headers: _asgi_call(app, path, query, headers)


FRONT_ENDS: dict[str, Callable[[], Call]] = {
    "mux-wsgi": lambda: _over_wsgi(_mux()),
    "mux-asgi": lambda: _over_asgi(_mux()),
    "flask-adapt-wsgi": lambda: _over_wsgi(_flask()),
    "starlette-adapt-asgi": lambda: _over_asgi(_starlette()),
}


@pytest.fixture(scope="module", params=sorted(FRONT_ENDS))
def front_end(request: pytest.FixtureRequest) -> Call:
    return FRONT_ENDS[request.param]()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(attack=attacks, endpoint=st.sampled_from(ENDPOINTS))
def test_only_requests_the_reference_allows_are_answered(
    front_end: Call,
    attack: Attack,
    endpoint: tuple[str, str, int],
) -> None:
    """Every endpoint answers exactly the requests the reference predicate allows; the
    others are 403 and change nothing."""
    path, query, reached = endpoint
    SWITCH.turn_off()
    status = front_end(path, query, attack.headers())
    if answered(attack):
        assert status == reached, attack
        assert SWITCH.enabled() == (path == "/debug"), attack
    else:
        assert status == 403, attack
        assert not SWITCH.enabled(), attack
    SWITCH.turn_off()


@settings(max_examples=100, deadline=None)
@given(attack=attacks)
def test_a_plain_router_gets_the_default_host_policy(attack: Attack) -> None:
    """A user's own Router (only handle()) still refuses names other than IP addresses
    and localhost."""
    routes: dict[str, debug.Handler] = {}

    class Router:
        def handle(self, path: str, handler: debug.Handler) -> None:
            routes[path] = handler

    debug.mount_debug_log_enabler(Router(), switch=SWITCH)
    SWITCH.turn_off()
    response = routes["/debug"](
        debug.Request("GET", "/debug", {"debug-logs": "on"}, attack.headers())
    )
    host_ok = attack.host_kind == "absent" or (
        attack.host_kind == "served" and ALLOWED not in (attack.host or "").lower()
    )
    expected = answered(attack) and host_ok
    assert (response.status == 200) == expected, attack
    assert SWITCH.enabled() == expected
    SWITCH.turn_off()


@pytest.mark.parametrize(
    "entry", ["", "evil.example:80", "http://x", "a b", "[::1]", 3, "*.", "..", "*corp", "**"]
)
def test_bad_allowed_hosts_raise(entry: object) -> None:
    """An allowed_hosts entry that is not a host name is a ValueError naming the option."""
    with pytest.raises(ValueError, match="allowed_hosts"):
        debug.Mux(allowed_hosts=[entry])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="allowed_hosts"):
        debug.adapt(flask.Flask("x"), allowed_hosts=[entry])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="allowed_hosts"):
        debug.serve_admin(port=0, allowed_hosts=[entry])  # type: ignore[list-item]


def test_adapt_of_a_router_that_checks_host_refuses_a_second_list() -> None:
    """adapt(Mux(), allowed_hosts=...) would silently ignore the list: it raises."""
    mux = debug.Mux()
    assert debug.adapt(mux) is mux
    with pytest.raises(ValueError, match="allowed_hosts"):
        debug.adapt(mux, allowed_hosts=["x.example"])


def test_wildcards_allow_subdomains_and_any_host() -> None:
    """'.name' allows the name and its subdomains; '*' allows any Host."""
    mux = debug.Mux(allowed_hosts=[".corp.example"])
    debug.mount_debug_log_enabler(mux, switch=SWITCH)
    for host, status in [
        ("corp.example", 200),
        ("a.b.corp.example:6060", 200),
        ("xcorp.example", 403),
        ("corp.example.evil", 403),
    ]:
        request = debug.Request("GET", "/debug", headers={"host": host})
        assert mux.dispatch(request).status == status, host
    anything = debug.Mux(allowed_hosts=["*"])
    debug.mount_debug_log_enabler(anything, switch=SWITCH)
    assert anything.dispatch(debug.Request("GET", "/debug", headers={"host": "x.y"})).status == 200


# ---- durations ---------------------------------------------------------------------------

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["1e10", "1e308", "1e400", "-0", "0", "nan", "inf", "", "x", "86400"]),
)


@pytest.fixture
def thread_errors() -> Iterator[list[BaseException]]:
    """Exceptions that escape any thread (a timer dying with OverflowError) during the test."""
    errors: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)  # type: ignore[assignment,arg-type]
    yield errors
    threading.excepthook = previous


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=numbers)
def test_every_duration_is_bounded_with_a_400_naming_the_limit(
    raw: str, thread_errors: list[BaseException]
) -> None:
    """seconds on the switch, profile and allocs is in (0, limit] or answers 400 naming
    the limit; nothing changes and no thread dies."""
    switch = _RecordingSwitch()
    mux = debug.Mux()
    debug.mount_debug_log_enabler(mux, switch=switch)
    debug.mount_pprof_handlers(mux, max_seconds=5)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    cases = [  # (path, query, limit, status when within the limit)
        ("/debug", {"debug-logs": "on"}, 86400.0, 200),
        ("/debug/pprof/profile", {"format": "svg"}, 5.0, 400),
        ("/debug/pprof/allocs", {"frames": "0"}, 5.0, 400),
    ]
    for path, query, limit, ok_status in cases:
        switch.turn_off()
        switch.durations.clear()
        response = mux.dispatch(debug.Request("GET", path, {**query, "seconds": raw}))
        if raw == "" or 0 < value <= limit:
            assert response.status == ok_status, (path, raw)
            assert b"at most" not in response.body
            if path == "/debug":  # switched on, for that long
                assert switch.durations == [None if raw == "" else value]
        else:
            assert response.status == 400, (path, raw)
            assert f"at most {limit:g}".encode() in response.body
            assert switch.durations == []
    switch.turn_off()
    assert thread_errors == []


class _RecordingSwitch(debug.DebugLogSwitch):
    def __init__(self) -> None:
        super().__init__()
        self.durations: list[float | None] = []

    def turn_on(self, *, duration: float | None = None, source: str | None = None) -> None:
        super().turn_on(duration=duration, source=source)
        self.durations.append(duration)


@pytest.mark.parametrize("duration", [1e10, 86400.5, float("inf"), float("nan"), 0, -1])
def test_the_switch_refuses_durations_out_of_range(duration: float) -> None:
    """turn_on and the mount options take at most a day; more is a ValueError."""
    with pytest.raises(ValueError, match="duration"):
        SWITCH.turn_on(duration=duration)
    with pytest.raises(ValueError, match="duration"):
        debug.mount_debug_log_enabler(debug.Mux(), duration=duration)
    with pytest.raises(ValueError, match="max_duration"):
        debug.mount_debug_log_enabler(debug.Mux(), max_duration=duration)
    assert not SWITCH.enabled()


def test_profile_max_seconds_is_bounded() -> None:
    """max_seconds beyond an hour is a ValueError naming the option."""
    with pytest.raises(ValueError, match="max_seconds"):
        debug.mount_pprof_handlers(debug.Mux(), max_seconds=1e10)


@settings(max_examples=60, deadline=None)
@given(
    option=st.sampled_from(["max_seconds", "default_seconds"]),
    value=st.one_of(
        st.integers(min_value=3601),
        st.sampled_from([10**400, -(10**400), 2**1024, float("inf"), float("nan"), 0, -1]),
        st.floats(min_value=3600.001),
    ),
)
def test_profile_durations_out_of_range_are_value_errors(option: str, value: float) -> None:
    """However large the number (an int beyond a float's range too), max_seconds and
    default_seconds out of range are a ValueError naming the option."""
    with pytest.raises(ValueError, match=option):
        debug.mount_pprof_handlers(debug.Mux(), **{option: value})


# ---- a real listener in another process, hit with forged headers --------------------------

_LISTENER = """
import sys
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from clue import debug
admin = debug.serve_admin(port=0)
print(admin.port, flush=True)
sys.stdin.read()
admin.close()
"""


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _LISTENER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield port, proc
    _, errors = proc.communicate(input="", timeout=10)
    assert "Traceback" not in errors


def _get(port: int, target: str, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _state(port: int) -> Any:
    status, body = _get(port, "/debug", {"Host": f"127.0.0.1:{port}"})
    assert status == 200
    return json.loads(body)


@pytest.mark.parametrize(
    "target",
    [
        "/debug?debug-logs=on",
        "/debug/pprof/goroutine",
        "/debug/pprof/cmdline",
        "/debug/pprof/heap?debug=1",
        "/debug/pprof/",
        "/nothing-here",
    ],
)
def test_dns_rebinding_is_refused_by_a_real_listener(
    listener: tuple[int, subprocess.Popen[str]], target: str
) -> None:
    """A same-origin request under another site's name (DNS rebinding) is refused: the
    switch does not flip and stacks, heap and command line are not read."""
    port, _ = listener
    forged = {
        "Host": f"evil.example:{port}",
        "Sec-Fetch-Site": "same-origin",
        "Origin": f"http://evil.example:{port}",
    }
    status, body = _get(port, target, forged)
    assert status == 403
    assert b"Host not allowed" in body
    assert _state(port) == {"debug-logs": "off"}


def test_a_foreign_referer_cannot_flip_the_switch(
    listener: tuple[int, subprocess.Popen[str]],
) -> None:
    """A GET carrying another site's Referer and no Fetch Metadata (an <img> on an old
    browser) is refused."""
    port, _ = listener
    headers = {"Host": f"127.0.0.1:{port}", "Referer": "http://evil.example/page"}
    assert _get(port, "/debug?debug-logs=on", headers)[0] == 403
    assert _state(port) == {"debug-logs": "off"}


def test_a_browser_without_fetch_metadata_cannot_flip_the_switch(
    listener: tuple[int, subprocess.Popen[str]],
) -> None:
    """An <img referrerpolicy=no-referrer> on another site, sent by a browser that gives
    no Fetch Metadata (plain http to a name other than localhost, or an old browser), is
    refused; the same browser following a link on the index page is answered."""
    port, _ = listener
    img = {"Host": f"127.0.0.1:{port}", "User-Agent": BROWSER, "Accept": "image/*"}
    assert _get(port, "/debug?debug-logs=on", img)[0] == 403
    assert _get(port, "/debug/pprof/heap", img)[0] == 403
    assert _state(port) == {"debug-logs": "off"}
    link = {**img, "Referer": f"http://127.0.0.1:{port}/debug/pprof/"}
    assert _get(port, "/debug?debug-logs=on", link)[0] == 200
    assert _state(port) == {"debug-logs": "on"}
    assert _get(port, "/debug?debug-logs=off", link)[0] == 200


def test_a_huge_duration_is_refused_and_the_listener_lives_on(
    listener: tuple[int, subprocess.Popen[str]],
) -> None:
    """seconds=1e10 answers 400 naming the limit; a day is accepted; the process never
    prints a dying thread's traceback."""
    port, proc = listener
    host = {"Host": f"localhost:{port}"}
    status, body = _get(port, "/debug?debug-logs=on&seconds=1e10", host)
    assert (status, body) == (400, b"seconds must be a positive number of at most 86400\n")
    assert _state(port) == {"debug-logs": "off"}
    status, body = _get(port, "/debug?debug-logs=on&seconds=86400", host)
    assert status == 200
    assert json.loads(body)["remaining-seconds"] > 86000
    assert _get(port, "/debug?debug-logs=off", host)[0] == 200
    assert proc.poll() is None
