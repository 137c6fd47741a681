"""Logs over OTLP, end to end: clue-log's ``otlp_output`` + clue-otel's log exporter.

A real server (uvicorn running ``clue_example.logged``, clue's ASGI middleware inside
OpenTelemetry's) exports spans and log records to a ``clue.otel.testing`` receiver, over
OTLP/gRPC and over OTLP/HTTP. Error promotion is on and the requests carry their own
sampling decision (``traceparent``), so sampling is off unless a request asks for it.

One run per transport (``run``): batch delays long enough that nothing leaves the
process before SIGTERM; failing requests (several at once), successful untraced ones
and a traced one; then SIGTERM. What was queued must arrive before the process exits
(the bounded shutdown), so every negative assertion ("none was sent") is exact: a record
not received by then was never emitted.

``test_live_export`` checks the ordinary path too: with a short batch delay, a failed
request's records arrive while the server runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from clue.otel.testing import OTLPReceiver, ReceivedLogRecord, ReceivedSpan
from clue_example.harness import new_traceparent, wait_for
from clue_example.launcher import free_port, http_get
from clue_example.logged import DEBUG_MESSAGE, FAIL_MESSAGES, OK_MESSAGES

TRANSPORTS = ("grpc", "http")
CONCURRENT_FAILURES = 8
EXIT_DEADLINE = 30.0
# What the middleware and the handler log for each kind of request, in order.
FAILED = ("start", *FAIL_MESSAGES, "end")
SUCCEEDED = ("start", *OK_MESSAGES, "end")
SEVERITY = {
    "debug": (5, "debug"),
    "info": (9, "info"),
    "warn": (13, "warn"),
    "error": (17, "error"),
}


@dataclass
class Server:
    """A running ``clue_example.logged`` under uvicorn, and where its output goes."""

    popen: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path

    def get(self, path: str, traceparent: str) -> tuple[int, int, int]:
        """GET ``path``; return its status and the wall-clock bounds of the call (ns)."""
        before = time.time_ns()
        status = http_get(
            f"http://127.0.0.1:{self.port}{path}", headers={"traceparent": traceparent}
        ).status
        return status, before, time.time_ns()

    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines written to standard output so far."""
        text = self.stdout.read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def terminate(self) -> int:
        """SIGTERM, and wait (bounded) for the exit; return the exit status."""
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=EXIT_DEADLINE)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"still running {EXIT_DEADLINE} s after SIGTERM")


