"""Request parsing and the cross-site check hold for any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from clue import debug
from clue.debug._guard import is_cross_site
from clue.debug._http import request_from_asgi, request_from_wsgi

hosts = st.from_regex(r"[a-z0-9.-]{1,20}(:[0-9]{1,5})?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(origin=st.text(max_size=60), host=st.text(max_size=30), site=st.text(max_size=15))
def test_cross_site_check_never_raises(origin: str, host: str, site: str) -> None:
    """Any Origin, Host and Sec-Fetch-Site values give an answer, never an exception."""
    request = debug.Request(
        "GET", "/debug", headers={"origin": origin, "host": host, "sec-fetch-site": site}
    )
    assert isinstance(is_cross_site(request), bool)


@settings(max_examples=100, deadline=None)
@given(host=hosts, scheme=st.sampled_from(["http", "https"]))
def test_same_origin_is_never_cross_site(host: str, scheme: str) -> None:
    """A request whose Origin names its own Host is same-origin."""
    request = debug.Request(
        "GET",
        "/debug",
        headers={"origin": f"{scheme}://{host}", "host": host, "sec-fetch-site": "same-origin"},
    )
    assert not is_cross_site(request)


@settings(max_examples=100, deadline=None)
@given(host=hosts, other=hosts)
def test_another_origin_is_cross_site(host: str, other: str) -> None:
    """A request whose Origin names another host is refused."""
    request = debug.Request("GET", "/debug", headers={"origin": f"http://{other}", "host": host})
    assert is_cross_site(request) == (other.lower() != host.lower())


@settings(max_examples=150, deadline=None)
@given(
    headers=st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=40)), max_size=8),
    query=st.binary(max_size=60),
    path=st.text(max_size=30),
)
def test_asgi_scopes_parse(headers, query, path) -> None:
    """Any header bytes and query string parse into a Request without raising."""
    request = request_from_asgi(
        {"type": "http", "method": "get", "path": path, "query_string": query, "headers": headers}
    )
    assert request.method == "GET"
    assert request.path == path
    assert all(k == k.lower() for k in request.headers)


@settings(max_examples=150, deadline=None)
@given(
    qs=st.text(max_size=60),
    path=st.text(max_size=30),
    extra=st.dictionaries(
        st.from_regex(r"HTTP_[A-Z_]{1,10}", fullmatch=True), st.text(max_size=20)
    ),
)
def test_wsgi_environs_parse(qs, path, extra) -> None:
    """Any query string, PEP 3333 path and headers parse into a Request without raising."""
    # PEP 3333: the server hands the path over as UTF-8 bytes decoded as latin-1.
    wsgi_path = path.encode("utf-8").decode("latin-1")
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": wsgi_path, "QUERY_STRING": qs, **extra}
    request = request_from_wsgi(environ)
    assert request.method == "POST"
    assert request.path == (path or "/")
    for key in extra:
        assert key[5:].replace("_", "-").lower() in request.headers


def test_query_takes_the_first_value() -> None:
    """A repeated query parameter keeps its first value; blank values are kept."""
    request = request_from_wsgi({"QUERY_STRING": "debug-logs=on&debug-logs=off&x="})
    assert request.query == {"debug-logs": "on", "x": ""}
