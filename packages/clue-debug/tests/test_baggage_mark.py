"""The ``clue.debug`` baggage mark: set by a trigger, honoured only when trusted."""

from __future__ import annotations

import json
import re
import time
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import wrappers_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context

from clue import debug
from clue.debug import _mark
from clue.debug._trigger import Trigger

KEY = "clue.debug"


def reference_valid(value: object, now: float, max_seconds: float) -> bool:
    """The mark's validity, written independently of the implementation."""
    if not isinstance(value, str) or re.fullmatch(r"[0-9]{1,16}", value) is None:
        return False
    return now < int(value) / 1000 <= now + max_seconds


marks = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=0, max_value=10**20).map(str),
    st.integers(min_value=-120_000, max_value=4_000_000).map(
        lambda delta: str(int(time.time() * 1000) + delta)
    ),
    st.from_regex(r"[0-9]{1,16}[ ;,=a-z]?", fullmatch=True),
    st.none(),
    st.integers(),
    st.binary(max_size=20),
)


@settings(max_examples=500)
@given(value=marks, max_seconds=st.floats(min_value=0.001, max_value=3600))
def test_mark_validity_matches_the_reference(value: object, max_seconds: float) -> None:
    """A mark is honoured exactly when it is 1-16 digits, not expired and within the max."""
    now = time.time()
    assert _mark.mark_is_valid(value, now, max_seconds) == reference_valid(value, now, max_seconds)


@settings(max_examples=300, deadline=None)
@given(
    incoming=st.one_of(st.none(), marks.filter(lambda v: isinstance(v, str))),
    triggered=st.booleans(),
    propagate_trigger=st.booleans(),
    trust=st.booleans(),
    forward=st.booleans(),
)
def test_decision_follows_the_trust_model(
    incoming: str | None, triggered: bool, propagate_trigger: bool, trust: bool, forward: bool
) -> None:
    """Debug, and the mark forwarded, are what the trust model says for any input."""
    trigger = Trigger(
        switch=debug.DebugLogSwitch(),
        trigger_header="x-clue-debug",
        trigger_value="s3cret",
        propagate_trigger=propagate_trigger,
        trust_baggage=trust,
        max_mark_seconds=60,
        forward_baggage_mark=forward,
    )
    base = otel_context.Context()
    if incoming is not None:
        base = baggage.set_baggage(KEY, incoming, context=base)
    token = otel_context.attach(base)
    try:
        before = time.time()
        wants, ctx = trigger.decide(lambda name: "s3cret" if triggered else "guess")
        after = time.time()
    finally:
        otel_context.detach(token)
    trusted = trust and incoming is not None and reference_valid(incoming, before, 60)
    assert wants == (triggered or trusted)
    out = baggage.get_baggage(KEY, context=ctx if ctx is not None else base)
    if triggered and propagate_trigger:
        # A fresh mark, valid for mark_seconds (60 by default) from now.
        assert out is not None
        assert before + 60 - 0.001 <= int(out) / 1000 <= after + 60
    elif incoming is not None and (trusted or forward):
        assert out == incoming  # verified or explicitly passed on: unchanged
    else:
        assert out is None  # never forwarded unverified


def test_options_are_validated() -> None:
    """Bad options are a ValueError naming the option."""
    with pytest.raises(ValueError, match="mark_seconds"):
        debug.ASGIMiddleware(None, mark_seconds=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_mark_seconds"):
        debug.WSGIMiddleware(None, max_mark_seconds=3601)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="propagate_trigger"):
        debug.GrpcServerInterceptor(propagate_trigger=True)


# --- HTTP: a real server, the baggage extracted as OpenTelemetry's middleware does ---


