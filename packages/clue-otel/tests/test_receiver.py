"""The OTLP receiver speaks the real wire protocol and is easy to assert on."""

from __future__ import annotations

import gzip
import http.client
import os
import subprocess
import sys
import textwrap
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from clue.otel.testing import OTLPReceiver


def _logs_request(body: str) -> Any:
    record = logs_pb2.LogRecord(
        body=AnyValue(string_value=body),
        severity_text="ERROR",
        severity_number=17,
        trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
        span_id=bytes.fromhex("b7ad6b7169203331"),
        attributes=[KeyValue(key="user", value=AnyValue(string_value="alice"))],
    )
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource={
                    "attributes": [KeyValue(key="service.name", value=AnyValue(string_value="svc"))]
                },
                scope_logs=[logs_pb2.ScopeLogs(log_records=[record])],
            )
        ]
    )


def _post(
    rx: OTLPReceiver, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", rx.http_port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


PROTOBUF = {"Content-Type": "application/x-protobuf"}


def test_logs_arrive_over_grpc_and_http(otlp_receiver: OTLPReceiver) -> None:
    """LogsService over gRPC and POST /v1/logs over HTTP are both decoded."""
    with grpc.insecure_channel(f"127.0.0.1:{otlp_receiver.grpc_port}") as channel:
        logs_service_pb2_grpc.LogsServiceStub(channel).Export(_logs_request("over grpc"), timeout=5)
    status, _, _ = _post(
        otlp_receiver, "/v1/logs", _logs_request("over http").SerializeToString(), PROTOBUF
    )
    assert status == 200
    records = otlp_receiver.wait_for_logs(2, timeout=5)
    assert [(r.body, r.transport) for r in records] == [
        ("over grpc", "grpc"),
        ("over http", "http"),
    ]
    assert records[0].attributes == {"user": "alice"}
    assert records[0].resource == {"service.name": "svc"}
    assert records[0].trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert (records[0].severity_text, records[0].severity_number) == ("ERROR", 17)
    assert len(otlp_receiver.raw_requests("logs")) == 2


def _span_request(name: str) -> Any:
    span = trace_pb2.Span(
        name=name,
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        kind=trace_pb2.Span.SPAN_KIND_CLIENT,
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="bad"),
    )
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[span])])]
    )


