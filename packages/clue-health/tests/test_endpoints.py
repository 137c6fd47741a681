"""wsgi_handler and asgi_handler: status codes, JSON, XML, negotiation, headers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clue import health
from clue.health import Checker, Health, asgi_handler, wsgi_handler
from clue.health._accept import negotiate
from clue.health._render import to_json, to_xml

CHROME = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FIREFOX_NEW = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/png,image/svg+xml,*/*;q=0.8"
)
SAFARI = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
OLD_IE = "image/gif, image/jpeg, image/pjpeg, application/x-ms-application, */*"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),  # curl, kubelet
        ("application/json", "application/json"),
        ("application/xml", "application/xml"),
        ("text/xml", "text/xml"),
        (CHROME, "application/xml"),
        (FIREFOX, "application/xml"),
        (FIREFOX_NEW, "application/xml"),
        (SAFARI, "application/xml"),
        (OLD_IE, "application/json"),
        ("application/json, application/xml;q=0.5", "application/json"),
        ("application/xml;q=0.5, application/json", "application/json"),
        ("application/xml;q=0.9, application/json;q=0.8", "application/xml"),
        ("application/xml;q=0, */*", "application/json"),
        ("*/*;q=0.1, application/xml", "application/xml"),
        ("application/*", "application/json"),
        ("text/*", "text/xml"),
        ("text/plain", "application/json"),
        ("APPLICATION/XML", "application/xml"),
        ("application/xml;q=abc", "application/json"),
        ("application/xml ; charset=utf-8 ; q=0.7, application/json;q=0.6", "application/xml"),
        ("garbage, ;;;, /, */json", "application/json"),
    ],
)
def test_accept_negotiation(accept, expected):
    """Quality values, wildcards and real browser Accept lists pick the right format."""
    assert negotiate(accept) == expected


@given(st.text(max_size=300))
def test_negotiation_never_fails(accept):
    """Any Accept header yields one of the offered formats, never an error."""
    assert negotiate(accept) in ("application/json", "application/xml", "text/xml")


@given(
    names=st.lists(st.text(min_size=1, max_size=20), max_size=6, unique=True),
    version=st.text(max_size=30),
    uptime=st.integers(min_value=0, max_value=10**9),
)
def test_json_is_the_report_for_any_names(names, version, uptime):
    """The JSON body round-trips any dependency names and version."""
    status = {n: "OK" if i % 2 else "NOT OK" for i, n in enumerate(names)}
    doc = json.loads(to_json(Health(uptime, version, status)))
    assert doc == {"uptime": uptime, "version": version, "status": status}
    assert list(doc) == ["uptime", "version", "status"]


_XML_SAFE = st.characters(blacklist_categories=["Cs"], blacklist_characters="\ufffe\uffff")


@given(
    names=st.lists(st.text(min_size=1, max_size=20), max_size=6, unique=True),
    version=st.text(max_size=30),
)
def test_xml_is_well_formed_for_any_names(names, version):
    """The XML body parses whatever the names hold (markup, quotes, controls, surrogates)."""
    status = dict.fromkeys(names, "OK")
    root = ET.fromstring(to_xml(Health(7, version, status)))
    assert root.tag == "health"
    assert root.findtext("uptime") == "7"
    deps = root.findall("status/dependency")
    assert len(deps) == len(names)
    assert all(d.text == "OK" for d in deps)


@given(names=st.lists(st.text(_XML_SAFE, min_size=1, max_size=20), max_size=6, unique=True))
def test_xml_keeps_names_xml_can_carry(names):
    """Names made of characters XML allows come back exactly, tabs and newlines included."""
    xml_ok = [n for n in names if all(c in "\t\n\r" or ord(c) >= 0x20 for c in n)]
    root = ET.fromstring(to_xml(Health(1, "v", dict.fromkeys(xml_ok, "NOT OK"))))
    assert [d.get("name") for d in root.findall("status/dependency")] == xml_ok


def test_xml_shape():
    """The XML report has uptime, version and one dependency element per dependency."""
    body = to_xml(Health(3600, "abc123", {"postgresql": "OK", "redis": "NOT OK"}))
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<health><uptime>3600</uptime>'
        b"<version>abc123</version><status>"
        b'<dependency name="postgresql">OK</dependency>'
        b'<dependency name="redis">NOT OK</dependency>'
        b"</status></health>\n"
    )


def test_wsgi_handler_answers_200_with_json(serve_wsgi, pingers):
    """All dependencies OK: 200 and the JSON report, never cached."""
    health.VERSION = "abc123"
    app = wsgi_handler(Checker(pingers.sync("postgresql"), pingers.sync("redis")))
    status, headers, body = serve_wsgi(app).get("/healthz")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "uptime": json.loads(body)["uptime"],
        "version": "abc123",
        "status": {"postgresql": "OK", "redis": "OK"},
    }
    assert "no-store" in headers["cache-control"]
    assert headers["pragma"] == "no-cache"
    assert headers["vary"] == "Accept"


def test_wsgi_handler_answers_503_when_a_dependency_fails(serve_wsgi, pingers):
    """One dependency NOT OK: 503 with the full report."""
    app = wsgi_handler(Checker(pingers.sync("postgresql"), pingers.sync("redis", error=OSError())))
    status, _, body = serve_wsgi(app).get("/healthz")
    assert status == 503
    assert json.loads(body)["status"] == {"postgresql": "OK", "redis": "NOT OK"}


def test_wsgi_handler_answers_503_not_500_with_a_hung_dependency(serve_wsgi, dependency):
    """A hung real dependency gives 503 within the timeout, not an error or a hang."""
    dependency.mode = "hang"
    app = wsgi_handler(Checker(health.new_pinger("dep", dependency.addr), timeout=0.2))
    status, _, body = serve_wsgi(app).get("/healthz")
    assert status == 503
    assert json.loads(body)["status"] == {"dep": "NOT OK"}


def test_wsgi_handler_answers_xml_to_a_browser(serve_wsgi, pingers):
    """A browser's Accept list gets the XML report."""
    app = wsgi_handler(Checker(pingers.sync("db")))
    status, headers, body = serve_wsgi(app).get("/healthz", {"Accept": CHROME})
    assert status == 200
    assert headers["content-type"] == "application/xml; charset=utf-8"
    assert ET.fromstring(body).find("status/dependency").get("name") == "db"  # type: ignore[union-attr]