def _asgi_echo(control: Any) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        outgoing: dict[str, str] = {}
        propagate.inject(outgoing)  # what a call made while serving would carry
        body = json.dumps({"debug": control.debug_enabled(), "out": outgoing}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def _asgi_extracting(app: Any) -> Any:
    async def outer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        token = otel_context.attach(propagate.extract(carrier))
        try:
            await app(scope, receive, send)
        finally:
            otel_context.detach(token)

    return outer


def _wsgi_echo(control: Any) -> Any:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/json")])

        def body() -> Any:  # read while the server iterates the response
            outgoing: dict[str, str] = {}
            propagate.inject(outgoing)
            yield json.dumps({"debug": control.debug_enabled(), "out": outgoing}).encode()

        return body()

    return app


def _wsgi_extracting(app: Any) -> Any:
    def outer(environ: Any, start_response: Any) -> Any:
        carrier = {"baggage": environ.get("HTTP_BAGGAGE", "")}
        token = otel_context.attach(propagate.extract(carrier))
        try:
            return list(app(environ, start_response))
        finally:
            otel_context.detach(token)

    return outer


def _valid_mark(seconds: float = 30) -> str:
    return str(int((time.time() + seconds) * 1000))


def _mark_of(reply: dict[str, Any]) -> str | None:
    entries = dict(e.split("=", 1) for e in reply["out"].get("baggage", "").split(",") if "=" in e)
    return entries.get(KEY)


@pytest.fixture(params=["asgi", "wsgi"])
def serve(request: Any, asgi_server: Any, wsgi_server: Any, control: Any) -> Any:
    def start(**options: Any) -> str:
        if request.param == "asgi":
            return asgi_server(
                _asgi_extracting(debug.ASGIMiddleware(_asgi_echo(control), **options))
            )
        return wsgi_server(_wsgi_extracting(debug.WSGIMiddleware(_wsgi_echo(control), **options)))

    return start


def test_edge_sets_the_mark_and_drops_a_forged_one(serve: Any, http: Any) -> None:
    """An edge marks triggered requests only, and never forwards a mark from outside."""
    url = serve(trigger_header="x-clue-debug", trigger_value="s3cret", propagate_trigger=True)
    triggered = http(url + "/", {"x-clue-debug": "s3cret", "baggage": "user=1"}).json()
    assert triggered["debug"] is True
    assert _mark.mark_is_valid(_mark_of(triggered), time.time(), 60)
    assert "user=1" in triggered["out"]["baggage"]  # the rest of the baggage is kept
    forged = http(url + "/", {"baggage": f"{KEY}={_valid_mark()},user=1"}).json()
    assert forged["debug"] is False
    assert _mark_of(forged) is None
    assert forged["out"]["baggage"] == "user=1"
    plain = http(url + "/").json()
    assert plain == {"debug": False, "out": {}}


def test_trusting_service_honours_valid_marks_only(serve: Any, http: Any) -> None:
    """trust_baggage turns debug on for a valid mark and forwards it; bad marks are dropped."""
    url = serve(trust_baggage=True, max_mark_seconds=60)
    mark = _valid_mark()
    good = http(url + "/", {"baggage": f"{KEY}={mark}"}).json()
    assert good["debug"] is True
    assert _mark_of(good) == mark
    bad_marks = [
        _valid_mark(-1),  # expired
        _valid_mark(600),  # beyond this service's maximum
        "x" * 5000,  # oversized
        "12ab",  # malformed
        "",
    ]
    for bad in bad_marks:
        reply = http(url + "/", {"baggage": f"{KEY}={bad}"})
        assert reply.status == 200
        assert reply.json()["debug"] is False
        assert _mark_of(reply.json()) is None


def test_default_service_ignores_and_strips_the_mark(serve: Any, http: Any) -> None:
    """Without trust_baggage a mark is ignored and not forwarded, unless told to forward it."""
    url = serve()
    reply = http(url + "/", {"baggage": f"{KEY}={_valid_mark()}"}).json()
    assert reply == {"debug": False, "out": {}}
    mark = _valid_mark()
    forwarding = serve(forward_baggage_mark=True)
    reply = http(forwarding + "/", {"baggage": f"{KEY}={mark}"}).json()
    assert reply["debug"] is False
    assert _mark_of(reply) == mark


# --- gRPC: sync and aio servers on loopback, the baggage carried in metadata ---

SERVICE = "clue.test.Mark"
_ser = wrappers_pb2.StringValue.SerializeToString
_de = wrappers_pb2.StringValue.FromString


def _answer(control: Any) -> wrappers_pb2.StringValue:
    outgoing: dict[str, str] = {}
    propagate.inject(outgoing)
    return wrappers_pb2.StringValue(
        value=json.dumps({"debug": control.debug_enabled(), "out": outgoing})
    )


def _extract(handler_call_details: Any) -> Any:
    return propagate.extract(dict(handler_call_details.invocation_metadata or ()))


class _SyncExtract(grpc.ServerInterceptor):  # what OpenTelemetry's interceptor does
    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        ctx = _extract(details)

        def unary(request: Any, context: Any) -> Any:
            token = otel_context.attach(ctx)
            try:
                return handler.unary_unary(request, context)
            finally:
                otel_context.detach(token)

        def stream(request: Any, context: Any) -> Any:
            token = otel_context.attach(ctx)
            try:
                yield from handler.unary_stream(request, context)
            finally:
                otel_context.detach(token)

        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(unary, _de, _ser)
        return grpc.unary_stream_rpc_method_handler(stream, _de, _ser)


class _AioExtract(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        ctx = _extract(details)

        async def unary(request: Any, context: Any) -> Any:
            token = otel_context.attach(ctx)
            try:
                return await handler.unary_unary(request, context)
            finally:
                otel_context.detach(token)

        async def stream(request: Any, context: Any) -> Any:
            token = otel_context.attach(ctx)
            try:
                async for item in handler.unary_stream(request, context):
                    yield item
            finally:
                otel_context.detach(token)

        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(unary, _de, _ser)
        return grpc.unary_stream_rpc_method_handler(stream, _de, _ser)


def _sync_service(control: Any) -> Any:
    def unary(request: Any, context: Any) -> Any:
        return _answer(control)

    def stream(request: Any, context: Any) -> Any:
        yield _answer(control)
        yield _answer(control)

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, _de, _ser),
            "Stream": grpc.unary_stream_rpc_method_handler(stream, _de, _ser),
        },
    )