@pytest.mark.parametrize("encoding", ["gzip", "deflate", None])
def test_http_accepts_compressed_bodies(otlp_receiver: OTLPReceiver, encoding: str | None) -> None:
    """gzip and deflate request bodies are decoded like plain ones."""
    import zlib

    body = _span_request("compressed").SerializeToString()
    headers = dict(PROTOBUF)
    if encoding == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    elif encoding == "deflate":
        body, headers["Content-Encoding"] = zlib.compress(body), "deflate"
    status, resp_headers, payload = _post(otlp_receiver, "/v1/traces", body, headers)
    assert (status, resp_headers["Content-Type"]) == (200, "application/x-protobuf")
    trace_service_pb2.ExportTraceServiceResponse.FromString(payload)
    span = otlp_receiver.span("compressed")
    assert (span.kind, span.status_code, span.status_message) == ("client", "ERROR", "bad")
    assert span.trace_id == bytes(range(16)).hex()
    assert span.parent_span_id is None


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("/v1/unknown", b"", PROTOBUF, 404),
        ("/v1/traces", b"{}", {"Content-Type": "application/json"}, 415),
        ("/v1/traces", b"\xff\xff\xff", PROTOBUF, 400),
        ("/v1/traces", b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400),
    ],
)
def test_http_rejects_bad_requests_without_recording(
    otlp_receiver: OTLPReceiver, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    """Unknown paths, other content types and malformed bodies get 4xx and record nothing."""
    assert _post(otlp_receiver, path, body, headers)[0] == status
    assert otlp_receiver.spans() == []
    assert otlp_receiver.requests() == []


def test_fail_until_recover_answers_503_with_retry_after(otlp_receiver: OTLPReceiver) -> None:
    """fail() rejects every request with 503 and Retry-After until recover()."""
    otlp_receiver.fail(retry_after=0.25)
    body = _span_request("s").SerializeToString()
    for _ in range(3):
        status, headers, _ = _post(otlp_receiver, "/v1/traces", body, PROTOBUF)
        assert (status, headers["Retry-After"]) == (503, "0.25")
    otlp_receiver.recover()
    assert _post(otlp_receiver, "/v1/traces", body, PROTOBUF)[0] == 200
    assert [r.accepted for r in otlp_receiver.requests()] == [False, False, False, True]
    assert len(otlp_receiver.spans()) == 1


def test_grpc_failure_is_unavailable_with_retry_info(otlp_receiver: OTLPReceiver) -> None:
    """A failing gRPC export gets UNAVAILABLE carrying a RetryInfo delay."""
    from google.rpc.error_details_pb2 import RetryInfo
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    otlp_receiver.fail(1, retry_after=0.5)
    with grpc.insecure_channel(f"127.0.0.1:{otlp_receiver.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Export(_span_request("x"), timeout=5)
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        trailers = dict(info.value.trailing_metadata())
        delay = RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay
        assert delay.ToNanoseconds() == 500_000_000
        stub.Export(_span_request("x"), timeout=5)  # the next one is accepted
    assert [s.name for s in otlp_receiver.spans()] == ["x"]


def test_wait_times_out_with_what_arrived(otlp_receiver: OTLPReceiver) -> None:
    """wait_for_spans raises TimeoutError after its deadline, naming the spans received."""
    _post(otlp_receiver, "/v1/traces", _span_request("only-one").SerializeToString(), PROTOBUF)
    with pytest.raises(TimeoutError, match="only-one"):
        otlp_receiver.wait_for_spans(2, timeout=0.2)
    with pytest.raises(TimeoutError, match="metrics"):
        otlp_receiver.wait_for_metrics("missing", timeout=0.05)
    with pytest.raises(AssertionError, match="exactly one"):
        otlp_receiver.span("absent")


def test_accessors_group_filter_and_clear(otlp_receiver: OTLPReceiver) -> None:
    """spans(name=, trace_id=), traces() and clear() work on what was received."""
    for name in ("a", "b", "a"):
        _post(otlp_receiver, "/v1/traces", _span_request(name).SerializeToString(), PROTOBUF)
    assert len(otlp_receiver.spans("a")) == 2
    tid = bytes(range(16)).hex()
    assert [s.name for s in otlp_receiver.spans(trace_id=tid)] == ["a", "b", "a"]
    assert list(otlp_receiver.traces()) == [tid]
    assert len(otlp_receiver.wait_for_spans(1, name="b")) == 1
    assert len(otlp_receiver.wait_for_requests(3, signal="traces", accepted=True)) == 3
    otlp_receiver.clear()
    assert (otlp_receiver.spans(), otlp_receiver.requests()) == ([], [])


_any_value = st.recursive(
    st.one_of(
        st.text(max_size=20).map(lambda s: AnyValue(string_value=s)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
        st.floats(allow_nan=False).map(lambda f: AnyValue(double_value=f)),
        st.binary(max_size=10).map(lambda b: AnyValue(bytes_value=b)),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda vs: AnyValue(array_value={"values": vs})),
        st.dictionaries(st.text(max_size=5), children, max_size=3).map(
            lambda d: AnyValue(
                kvlist_value={"values": [KeyValue(key=k, value=v) for k, v in d.items()]}
            )
        ),
    ),
    max_leaves=8,
)


def _plain(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_plain(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


@settings(max_examples=50, deadline=None)
@given(value=_any_value)
def test_any_value_attributes_decode_faithfully(value: Any) -> None:
    """Any OTLP attribute value decodes to the matching plain Python value."""
    from clue.otel.testing._model import decode_spans

    request = _span_request("v")
    request.resource_spans[0].scope_spans[0].spans[0].attributes.append(
        KeyValue(key="k", value=value)
    )
    (span,) = decode_spans(
        trace_service_pb2.ExportTraceServiceRequest.FromString(request.SerializeToString()), "http"
    )
    assert span.attributes == {"k": _plain(value)}


def test_endpoints_env_and_lifecycle() -> None:
    """Endpoints need a started receiver; env() points a process at it; stop is idempotent."""
    rx = OTLPReceiver()
    with pytest.raises(RuntimeError, match="not started"):
        _ = rx.grpc_endpoint
    with rx:
        assert rx.grpc_endpoint == f"http://127.0.0.1:{rx.grpc_port}"
        assert rx.http_traces_endpoint == f"http://127.0.0.1:{rx.http_port}/v1/traces"
        assert rx.http_metrics_endpoint.endswith("/v1/metrics")
        assert rx.http_logs_endpoint.endswith("/v1/logs")
        assert rx.env()["OTEL_EXPORTER_OTLP_INSECURE"] == "true"
        assert rx.env("http/protobuf")["OTEL_EXPORTER_OTLP_ENDPOINT"] == rx.http_endpoint
    rx.stop()
    with pytest.raises(ValueError, match="both"):
        OTLPReceiver(grpc=False, http=False)
    with OTLPReceiver(grpc=False) as http_only:
        assert http_only.grpc_port == 0
        assert http_only.http_port > 0
    with pytest.raises(ValueError, match="times"):
        OTLPReceiver().fail(-1)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_subprocess_exports_through_env(otlp_receiver: OTLPReceiver, protocol: str) -> None:
    """A service process configured only by rx.env() delivers its spans (the harness pattern)."""
    helper = "new_grpc_span_exporter" if protocol == "grpc" else "new_http_span_exporter"
    script = textwrap.dedent(
        f"""
        from opentelemetry import trace
        from clue import otel

        exporter, _ = otel.{helper}()
        otel.configure_opentelemetry(otel.new_config("child", "9", span_exporter=exporter))
        with trace.get_tracer("child").start_as_current_span("from-child"):
            pass
        """
    )
    env = {**os.environ, **otlp_receiver.env(protocol)}  # type: ignore[arg-type]
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, env=env)
    span = otlp_receiver.wait_for_spans(1, timeout=10)[0]
    assert (span.name, span.resource["service.name"]) == ("from-child", "child")
