"""The metadata of an outgoing call reaches the server whole behind clue's client interceptors,
whatever shape the caller gives it, with one ``x-request-id``; a hostile bound
``request_id`` never breaks the call; and a call grpc refuses, or that is cancelled before it
goes out, still logs the end of what it started."""

from __future__ import annotations

import asyncio
import gc
import io
import json
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clue import log

from .hostile import HostileStr

SERVICE = "cluelog.clientmetadata.Echo"
METHOD = f"/{SERVICE}/Unary"
ID_KEYS = ("x-request-id", b"x-request-id")

# grpcio before 1.66 cancels a grpc.aio call again when it is collected and fails if its
# channel has closed meanwhile (``InterceptedCall.__del__``: "Channel is closed"); the
# calls these tests refuse or cancel are collected after their channel closes. That
# finalizer is grpc's own, not clue's: its failure is not this module's to report.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function InterceptedCall.__del__"
    ":pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture(autouse=True)
def _collect_calls() -> Iterator[None]:
    """Collect each test's calls at its own teardown, where the filter above applies."""
    yield
    gc.collect()


def _sent(context: Any) -> list[tuple[str, Any]]:
    return [
        (k, v)
        for k, v in context.invocation_metadata()
        if not k.startswith(("user-agent", "grpc-"))
    ]


class _Seen:
    def __init__(self) -> None:
        self.metadata: list[list[tuple[str, Any]]] = []

    def unary(self, request: bytes, context: Any) -> bytes:
        self.metadata.append(_sent(context))
        return request

    async def aunary(self, request: bytes, context: Any) -> bytes:
        self.metadata.append(_sent(context))
        return request


def _handler(fn: Any) -> Any:
    return grpc.method_handlers_generic_handler(
        SERVICE, {"Unary": grpc.unary_unary_rpc_method_handler(fn)}
    )


