"""@log.endpoint(service, method): names bound for the call only, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from clue import log

from .conftest import JsonOut


def test_sync_binds_for_the_call_only(logs: Any) -> None:
    """Inside the call entries carry service and method; after it they do not."""

    @log.endpoint("orders", "create")
    def create() -> str:
        log.bind(order="o-1")
        log.print("inside")
        return "done"

    with log.context():
        assert create() == "done"
        log.print("after")
    inside, after = logs.entries()
    assert (inside["service"], inside["method"], inside["order"]) == ("orders", "create", "o-1")
    assert "service" not in after
    assert "method" not in after
    assert after["order"] == "o-1"  # what the call bound itself stays


async def test_async_and_concurrent_calls(logs: Any) -> None:
    """Async endpoints running concurrently each see their own names."""

    @log.endpoint("users", "get")
    async def get(n: int) -> int:
        await asyncio.sleep(0)
        log.print("get", n=n)
        return n

    @log.endpoint("users", "delete")
    async def delete(n: int) -> int:
        await asyncio.sleep(0)
        log.print("delete", n=n)
        return n

    async def request(fn: Any, n: int) -> int:
        with log.context():
            return int(await fn(n))

    results = await asyncio.gather(*(request(get if i % 2 else delete, i) for i in range(10)))
    assert results == list(range(10))
    for e in logs.entries():
        assert e["method"] == e["msg"]
        assert e["service"] == "users"


def test_exception_still_unbinds(logs: Any) -> None:
    """A raising endpoint removes its names too, and its error entry carries them."""

    @log.endpoint("orders", "cancel")
    def cancel() -> None:
        log.error("cannot cancel")
        raise LookupError("no order")

    with log.context():
        with pytest.raises(LookupError):
            cancel()
        log.print("after")
    err, after = logs.entries()
    assert err["method"] == "cancel"
    assert "method" not in after


def test_outside_a_context_opens_one(logs: Any) -> None:
    """Called outside any log context, the endpoint gets its own (buffered) context."""

    @log.endpoint("jobs", "run")
    def run(fail: bool) -> None:
        log.info("step")
        if fail:
            log.error("failed")

    run(False)
    run(True)
    assert [(e["msg"], e["method"]) for e in logs.entries()] == [("step", "run"), ("failed", "run")]


@pytest.mark.parametrize(("service", "method"), [("", "m"), ("s", ""), (None, "m"), ("s", 3)])
def test_bad_names(service: Any, method: Any) -> None:
    """Empty or non-string names raise ValueError at decoration time."""
    with pytest.raises(ValueError, match=r"service|method"):
        log.endpoint(service, method)


def test_decorated_generators_cover_their_body(out: JsonOut) -> None:
    """``@log.endpoint`` and ``@log.context()`` on a generator or async generator function
    (a server-streaming handler) cover the generator's body, step by step, and never leak
    into the caller between steps."""

    @log.endpoint("catalog", "List")
    def items() -> Iterator[int]:
        log.print("sending")
        yield 1
        log.print("sending")
        yield 2

    @log.endpoint("catalog", "Watch")
    async def aitems() -> AsyncIterator[int]:
        log.print("watching")
        yield 1

    @log.context()
    def own_context() -> Iterator[int]:
        log.info("buffered in the generator's context")
        yield 1
        log.bind(step=2)
        yield 2
        log.error("the generator fails")

    async def consume() -> list[int]:
        return [x async for x in aitems()]

    assert list(items()) == [1, 2]
    assert asyncio.run(consume()) == [1]
    with log.context():
        gen = own_context()
        next(gen)
        log.print("caller between steps")
        next(gen)
        with pytest.raises(StopIteration):
            next(gen)
    docs = out.docs()
    assert [(d["msg"], d.get("method")) for d in docs] == [
        ("sending", "List"),
        ("sending", "List"),
        ("watching", "Watch"),
        ("caller between steps", None),
        ("buffered in the generator's context", None),
        ("the generator fails", None),
    ]
    assert docs[-1]["step"] == 2
    assert "step" not in docs[-2]
