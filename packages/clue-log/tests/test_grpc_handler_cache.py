"""The server interceptor builds a method's wrapped unary handler once; every RPC still gets
its own method name and request id, whichever way the application hands out handlers."""

from __future__ import annotations

import io
import json
from concurrent import futures
from typing import Any

import grpc
from hypothesis import given, settings
from hypothesis import strategies as st

from clue import log

METHODS = ["Get", "Put", "Delete"]


class _CatchAll(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc is untyped
    """One handler object for every method (a proxy-like service), or a fresh one per RPC."""

    def __init__(self, fresh: bool) -> None:
        self.fresh = fresh
        self.shared = grpc.unary_unary_rpc_method_handler(self.serve)

    def serve(self, request: bytes, context: Any) -> bytes:
        log.info("handled")
        return request

    def service(self, details: Any) -> Any:
        if self.fresh:
            return grpc.unary_unary_rpc_method_handler(lambda r, c: self.serve(r, c))
        return self.shared


def test_every_rpc_logs_its_own_method_and_request_id() -> None:
    """Shared or per-RPC handlers, any sequence of methods and incoming ids: each RPC's
    start/end lines name its method and carry its own (or its incoming) request id."""
    out = io.StringIO()
    log.configure(output=out, format=log.format_json, debug=True)
    servers, channels = [], []
    try:
        for fresh in (False, True):
            server = grpc.server(
                futures.ThreadPoolExecutor(2), interceptors=[log.GrpcServerInterceptor()]
            )
            server.add_generic_rpc_handlers((_CatchAll(fresh),))
            port = server.add_insecure_port("127.0.0.1:0")
            server.start()
            servers.append(server)
            channels.append(grpc.insecure_channel(f"127.0.0.1:{port}"))

        @settings(max_examples=25, deadline=None)
        @given(
            calls=st.lists(
                st.tuples(
                    st.sampled_from(channels),
                    st.sampled_from(METHODS),
                    st.one_of(st.none(), st.from_regex(r"\Ar[a-z0-9]{6}\Z")),
                ),
                min_size=1,
                max_size=6,
            )
        )
        def check(calls: list[tuple[Any, str, str | None]]) -> None:
            # Hypothesis seeds ``random`` per example: ids are unique within one example.
            seen: list[str] = []
            for channel, method, rid in calls:
                out.seek(0)
                out.truncate()
                metadata = (("x-request-id", rid),) if rid else None
                assert channel.unary_unary(f"/svc.S/{method}")(b"x", metadata=metadata) == b"x"
                lines = [json.loads(x) for x in out.getvalue().splitlines()]
                ends = [d for d in lines if d["msg"] == "end"]
                assert len(ends) == 1
                start = next(d for d in lines if d["msg"] == "start")
                for d in (start, ends[0]):
                    assert (d["grpc.service"], d["grpc.method"]) == ("svc.S", method)
                if rid:
                    assert start["request_id"] == rid
                else:
                    seen.append(start["request_id"])
            assert len(set(seen)) == len(seen)

        check()
    finally:
        for channel in channels:
            channel.close()
        for server in servers:
            server.stop(None).wait(10)