def test_wsgi_handler_head_and_other_methods(serve_wsgi, pingers):
    """HEAD answers headers without a body; POST answers 405 with Allow."""
    served = serve_wsgi(wsgi_handler(Checker(pingers.sync("db"))))
    status, headers, body = served.get("/healthz", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) > 0
    status, headers, _ = served.get("/healthz", method="POST")
    assert status == 405
    assert headers["allow"] == "GET, HEAD"


async def test_asgi_handler_answers_like_the_wsgi_one(asgi, pingers):
    """The ASGI handler gives the same status codes, formats and headers."""
    app = asgi_handler(
        Checker(pingers.aio("db"), pingers.sync("cache", error=OSError()), cache_ttl=0)
    )
    res = await asgi(app, "/healthz")
    assert res.status == 503
    assert json.loads(res.body)["status"] == {"db": "OK", "cache": "NOT OK"}
    assert res.headers["cache-control"].startswith("no-cache")
    res = await asgi(app, "/healthz", headers={"Accept": "text/xml"})
    assert res.headers["content-type"] == "text/xml; charset=utf-8"
    assert ET.fromstring(res.body).tag == "health"
    res = await asgi(app, "/healthz", method="HEAD")
    assert res.body == b""
    assert (await asgi(app, "/healthz", method="DELETE")).status == 405


async def test_asgi_handler_healthy(asgi, pingers):
    """All dependencies OK over ASGI: 200 JSON."""
    res = await asgi(asgi_handler(Checker(pingers.aio("db"))), "/")
    assert res.status == 200
    assert res.headers["content-type"] == "application/json"


async def test_asgi_handler_completes_lifespan():
    """Mounted as a whole ASGI app, the handler completes the lifespan protocol."""
    app = asgi_handler(Checker())
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_handlers_reject_something_that_is_not_a_checker():
    """Passing anything but a Checker fails at configuration time."""
    with pytest.raises(TypeError, match="Checker"):
        wsgi_handler(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Checker"):
        asgi_handler(object())  # type: ignore[arg-type]
