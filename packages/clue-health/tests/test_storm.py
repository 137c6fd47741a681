"""Probe storms: 500 concurrent probes cost a slow dependency one call per TTL."""

from __future__ import annotations

import asyncio
import json

from clue.health import Checker, asgi_handler, new_pinger, wsgi_handler

PROBES = 500


async def _probe(port: int) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_500_concurrent_http_probes_make_one_dependency_call(serve_wsgi, dependency):
    """500 probes at once over real HTTP all answer 200; the slow dependency sees one call."""
    dependency.mode = "slow"
    dependency.delay = 0.3
    checker = Checker(new_pinger("slow", dependency.addr, timeout=0.8), timeout=0.8, cache_ttl=10)
    served = serve_wsgi(wsgi_handler(checker))
    answers = await asyncio.wait_for(
        asyncio.gather(*(_probe(served.port) for _ in range(PROBES))), timeout=30
    )
    assert [status for status, _ in answers] == [200] * PROBES
    assert {json.loads(body)["status"]["slow"] for _, body in answers} == {"OK"}
    assert dependency.calls == 1


async def test_500_concurrent_asgi_probes_share_one_evaluation(asgi, dependency):
    """500 concurrent ASGI probes with no cache still cost one dependency call (single flight)."""
    dependency.mode = "slow"
    dependency.delay = 0.3
    checker = Checker(new_pinger("slow", dependency.addr, timeout=0.8), timeout=0.8, cache_ttl=0)
    app = asgi_handler(checker)
    results = await asyncio.wait_for(
        asyncio.gather(*(asgi(app, "/healthz") for _ in range(PROBES))), 30
    )
    assert {r.status for r in results} == {200}
    assert dependency.calls == 1