def _aio_service(control: Any) -> Any:
    async def unary(request: Any, context: Any) -> Any:
        return _answer(control)

    async def stream(request: Any, context: Any) -> Any:
        yield _answer(control)
        yield _answer(control)

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, _de, _ser),
            "Stream": grpc.unary_stream_rpc_method_handler(stream, _de, _ser),
        },
    )


_OPTIONS = {
    "trigger_header": "x-clue-debug",
    "trigger_value": "s3cret",
    "propagate_trigger": True,
    "trust_baggage": True,
}


def _metadata(baggage_value: str | None = None, trigger: bool = False) -> list[tuple[str, str]]:
    md = []
    if baggage_value is not None:
        md.append(("baggage", baggage_value))
    if trigger:
        md.append(("x-clue-debug", "s3cret"))
    return md


async def _check_grpc_answers(call: Any) -> None:
    """The same expectations for sync and aio: ``await call(method, metadata) -> [replies]``."""
    for method in ("Unary", "Stream"):
        triggered = await call(method, _metadata(trigger=True))
        assert triggered
        assert all(r["debug"] for r in triggered)
        assert all(_mark.mark_is_valid(_mark_of(r), time.time(), 60) for r in triggered)
        mark = _valid_mark()
        trusted = await call(method, _metadata(f"{KEY}={mark}"))
        assert trusted
        assert all(r["debug"] and _mark_of(r) == mark for r in trusted)
        for bad in (_valid_mark(-1), _valid_mark(3000), "9" * 40, "nope"):
            replies = await call(method, _metadata(f"{KEY}={bad}"))
            assert replies
            assert all(r == {"debug": False, "out": {}} for r in replies)
        assert all(r == {"debug": False, "out": {}} for r in await call(method, []))


async def test_sync_grpc_sets_honours_and_drops_marks(control: Any) -> None:
    """Sync gRPC: a trigger marks the RPC, a valid mark is honoured, bad ones are dropped."""
    server = grpc.server(
        futures.ThreadPoolExecutor(4),
        interceptors=[_SyncExtract(), debug.GrpcServerInterceptor(**_OPTIONS)],
    )
    server.add_generic_rpc_handlers((_sync_service(control),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:

        async def call(method: str, metadata: list[tuple[str, str]]) -> list[dict[str, Any]]:
            if method == "Unary":
                rpc = channel.unary_unary(f"/{SERVICE}/Unary", _ser, _de)
                return [json.loads(rpc(wrappers_pb2.StringValue(), metadata=metadata).value)]
            srpc = channel.unary_stream(f"/{SERVICE}/Stream", _ser, _de)
            return [
                json.loads(r.value) for r in srpc(wrappers_pb2.StringValue(), metadata=metadata)
            ]

        await _check_grpc_answers(call)
    finally:
        channel.close()
        server.stop(None).wait(5)


async def test_aio_grpc_sets_honours_and_drops_marks(control: Any) -> None:
    """grpc.aio: the same as sync, for coroutine and async-generator handlers."""
    server = grpc.aio.server(
        interceptors=[_AioExtract(), debug.AioGrpcServerInterceptor(**_OPTIONS)]
    )
    server.add_generic_rpc_handlers((_aio_service(control),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:

            async def call(method: str, metadata: list[tuple[str, str]]) -> list[dict[str, Any]]:
                if method == "Unary":
                    rpc = channel.unary_unary(f"/{SERVICE}/Unary", _ser, _de)
                    reply = await rpc(wrappers_pb2.StringValue(), metadata=metadata)
                    return [json.loads(reply.value)]
                srpc = channel.unary_stream(f"/{SERVICE}/Stream", _ser, _de)
                return [
                    json.loads(r.value)
                    async for r in srpc(wrappers_pb2.StringValue(), metadata=metadata)
                ]

            await _check_grpc_answers(call)
    finally:
        await server.stop(None)


def test_without_opentelemetry_the_mark_options_name_the_extra(
    monkeypatch: pytest.MonkeyPatch, control: Any
) -> None:
    """Without opentelemetry-api, asking for the mark names the extra; the rest works."""
    monkeypatch.setattr(_mark, "otel_baggage", lambda: None)
    with pytest.raises(ValueError, match=r"propagate_trigger.*clue-debug\[otel\]"):
        debug.ASGIMiddleware(None, trigger_header="x", propagate_trigger=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"trust_baggage.*clue-debug\[otel\]"):
        debug.WSGIMiddleware(None, trust_baggage=True)  # type: ignore[arg-type]
    trigger = Trigger(switch=debug.DebugLogSwitch(), trigger_header="x", trigger_value="on")
    assert trigger.decide(lambda name: "on") == (True, None)
    assert trigger.decide(lambda name: None) == (False, None)
