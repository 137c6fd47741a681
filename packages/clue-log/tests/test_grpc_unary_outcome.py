"""A unary RPC's outcome decides its lines the same way on every path the server
interceptors take (the common OK end is a fast path of its own), sync and aio alike."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import log

SERVICE = "cluelog.outcome.Unary"
CODES = [grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INTERNAL]
# How the handler ends: returns, sets a code and returns, aborts, raises.
HOW = ["return", "set_code", "abort", "raise"]


def _is_internal(code: grpc.StatusCode) -> bool:
    return code is grpc.StatusCode.INTERNAL


def _is_any(code: grpc.StatusCode) -> bool:
    return True


# error_func options by name: None (the default rule), one code only, every code (OK too).
ERROR_FUNCS: dict[str, Callable[[grpc.StatusCode], bool] | None] = {
    "default": None,
    "internal": _is_internal,
    "any": _is_any,
}


def _sync_handler(request: bytes, context: grpc.ServicerContext) -> bytes:
    how, code_name, details = json.loads(request)
    log.info("handling")
    code = grpc.StatusCode[code_name]
    if how == "set_code":
        context.set_code(code)
        context.set_details(details)
    elif how == "abort":
        context.abort(code, details)
    elif how == "raise":
        raise RuntimeError(details)
    return b"ok"


async def _aio_handler(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    how, code_name, details = json.loads(request)
    log.info("handling")
    code = grpc.StatusCode[code_name]
    if how == "set_code":
        context.set_code(code)
        context.set_details(details)
    elif how == "abort":
        await context.abort(code, details)
    elif how == "raise":
        raise RuntimeError(details)
    return b"ok"


class _Servers:
    """One real server per (kind, options), started on first use, on 127.0.0.1."""

    def __init__(self) -> None:
        self.addresses: dict[tuple[Any, ...], str] = {}
        self.sync: list[grpc.Server] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.aio: list[grpc.aio.Server] = []

    def address(self, kind: str, options: tuple[str, bool, bool]) -> str:
        key = (kind, *options)
        if key not in self.addresses:
            error_func, buffered, quiet = options
            kw: dict[str, Any] = {
                "error_func": ERROR_FUNCS[error_func],
                "call_log_func": log.info if buffered else None,
                "disable_call_logging": quiet,
            }
            if kind == "sync":
                self.addresses[key] = self._start_sync(log.GrpcServerInterceptor(**kw))
            else:
                interceptor = log.AioGrpcServerInterceptor(**kw)
                start = asyncio.run_coroutine_threadsafe(self._start_aio(interceptor), self.loop)
                self.addresses[key] = start.result(10)
        return self.addresses[key]

    def _start_sync(self, interceptor: Any) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=[interceptor])
        handler = grpc.unary_unary_rpc_method_handler(_sync_handler)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Call": handler}),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self.sync.append(server)
        return f"127.0.0.1:{port}"

    async def _start_aio(self, interceptor: Any) -> str:
        server = grpc.aio.server(interceptors=[interceptor])
        handler = grpc.unary_unary_rpc_method_handler(_aio_handler)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Call": handler}),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self.aio.append(server)
        return f"127.0.0.1:{port}"

    def close(self) -> None:
        for server in self.sync:
            server.stop(None).wait(10)

        async def stop_aio() -> None:
            for server in self.aio:
                await server.stop(None)

        asyncio.run_coroutine_threadsafe(stop_aio(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[_Servers]:
    s = _Servers()
    yield s
    s.close()


def _expected(
    how: str, code: grpc.StatusCode, details: str, options: tuple[str, bool, bool]
) -> list[tuple[str, str, str | None, str | None]]:
    """The lines a unary RPC writes: (msg, level, grpc.code, grpc.status) each."""
    error_func, buffered, quiet = options
    final = {
        "return": grpc.StatusCode.OK,
        "set_code": code,
        "abort": code,
        "raise": grpc.StatusCode.UNKNOWN,
    }[how]
    rule = ERROR_FUNCS[error_func]
    failed = final is not grpc.StatusCode.OK if rule is None else rule(final)
    start = [] if quiet else [("start", "info", None, None)]
    if failed:
        # The buffered context is written first, then the error end line with the status
        # (an escaping exception's repr when the handler set no details).
        status = {"return": "", "raise": repr(RuntimeError(details))}.get(how, details)
        return [*start, ("handling", "info", None, None), ("end", "error", final.name, status)]
    if quiet or buffered:
        return []  # a successful RPC writes nothing it buffered
    return [*start, ("end", "info", final.name, None)]


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["sync", "aio"]),
    how=st.sampled_from(HOW),
    code=st.sampled_from(CODES),
    details=st.text(alphabet="abcxyz ", min_size=1, max_size=8),
    options=st.tuples(st.sampled_from(sorted(ERROR_FUNCS)), st.booleans(), st.booleans()),
)
def test_unary_lines_follow_the_outcome(
    servers: _Servers,
    kind: str,
    how: str,
    code: grpc.StatusCode,
    details: str,
    options: tuple[str, bool, bool],
) -> None:
    """Whatever way a unary handler ends (returns, sets a code, aborts, raises) and
    whatever the options, the RPC writes exactly the lines its final code and
    ``error_func`` call for, with the code and status, on sync and aio servers alike."""
    if how == "abort" and code is grpc.StatusCode.OK:
        how = "set_code"  # grpc refuses to abort with OK
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    with grpc.insecure_channel(servers.address(kind, options)) as channel:
        call = channel.unary_unary(f"/{SERVICE}/Call")
        with contextlib.suppress(grpc.RpcError):  # the failing outcomes
            call(json.dumps([how, code.name, details]).encode())
    expected = _expected(how, code, details, options)
    # grpc.aio's abort() sends the status before it raises: the end line may follow the
    # client's answer, so wait for it (every other end line is written before the answer).
    deadline = time.monotonic() + 10
    while out.getvalue().count("\n") < len(expected) and time.monotonic() < deadline:
        time.sleep(0.005)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    got = [(d["msg"], d["level"], d.get("grpc.code"), d.get("grpc.status")) for d in lines]
    assert got == expected
    for d in lines:
        assert d["grpc.service"] == SERVICE
        assert d["grpc.method"] == "Call"
        assert len(d["request_id"]) == 8
        if d["msg"] == "end":
            assert d["grpc.time_ms"] >= 0


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_raising_call_log_func_is_called_once_per_line(servers: _Servers, kind: str) -> None:
    """A ``call_log_func`` that raises never breaks the RPC and is called once per line:
    start and end for an OK RPC, not once more for the end."""
    calls: list[str] = []

    def failing(msg: str, **kv: Any) -> None:
        calls.append(msg)
        raise RuntimeError("broken log function")

    if kind == "sync":
        address = servers._start_sync(log.GrpcServerInterceptor(call_log_func=failing))
    else:
        interceptor = log.AioGrpcServerInterceptor(call_log_func=failing)
        start = asyncio.run_coroutine_threadsafe(servers._start_aio(interceptor), servers.loop)
        address = start.result(10)
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(f"/{SERVICE}/Call")
        for _ in range(3):
            assert call(json.dumps(["return", "OK", "-"]).encode()) == b"ok"
    assert calls == ["start", "end"] * 3