def start(rx: OTLPReceiver, transport: str, tmp: Path, delay_ms: int) -> Server:
    """Start uvicorn with the app, exporting to ``rx`` over ``transport``."""
    port = free_port()
    env = {
        **os.environ,
        "CLUE_LOGGED_OTLP": rx.grpc_endpoint if transport == "grpc" else rx.http_endpoint,
        "CLUE_LOGGED_TRANSPORT": transport,
        "OTEL_BSP_SCHEDULE_DELAY": str(delay_ms),
        "OTEL_BLRP_SCHEDULE_DELAY": str(delay_ms),
    }
    stdout, stderr = tmp / f"{transport}.stdout", tmp / f"{transport}.stderr"
    argv = [
        sys.executable, "-m", "uvicorn", "clue_example.logged:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with stdout.open("ab") as out, stderr.open("ab") as err:
        popen = subprocess.Popen(argv, env=env, stdout=out, stderr=err, cwd=tmp)
    server = Server(popen, port, stdout, stderr)

    def up() -> bool:
        if popen.poll() is not None:
            raise AssertionError(f"the server exited: {stderr.read_text()[-3000:]}")
        try:
            # Untraced, successful: sends nothing (the sampler could keep a root span).
            headers = {"traceparent": new_traceparent(sampled=False)[0]}
            http_get(f"http://127.0.0.1:{port}/ok", headers=headers, timeout=2.0)
        except OSError:
            return False
        return True

    try:
        wait_for(up, timeout=60.0, what="the server to answer")
    except BaseException:
        popen.kill()
        popen.wait()
        raise
    return server


@dataclass
class Run:
    """What one run sent and what the receiver got by the time the server exited."""

    transport: str
    failed: dict[str, tuple[int, int]] = field(default_factory=dict)  # trace id: call bounds
    succeeded: list[str] = field(default_factory=list)  # untraced
    traced: str = ""
    debugged: str = ""  # untraced and successful, with one debug entry
    exported_before_sigterm: int = -1
    exit_status: int | None = None
    records: list[ReceivedLogRecord] = field(default_factory=list)
    spans: list[ReceivedSpan] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    def records_of(self, trace_id: str) -> list[ReceivedLogRecord]:
        return [r for r in self.records if r.trace_id == trace_id]


@pytest.fixture(scope="module", params=TRANSPORTS)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Failing, successful and traced requests, then SIGTERM with everything queued."""
    transport: str = request.param
    result = Run(transport)
    with OTLPReceiver() as rx:
        server = start(rx, transport, tmp_path_factory.mktemp(transport), delay_ms=600_000)
        try:
            for _ in range(3):
                header, trace_id, _ = new_traceparent(sampled=False)
                assert server.get("/ok", header)[0] == 200
                result.succeeded.append(trace_id)
            failures = [new_traceparent(sampled=False) for _ in range(CONCURRENT_FAILURES)]
            with ThreadPoolExecutor(CONCURRENT_FAILURES) as pool:
                calls = list(pool.map(lambda f: server.get("/fail", f[0]), failures))
            for (_, trace_id, _), (status, before, after) in zip(failures, calls, strict=True):
                assert status == 500
                result.failed[trace_id] = (before, after)
            header, result.traced, _ = new_traceparent(sampled=True)
            assert server.get("/ok", header)[0] == 200
            header, result.debugged, _ = new_traceparent(sampled=False)
            assert server.get("/debug", header)[0] == 200
            # Every failure's lines are on stdout: its records were emitted (same flush).
            wait_for(
                lambda: any(e.get("msg") == DEBUG_MESSAGE for e in server.lines()),
                what="the last request's line",
            )
            result.exported_before_sigterm = len(rx.logs())
        finally:
            result.exit_status = server.terminate()
        # Read at once: what was not exported before the exit never will be.
        result.records, result.spans = rx.logs(), rx.spans()
    result.lines = server.lines()
    result.stderr = server.stderr.read_text()[-3000:]
    return result


def test_nothing_leaves_before_sigterm_and_everything_at_it(run: Run) -> None:
    """Records queued at SIGTERM are exported by the bounded shutdown, none twice."""
    assert run.exported_before_sigterm == 0
    assert run.exit_status == -signal.SIGTERM, run.stderr  # uvicorn re-raises SIGTERM
    assert {r.transport for r in run.records} == {run.transport}
    # The failures, the traced request and the debug entry.
    expected = len(FAILED) * len(run.failed) + len(SUCCEEDED) + 1
    assert len(run.records) == expected, run.stderr
    # Every line written to stdout is a record, and the other way round.
    assert [(r.body, r.trace_id) for r in run.records] == [
        (e["msg"], e["trace_id"]) for e in run.lines if e.get("trace_id")
    ]


def test_failed_request_records_in_order_with_promoted_trace(run: Run) -> None:
    """Each failure's entries arrive in order, under the trace its error promoted."""
    promoted = {s.trace_id for s in run.spans}
    for trace_id in run.failed:
        records = run.records_of(trace_id)
        assert tuple(r.body for r in records) == FAILED
        assert trace_id in promoted, "the failed request's trace was not exported"
        assert {r.resource["service.name"] for r in records} == {"logged"}
        assert {r.scope for r in records} == {"clue.log"}


def test_span_ids_are_the_calls_not_the_flushs(run: Run) -> None:
    """Entries logged in the child span carry its id; the rest the server span's."""
    for trace_id, records in ((t, run.records_of(t)) for t in run.failed):
        spans = [s for s in run.spans if s.trace_id == trace_id]
        [lookup] = [s for s in spans if s.name == "lookup"]
        [server] = [s for s in spans if s.kind == "server"]
        assert lookup.parent_span_id == server.span_id
        by_body = {r.body: r.span_id for r in records}
        assert by_body["looking up"] == by_body["slow lookup"] == lookup.span_id
        assert by_body["parsing"] == by_body["lookup failed"] == server.span_id
        assert by_body["start"] == server.span_id


def test_timestamps_are_the_calls(run: Run) -> None:
    """Record time: the call (in order, within the request); observed time: the flush."""
    for trace_id, (before, after) in run.failed.items():
        records = run.records_of(trace_id)
        times = [r.time_unix_nano for r in records]
        assert times == sorted(times)
        assert len(set(times)) == len(times)
        # Logged while the call was in progress (``end`` may follow the reply).
        assert before <= times[0]
        assert times[FAILED.index("lookup failed")] <= after
        # The entries before the error were buffered: observed when the error flushed
        # them, after the last of them was logged; each keeps the time of its own call.
        buffered = records[: FAILED.index("lookup failed")]
        last_call = buffered[-1].time_unix_nano
        for r in buffered:
            assert r.observed_time_unix_nano >= last_call >= r.time_unix_nano
        assert buffered[0].time_unix_nano < last_call
        lines = [e for e in run.lines if e.get("trace_id") == trace_id]
        for r, line in zip(records, lines, strict=True):
            second = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.time_unix_nano // 10**9))
            assert line["time"] == second


def test_severities_and_attributes_as_the_readme_says(run: Run) -> None:
    """Levels map to severities; attributes are the JSON line's values, in OTLP types."""
    for trace_id in run.failed:
        records = run.records_of(trace_id)
        lines = [e for e in run.lines if e.get("trace_id") == trace_id]
        for r, line in zip(records, lines, strict=True):
            assert (r.severity_number, r.severity_text) == SEVERITY[line["level"]]
            # Everything but time, level and msg, as the JSON line has it; lists and
            # mappings as their JSON text; None left out.
            expected = {
                k: json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else v
                for k, v in line.items()
                if k not in ("time", "level", "msg") and v is not None
            }
            assert r.attributes == expected
        looking = records[FAILED.index("looking up")].attributes
        assert looking["user_id"] == 42
        assert looking["ratio"] == 0.5
        assert looking["admin"] is False
        assert "nothing" not in looking
        assert looking["tags"] == '["a","b"]'
        assert looking["card"] == '{"last4":"4242"}'
        assert looking["trace_id"] == trace_id  # log.span's keys are attributes too
        assert "no such user" in str(records[FAILED.index("lookup failed")].attributes["err"])


def test_successful_untraced_request_sends_none(run: Run) -> None:
    """No record of a successful, unsampled request ever leaves the process."""
    for trace_id in run.succeeded:
        assert run.records_of(trace_id) == []
    assert not any(e.get("trace_id") in run.succeeded for e in run.lines)


def test_traced_request_sends_its_entries(run: Run) -> None:
    """A sampled request's entries are sent, in order, with its trace id."""
    records = run.records_of(run.traced)
    assert tuple(r.body for r in records) == SUCCEEDED
    assert {(r.severity_number, r.severity_text) for r in records} == {SEVERITY["info"]}
    assert run.traced in {s.trace_id for s in run.spans}


def test_debug_entry_is_sent_with_debug_severity(run: Run) -> None:
    """With debug on for a context, its debug entry is written, hence sent (severity 5)."""
    [record] = run.records_of(run.debugged)
    assert (record.body, record.severity_number, record.severity_text) == (
        DEBUG_MESSAGE,
        *SEVERITY["debug"],
    )
    assert record.attributes["payload"] == '{"user_id":7}'


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_live_export(transport: str, tmp_path: Path) -> None:
    """With a short batch delay, a failed request's records arrive while serving."""
    with OTLPReceiver() as rx:
        server = start(rx, transport, tmp_path, delay_ms=50)
        try:
            header, trace_id, _ = new_traceparent(sampled=False)
            assert server.get("/fail", header)[0] == 500

            def arrived() -> list[ReceivedLogRecord] | None:
                mine = [r for r in rx.logs() if r.trace_id == trace_id]
                return mine if len(mine) >= len(FAILED) else None

            records = wait_for(arrived, what="the failure's records")
            assert tuple(r.body for r in records) == FAILED
            assert server.popen.poll() is None
        finally:
            server.terminate()


_OUTPUT_BYTES = """
import io, json
from opentelemetry import metrics
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from clue import log

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
out = io.StringIO()
log.configure(outputs=[(out, log.format_json), log.otlp_output(logger_provider=LoggerProvider())])
with log.context():
    log.info("charging", amount=42)
    log.error("payment failed")
found = {}
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            if m.name == "clue.log.output.bytes":
                for p in m.data.data_points:
                    found[p.attributes["clue.log.output"]] = p.value
print(json.dumps({"found": found, "stream": len(out.getvalue().encode())}))
"""


def test_the_otlp_output_counts_its_bytes(tmp_path: Path) -> None:
    """``clue.log.output.bytes`` counts both outputs: the stream's bytes and the records'."""
    done = subprocess.run(
        [sys.executable, "-c", _OUTPUT_BYTES],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    got = json.loads(done.stdout)
    assert got["found"].get("stream") == got["stream"] > 0  # the stream output counts
    # The records' bytes are those of the same entries as JSON lines: the stream's here.
    assert got["found"].get("otlp") == got["stream"]