@pytest.fixture(scope="module")
def sync_server() -> Iterator[tuple[str, _Seen]]:
    seen = _Seen()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((_handler(seen.unary),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", seen
    server.stop(None).wait(10)


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    log.configure(output=io.StringIO(), format=log.format_json)
    yield
    log.configure()


def _shaped(pairs: list[tuple[Any, str]], shape: str) -> Any:
    if shape == "list":
        return list(pairs)
    if shape == "tuple":
        return tuple(pairs)
    if shape == "generator":
        return ((k, v) for k, v in pairs)
    return iter(pairs)


pair_st = st.tuples(
    st.sampled_from(["a", "b-c", "trace-bin"]), st.text("abcxyz0189-", max_size=8)
).map(lambda kv: (kv[0], kv[1].encode() if kv[0].endswith("-bin") else kv[1]))
call_st = st.tuples(
    st.lists(pair_st, max_size=4),
    st.sampled_from(["list", "tuple", "generator", "iterator"]),
    st.sampled_from([None, *ID_KEYS]),
    st.integers(0, 4),
)


def _expected(
    pairs: list[tuple[Any, Any]], id_key: Any, at: int
) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    given = list(pairs)
    if id_key is not None:
        given.insert(min(at, len(given)), (id_key, "mine-1"))
    text = [(k.decode() if isinstance(k, bytes) else k, v) for k, v in given]
    return given, text


def _check(
    sent: list[tuple[str, Any]], text: list[tuple[str, Any]], id_key: Any, ordered: bool = True
) -> None:
    ids = [v for k, v in sent if k == "x-request-id"]
    assert len(ids) == 1, sent
    if id_key is None:
        sent = [kv for kv in sent if kv[0] != "x-request-id"]
    if not ordered:
        # grpc.aio.Metadata groups the values of a key together, with or without clue.
        sent, text = sorted(sent), sorted(text)
    assert sent == text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(call=call_st)
def test_sync_metadata_of_any_shape_arrives_whole_with_one_id(
    sync_server: tuple[str, _Seen], call: tuple[Any, str, Any, int]
) -> None:
    """A sync call's metadata (list, tuple, generator, iterator; the id under a str or bytes
    key) reaches the server whole, with exactly one x-request-id, the caller's if it set one."""
    address, seen = sync_server
    pairs, shape, id_key, at = call
    given_pairs, text = _expected(pairs, id_key, at)
    seen.metadata.clear()
    with grpc.insecure_channel(address) as plain:
        channel = grpc.intercept_channel(plain, log.GrpcClientInterceptor())
        assert channel.unary_unary(METHOD)(b"x", metadata=_shaped(given_pairs, shape)) == b"x"
    _check(seen.metadata[0], text, id_key)


@settings(max_examples=30, deadline=None)
@given(calls=st.lists(call_st, min_size=1, max_size=4))
def test_aio_metadata_of_any_shape_arrives_whole_with_one_id(
    calls: list[tuple[Any, str, Any, int]],
) -> None:
    """The same for grpc.aio calls (a grpc.aio.Metadata too)."""
    seen = _Seen()

    async def main() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_handler(seen.aunary),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", interceptors=log.aio_grpc_client_interceptors()
            ) as channel:
                for pairs, shape, id_key, at in calls:
                    given_pairs, text = _expected(pairs, id_key, at)
                    md: Any = (
                        grpc.aio.Metadata(*given_pairs)
                        if shape == "iterator"
                        else _shaped(given_pairs, shape)
                    )
                    seen.metadata.clear()
                    assert await channel.unary_unary(METHOD)(b"x", metadata=md) == b"x"
                    _check(seen.metadata[0], text, id_key, ordered=False)
        finally:
            await server.stop(None)

    asyncio.run(main())


class _AddsMetadata(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    """An interceptor after clue's using the ``grpc.aio.Metadata`` API grpc.aio hands it."""

    def __init__(self) -> None:
        self.types: list[type[Any]] = []

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = details.metadata
        self.types.append(type(metadata))
        metadata.add("added-after", "1")
        return await continuation(details, request)


def test_interceptors_after_clues_get_grpc_aio_metadata() -> None:
    """An aio interceptor after clue's gets the ``grpc.aio.Metadata`` grpc.aio gives it
    without clue, and the caller's own Metadata object is left as it was."""
    seen = _Seen()
    after = _AddsMetadata()
    mine = grpc.aio.Metadata(("a", "1"))

    async def main() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_handler(seen.aunary),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", interceptors=[*log.aio_grpc_client_interceptors(), after]
            ) as channel:
                for md in (None, (("a", "1"),), [("a", "1")], mine):
                    assert await channel.unary_unary(METHOD)(b"x", metadata=md) == b"x"
        finally:
            await server.stop(None)

    asyncio.run(main())
    assert after.types == [grpc.aio.Metadata] * 4
    assert [[k for k, _ in sent] for sent in seen.metadata] == [
        ["x-request-id", "added-after"],
        *[["a", "x-request-id", "added-after"]] * 3,
    ]
    assert list(mine) == [("a", "1")]


class _RaisingEq(str):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    __hash__ = str.__hash__


class _EqualToAll(str):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


HOSTILE_IDS = [
    HostileStr("req-1"),
    _RaisingEq("req-1"),
    _EqualToAll("not\nan id"),
    _EqualToAll("é" * 4),
    "not an id",
    "x" * 500,
]


@pytest.mark.parametrize("bound", HOSTILE_IDS, ids=range(len(HOSTILE_IDS)))
def test_a_hostile_bound_request_id_never_breaks_the_call(
    sync_server: tuple[str, _Seen], bound: str
) -> None:
    """A bound request_id that is a hostile str (raising or lying comparisons, malformed)
    neither raises into the call nor makes grpc refuse it: a well-formed id is sent."""
    address, seen = sync_server
    seen.metadata.clear()
    with grpc.insecure_channel(address) as plain:
        channel = grpc.intercept_channel(plain, log.GrpcClientInterceptor())
        with log.context():
            log.bind(request_id=bound)
            assert channel.unary_unary(METHOD)(b"x") == b"x"
    (sent,) = [v for k, v in seen.metadata[0] if k == "x-request-id"]
    expected = str.__str__(bound)
    assert sent == expected if expected == "req-1" else sent != expected


def _lines(out: io.StringIO) -> list[tuple[str, Any]]:
    return [(d["msg"], d.get("grpc.code")) for d in map(json.loads, out.getvalue().splitlines())]


SYNC_SHAPES = [
    ("unary_unary", "call"),
    ("unary_unary", "future"),
    ("unary_unary", "with_call"),
    ("unary_stream", "call"),
    ("stream_unary", "call"),
    ("stream_unary", "future"),
    ("stream_unary", "with_call"),
    ("stream_stream", "call"),
]


@pytest.mark.parametrize(("kind", "style"), SYNC_SHAPES)
def test_a_sync_call_grpc_refuses_ends_what_it_started(kind: str, style: str) -> None:
    """A call on a closed channel, which grpc refuses with an exception, logs its end
    (INTERNAL, as grpc ends a refused blocking call) whatever its kind and style, and the
    caller gets grpc's exception."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    channel = grpc.intercept_channel(
        grpc.insecure_channel("127.0.0.1:1"), log.GrpcClientInterceptor()
    )
    channel.close()
    callable_ = getattr(channel, kind)(METHOD)
    request: Any = b"x" if kind.startswith("unary") else iter([b"x"])

    def make_the_call() -> None:
        call = callable_(request) if style == "call" else getattr(callable_, style)(request)
        if style == "future":
            call.result()
        elif kind.endswith("stream"):
            list(call)

    with pytest.raises(ValueError, match="closed"):
        make_the_call()
    assert _lines(out) == [("start", None), ("end", "INTERNAL")]


AIO_KINDS = ["unary_unary", "unary_stream", "stream_unary", "stream_stream"]


@pytest.mark.parametrize("kind", AIO_KINDS)
def test_an_aio_call_grpc_refuses_ends_what_it_started(kind: str) -> None:
    """The same on a closed grpc.aio channel."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)

    async def main() -> None:
        channel = grpc.aio.insecure_channel(
            "127.0.0.1:1", interceptors=log.aio_grpc_client_interceptors()
        )
        await channel.close()
        request: Any = b"x" if kind.startswith("unary") else iter([b"x"])
        call = getattr(channel, kind)(METHOD)(request)

        async def finish() -> None:
            if kind.endswith("stream"):
                [m async for m in call]
            else:
                await call

        with pytest.raises(grpc.aio.UsageError):
            await finish()

    asyncio.run(main())
    assert _lines(out) == [("start", None), ("end", "INTERNAL")]


class _Waits(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    """An interceptor after clue's that awaits (a token refresh, say) before the call."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self.entered.set()
        await asyncio.Event().wait()
        return await continuation(details, request)


def test_an_aio_call_cancelled_inside_a_later_interceptor_ends_cancelled() -> None:
    """An aio call the caller cancels while an interceptor after clue's awaits logs its end,
    CANCELLED, as grpc.aio ends it."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)

    async def main() -> None:
        waits = _Waits()
        async with grpc.aio.insecure_channel(
            "127.0.0.1:1", interceptors=[*log.aio_grpc_client_interceptors(), waits]
        ) as channel:
            call = channel.unary_unary(METHOD)(b"x")
            await waits.entered.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert await call.code() is grpc.StatusCode.CANCELLED

    asyncio.run(main())
    assert _lines(out) == [("start", None), ("end", "CANCELLED")]


class _UnhashableName(str):
    __slots__ = ()

    def __hash__(self) -> int:
        raise RuntimeError("no hash")


class _LyingName(str):
    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


@pytest.mark.parametrize(
    "name",
    [
        _UnhashableName(METHOD),
        _LyingName(METHOD),
        HostileStr(METHOD),
    ],
    ids=["unhashable", "lying", "hostile"],
)
def test_a_method_name_of_a_hostile_type_is_logged_as_its_text(
    sync_server: tuple[str, _Seen], name: Any
) -> None:
    """A method name that is a str subclass hashing, comparing or printing as it likes is
    called as grpc calls it and logged under its own text, never raising."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    address, _ = sync_server
    with grpc.insecure_channel(address) as plain:
        channel = grpc.intercept_channel(plain, log.GrpcClientInterceptor())
        assert channel.unary_unary(name)(b"x") == b"x"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["msg"], d["grpc.service"], d["grpc.method"]) for d in lines] == [
        ("start", SERVICE, "Unary"),
        ("end", SERVICE, "Unary"),
    ]


class _Refuses(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc is untyped
    """An interceptor after clue's refusing the call with a status, as an auth check does."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details="no token",
        )


def test_an_aio_call_a_later_interceptor_refuses_ends_with_its_code() -> None:
    """An aio call that an interceptor after clue's ends with a status logs its end with the
    code and details the caller gets."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)

    async def main() -> None:
        async with grpc.aio.insecure_channel(
            "127.0.0.1:1", interceptors=[*log.aio_grpc_client_interceptors(), _Refuses()]
        ) as channel:
            call = channel.unary_unary(METHOD)(b"x")
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call
            assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert await call.code() is grpc.StatusCode.UNAUTHENTICATED

    asyncio.run(main())
    assert _lines(out) == [("start", None), ("end", "UNAUTHENTICATED")]
    end = json.loads(out.getvalue().splitlines()[-1])
    assert end["grpc.status"] == "no token"
