"""An outgoing call's lines and the request id it sends follow the call's end and the
options, whichever path clue's client interceptors take (a blocking call ended inline, a
future, a stream, a done grpc.aio call read at once), sync and aio clients alike."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import log

SERVICE = "cluelog.clientoutcome.Echo"
ERROR_CODES = [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK]
# How the served call ends: returns, aborts with a code, outlives the client's deadline,
# is cancelled by the client.
HOW = ["ok", "abort", "deadline", "cancel"]
# How the client makes it.
SYNC_STYLES = ["blocking", "with_call", "future", "stream"]
AIO_STYLES = ["await", "stream"]


def _is_internal(code: grpc.StatusCode) -> bool:
    return code is grpc.StatusCode.INTERNAL


def _is_any(code: grpc.StatusCode) -> bool:
    return True


def _raises(code: grpc.StatusCode) -> bool:
    raise RuntimeError("broken error_func")


ERROR_FUNCS: dict[str, Callable[[grpc.StatusCode], bool] | None] = {
    "default": None,
    "internal": _is_internal,
    "any": _is_any,
    "raises": _raises,
}


def _failing_log(msg: str, **kv: Any) -> None:
    raise RuntimeError("broken call_log_func")


LOG_FUNCS: dict[str, Callable[..., Any] | None] = {
    "print": None,
    "buffered": log.info,
    "raises": _failing_log,
}


def _incoming_id(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "x-request-id":
            return str(value)
    return "-"


class _Servers:
    """A real sync and a real aio server on 127.0.0.1, and the ids they received."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.arrived = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sync = grpc.server(futures.ThreadPoolExecutor(4))
        self.sync.add_generic_rpc_handlers((self._handlers(self._unary, self._stream),))
        self.addresses = {"sync": f"127.0.0.1:{self.sync.add_insecure_port('127.0.0.1:0')}"}
        self.sync.start()
        self.aio: Any = None
        self.addresses["aio"] = self.run(self._start_aio())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    @staticmethod
    def _handlers(unary: Any, stream: Any) -> Any:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": grpc.unary_unary_rpc_method_handler(unary),
                "Stream": grpc.unary_stream_rpc_method_handler(stream),
            },
        )

    async def _start_aio(self) -> str:
        self.aio = grpc.aio.server()
        self.aio.add_generic_rpc_handlers((self._handlers(self._aunary, self._astream),))
        port = self.aio.add_insecure_port("127.0.0.1:0")
        await self.aio.start()
        return f"127.0.0.1:{port}"

    def _arrive(self, context: Any) -> None:
        self.seen.append(_incoming_id(context.invocation_metadata()))
        self.arrived.set()

    def _end(self, request: bytes, context: Any) -> None:
        how, code, details = json.loads(request)
        if how == "abort":
            context.abort(grpc.StatusCode[code], details)
        elif how in ("deadline", "cancel"):
            over = threading.Event()
            context.add_callback(over.set)
            over.wait(30)

    def _unary(self, request: bytes, context: Any) -> bytes:
        self._arrive(context)
        self._end(request, context)
        return b"ok"

    def _stream(self, request: bytes, context: Any) -> Iterator[bytes]:
        self._arrive(context)
        yield b"one"
        yield b"two"
        self._end(request, context)

    async def _aend(self, request: bytes, context: Any) -> None:
        how, code, details = json.loads(request)
        if how == "abort":
            await context.abort(grpc.StatusCode[code], details)
        elif how in ("deadline", "cancel"):
            await asyncio.Event().wait()  # until the call is over and this task cancelled

    async def _aunary(self, request: bytes, context: Any) -> bytes:
        self._arrive(context)
        await self._aend(request, context)
        return b"ok"

    async def _astream(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        self._arrive(context)
        yield b"one"
        yield b"two"
        await self._aend(request, context)

    def close(self) -> None:
        self.sync.stop(None).wait(10)
        self.run(self.aio.stop(None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[_Servers]:
    s = _Servers()
    yield s
    s.close()


def _call_sync(
    arrived: threading.Event,
    address: str,
    opts: dict[str, Any],
    style: str,
    how: str,
    body: bytes,
    md: Any,
) -> None:
    timeout = 0.3 if how == "deadline" else 30
    with grpc.insecure_channel(address) as plain:
        channel = grpc.intercept_channel(plain, log.GrpcClientInterceptor(**opts))
        unary = channel.unary_unary(f"/{SERVICE}/Unary")
        with contextlib.suppress(grpc.RpcError, grpc.FutureCancelledError):
            if style == "blocking":
                unary(body, timeout=timeout, metadata=md)
            elif style == "with_call":
                unary.with_call(body, timeout=timeout, metadata=md)
            elif style == "future":
                future = unary.future(body, timeout=timeout, metadata=md)
                if how == "cancel":
                    assert arrived.wait(10)  # cancelled once the server has it
                    future.cancel()
                future.result(30)
            else:
                stream = channel.unary_stream(f"/{SERVICE}/Stream")(
                    body, timeout=timeout, metadata=md
                )
                if how == "cancel":
                    next(stream)
                    stream.cancel()
                list(stream)


async def _call_aio(
    arrived: threading.Event,
    address: str,
    opts: dict[str, Any],
    style: str,
    how: str,
    body: bytes,
    md: Any,
) -> None:
    timeout = 0.3 if how == "deadline" else 30
    interceptors = log.aio_grpc_client_interceptors(**opts)
    async with grpc.aio.insecure_channel(address, interceptors=interceptors) as channel:
        with contextlib.suppress(grpc.RpcError, asyncio.CancelledError):
            if style == "await":
                call = channel.unary_unary(f"/{SERVICE}/Unary")(body, timeout=timeout, metadata=md)
                if how == "cancel":
                    # Cancelled once the server has it (before, the interceptors never run).
                    assert await asyncio.to_thread(arrived.wait, 10)
                    call.cancel()
                await call
            else:
                stream = channel.unary_stream(f"/{SERVICE}/Stream")(
                    body, timeout=timeout, metadata=md
                )
                async for _ in stream:
                    if how == "cancel":
                        stream.cancel()


def _final(how: str, code: grpc.StatusCode) -> grpc.StatusCode:
    return {
        "ok": grpc.StatusCode.OK,
        "abort": code,
        "deadline": grpc.StatusCode.DEADLINE_EXCEEDED,
        "cancel": grpc.StatusCode.CANCELLED,
    }[how]


def _expected(
    final: grpc.StatusCode, error_func: str, log_func: str, quiet: bool
) -> list[tuple[str, str, str | None]]:
    """The lines the caller's context writes: (msg, level, grpc.code) each."""
    rule = ERROR_FUNCS[error_func]
    if rule is None or error_func == "raises":
        failed = final is not grpc.StatusCode.OK
    else:
        failed = rule(final)
    lines: list[tuple[str, str, str | None]] = []
    if not quiet and log_func == "print":
        lines.append(("start", "info", None))  # written at once
    if failed:
        # The caller's buffer is written, then the end line at error severity.
        lines.append(("before", "info", None))
        if not quiet and log_func == "buffered":
            lines.append(("start", "info", None))
        lines.append(("end", "error", final.name))
    elif not quiet and log_func == "print":
        lines.append(("end", "info", final.name))
    return lines


@settings(max_examples=80, deadline=None)
@given(
    client=st.sampled_from(["sync", "aio"]),
    server=st.sampled_from(["sync", "aio"]),
    style=st.integers(0, 3),
    how=st.sampled_from(HOW),
    code=st.sampled_from(ERROR_CODES),
    error_func=st.sampled_from(sorted(ERROR_FUNCS)),
    log_func=st.sampled_from(sorted(LOG_FUNCS)),
    quiet=st.booleans(),
    no_id=st.booleans(),
    bound=st.sampled_from([None, "caller-7", "bad id!"]),
    given_md=st.sampled_from([None, [("x-other", "1")], [("x-request-id", "mine-1")]]),
)
def test_client_lines_and_id_follow_the_end(
    servers: _Servers,
    client: str,
    server: str,
    style: int,
    how: str,
    code: grpc.StatusCode,
    error_func: str,
    log_func: str,
    quiet: bool,
    no_id: bool,
    bound: str | None,
    given_md: list[tuple[str, str]] | None,
) -> None:
    """However an outgoing call ends (OK, each error code, a deadline, cancelled; blocking,
    a future, a stream; sync or aio) and whatever the options (``error_func``, also one that
    raises; ``call_log_func``, also one that raises; call logging or ids off), the caller's
    context writes exactly the lines the final code and options call for, and the server
    receives the request id the caller's context and metadata call for."""
    styles = SYNC_STYLES if client == "sync" else AIO_STYLES
    style_name = styles[style % len(styles)]
    if how == "cancel" and style_name in ("blocking", "with_call"):
        how = "deadline"  # a blocking call cannot be cancelled by its caller
    opts: dict[str, Any] = {
        "error_func": ERROR_FUNCS[error_func],
        "call_log_func": LOG_FUNCS[log_func],
        "disable_call_logging": quiet,
        "disable_call_id": no_id,
    }
    out = io.StringIO()
    log.configure(output=out, format=log.format_json)
    servers.seen.clear()
    servers.arrived.clear()
    body = json.dumps([how, code.name, "failed: x"]).encode()
    address = servers.addresses[server]
    with log.context():
        if bound is not None:
            log.bind(request_id=bound)
        log.info("before")
        if client == "sync":
            _call_sync(servers.arrived, address, opts, style_name, how, body, given_md)
        else:
            servers.run(_call_aio(servers.arrived, address, opts, style_name, how, body, given_md))
    final = _final(how, code)
    expected = _expected(final, error_func, log_func, quiet)
    # A future's or a stream's end, and a grpc.aio call's, may be logged after the caller
    # saw it: wait for the lines (poll with a deadline).
    deadline = time.monotonic() + 10
    while out.getvalue().count("\n") < len(expected) and time.monotonic() < deadline:
        time.sleep(0.005)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    got = [(d["msg"], d["level"], d.get("grpc.code")) for d in lines]
    assert got == expected
    for d in lines:
        if d["msg"] in ("start", "end"):
            assert d["grpc.service"] == SERVICE
            assert d["grpc.method"] == ("Stream" if style_name == "stream" else "Unary")
        if d["msg"] == "end":
            assert d["grpc.time_ms"] >= 0
            if d["level"] == "error":
                assert isinstance(d["grpc.status"], str)
                if how == "abort":
                    assert d["grpc.status"] == "failed: x"
    assert len(servers.seen) == 1
    (seen,) = servers.seen
    mine = given_md is not None and given_md[0][0] == "x-request-id"
    if mine:
        assert seen == "mine-1"
    elif no_id:
        assert seen == "-"
    elif bound == "caller-7":
        assert seen == "caller-7"
    else:
        assert len(seen) == 8
        assert seen != bound
