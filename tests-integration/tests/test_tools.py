"""The harness's own parts: the fake upstream, the load generator, the report."""

from __future__ import annotations

import io
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clue_example import analysis, demo, load
from clue_example.harness import wait_for
from clue_example.launcher import ServiceProcess, free_port, http_get, http_post
from clue_example.upstream import Faults, UpstreamServer, location_of


@pytest.fixture
def upstream() -> Iterator[str]:
    """The fake upstream, served in-process on a free port."""
    server = UpstreamServer(("127.0.0.1", free_port()), Faults(), seed=7)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_upstream_resolves_ips_stably_and_fails_the_injected_prefix(upstream: str) -> None:
    """A good address always resolves to the same city; the failing prefix answers 503."""
    first = http_get(f"{upstream}/geo/198.51.100.1")
    assert first.status == 200
    assert first.json() == location_of("198.51.100.1")
    assert http_get(f"{upstream}/geo/198.51.100.1").json() == first.json()
    assert http_get(f"{upstream}/geo/203.0.113.5").status == 503
    weather = http_get(f"{upstream}/weather?lat=1.5&lon=2&hour=3")
    assert weather.status == 200
    assert set(weather.json()) == {"temperature_c", "summary"}
    assert http_get(f"{upstream}/weather?lat=x").status == 400


def test_upstream_faults_change_at_run_time(upstream: str) -> None:
    """The admin call sets error rates and the down switch; bad values change nothing."""
    assert http_post(f"{upstream}/admin/faults", {"weather_error_rate": 1.0}).status == 200
    assert http_get(f"{upstream}/weather?lat=1&lon=2").status == 503
    assert http_post(f"{upstream}/admin/faults", {"down": True}).status == 200
    assert http_get(f"{upstream}/livez").status == 503
    bad = http_post(f"{upstream}/admin/faults", {"down": False, "geo_error_rate": 2})
    assert bad.status == 400
    assert b"geo_error_rate" in bad.body
    assert http_get(f"{upstream}/admin/faults").json()["down"] is True
    assert http_post(f"{upstream}/admin/faults", {"down": False}).status == 200
    assert http_get(f"{upstream}/livez").status == 200


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({"nope": 1}, "nope"),
        ({"delay_ms": -1}, "delay_ms"),
        ({"down": "yes"}, "down"),
        ({"fail_prefix": 3}, "fail_prefix"),
        ({"weather_error_rate": "1"}, "weather_error_rate"),
    ],
)
def test_faults_reject_bad_values_by_name(changes: dict[str, Any], word: str) -> None:
    """A bad fault is refused with a ValueError naming it, and nothing changes."""
    faults = Faults()
    with pytest.raises(ValueError, match=word):
        faults.update({"geo_error_rate": 0.5, **changes})
    assert faults == Faults()


def test_load_plan_is_reproducible_and_mixed() -> None:
    """The same seed gives the same requests, with the asked shares of failures and streams."""
    plan = load.LoadPlan(count=2000, failure_share=0.05, hourly_share=0.2, seed=3)
    paths = load.plan_paths(plan)
    assert paths == load.plan_paths(plan)
    assert paths != load.plan_paths(load.LoadPlan(count=2000, failure_share=0.05, seed=4))
    failures = sum(fail for _, fail in paths)
    hourly = sum("/hourly" in p for p, _ in paths)
    assert 60 <= failures <= 140
    assert 300 <= hourly <= 500
    assert all(p.startswith("/forecast/203.0.113.") for p, fail in paths if fail)


@pytest.mark.parametrize(
    "kwargs",
    [{"count": 0}, {"max_seconds": 0}, {"concurrency": 0}, {"failure_share": 1.5}],
)
def test_load_plan_rejects_bad_options(kwargs: dict[str, Any]) -> None:
    """An out-of-range load option is a ValueError naming it."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        load.LoadPlan(**kwargs)


class _Front(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        fail = "203.0.113." in self.path
        self.send_response(502 if fail else 200)
        self.send_header("traceresponse", f"00-{'ab' * 16}-{'cd' * 8}-{'00' if fail else '01'}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_run_load_records_every_answer_and_draws_progress() -> None:
    """The load sends every planned request, records answers and trace flags, shows progress."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Front)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        plan = load.LoadPlan(count=200, failure_share=0.1, concurrency=4, seed=5)
        out = io.StringIO()
        result = load.run_load(f"http://127.0.0.1:{server.server_address[1]}", plan, progress=out)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert len(result.records) == 200
    assert all(r.ok != r.expect_failure for r in result.records)
    assert all(r.sampled == r.ok for r in result.records)
    assert {r.trace_id for r in result.records} == {"ab" * 16}
    assert "200/200" in out.getvalue()
    assert out.getvalue().endswith("\n")


def test_run_load_stops_at_its_time_limit() -> None:
    """A load whose time limit passes sends fewer requests than planned, and stops."""
    plan = load.LoadPlan(count=20_000, max_seconds=0.3, concurrency=2)
    port = free_port()  # nothing listens: every request fails fast
    result = load.run_load(f"http://127.0.0.1:{port}", plan)
    assert 0 < len(result.records) < 20_000
    assert result.duration < 10.0
    assert all(r.status == 0 for r in result.records)


hex_ids = st.integers(min_value=1, max_value=2**128 - 1)


@given(trace_id=hex_ids, span_id=st.integers(1, 2**64 - 1), flags=st.integers(0, 255))
def test_traceresponse_round_trips(trace_id: int, span_id: int, flags: int) -> None:
    """Any well-formed traceresponse header parses back to its trace id and sampled flag."""
    header = f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"
    assert load._parse_traceresponse(header) == (f"{trace_id:032x}", bool(flags & 1))


@given(st.text(max_size=80))
def test_traceresponse_garbage_never_raises(value: str) -> None:
    """A malformed traceresponse header parses to no trace, never to an exception."""
    trace_id, _ = load._parse_traceresponse(value)
    assert trace_id is None or len(trace_id) == 32


def _entry(
    msg: str, trace: str, level: str = "info", t: str = "2026-01-01T00:00:00Z"
) -> dict[str, Any]:
    return {"time": t, "level": level, "msg": msg, "trace_id": trace}


def _run(
    label: str, records: list[load.RequestRecord], entries: dict[str, list[dict[str, Any]]]
) -> demo.RunResult:
    lines = {n: len(e) for n, e in entries.items()}
    return demo.RunResult(
        label=label,
        load=load.LoadResult(tuple(records), 2.0, len(records)),
        lines=lines,
        bytes={n: 100 * c for n, c in lines.items()},
        entries=entries,
        timeline=[(0.0, 0), (2.0, sum(lines.values()) * 100)],
        health={"front": {"ready": True, "status": {"forecaster": "OK"}}},
        spans=[analysis.SpanView("front", "GET", "f1", "s1", None, True, "SERVER")],
    )


def _record(
    path: str, status: int, trace: str, *, fail: bool, sampled: bool = False
) -> load.RequestRecord:
    return load.RequestRecord(path, fail, status, 0.0, 1.0, "rid", trace, sampled)


def _failure_entries(trace: str) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [_entry("start", trace), *(_entry(m, trace) for m in msgs[:-1]),
               _entry(msgs[-1], trace, "error"), _entry("end", trace)]
        for name, msgs in analysis.FAILURE_PATH.items()
    }  # fmt: skip


def test_report_counts_full_contexts_leaks_and_savings() -> None:
    """The report's must-figures catch an incomplete failure and a leaking success."""
    records = [
        _record("/forecast/203.0.113.1", 502, "f1", fail=True),
        _record("/forecast/203.0.113.2", 502, "f2", fail=True),
        _record("/forecast/198.51.100.1", 200, "ok1", fail=False),
        _record("/forecast/198.51.100.2", 200, "ok2", fail=False),
    ]
    complete = _failure_entries("f1")
    broken = _failure_entries("f2")
    broken["locator"] = broken["locator"][:1]  # the locator lost its error line
    entries = {n: complete[n] + broken[n] for n in complete}
    entries["front"].append(_entry("forecast served", "ok2"))  # a successful request leaked
    buffered = _run("clue-buffered", records, entries)
    everything = {n: e * 5 for n, e in entries.items()}
    baseline = _run("log-everything", records, everything)
    report = demo.build_report(buffered, baseline, load.LoadPlan(count=4), 2.0)
    assert report["requests"] == {"served": 2, "failed": 2, "traced": 0}
    assert report["failed_full_context"]["complete"] == 1
    assert report["failed_full_context"]["pct"] == 50.0
    assert report["successful_untraced"] == {"requests": 2, "wrote_anything": 1}
    assert report["logs"]["saved_bytes_pct"] == 80.0
    assert report["traces"]["error_promoted"] == 1
    text = demo.render_report(report)
    assert "1/2 (50.0 %" in text
    assert "verdict: FAIL" in text
    assert "80.0 % bytes" in text


def test_launcher_reports_a_service_that_dies_at_start(tmp_path: Path) -> None:
    """A service that exits before it is ready fails the start with its stderr tail."""
    svc = ServiceProcess(
        "dies",
        ["-c", "import sys; sys.stderr.write('bad config'); sys.exit(3)"],
        tmp_path,
        f"http://127.0.0.1:{free_port()}/livez",
    )
    svc.start()
    with pytest.raises(RuntimeError, match="bad config") as failed:
        svc.wait_ready(time.monotonic() + 30.0)
    assert "exited with 3" in str(failed.value)


def test_launcher_kills_a_service_that_ignores_sigterm(tmp_path: Path) -> None:
    """Stopping a service that ignores SIGTERM ends it with SIGKILL after the grace period."""
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    svc = ServiceProcess("stubborn", ["-c", code], tmp_path, "http://127.0.0.1:1/")
    svc.start()
    wait_for(lambda: svc.log_path.read_text() == "up\n", what="the handler installed")
    started = time.monotonic()
    assert svc.stop(grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 10.0


record_ids = st.sampled_from(["failed", "traced", "debug", "outside", "unexplained"])


@given(st.lists(st.tuples(st.sampled_from(["front", "locator"]), record_ids), max_size=40))
def test_records_are_classified_by_their_trace_id(drawn: list[tuple[str, str]]) -> None:
    """Each record counts once, under what its trace id says; unknown ids are unexplained."""
    ids = {"failed": "f" * 32, "traced": "t" * 32, "debug": "d" * 32, "outside": ""}
    records = [
        analysis.RecordView(service, "msg", ids.get(kind, f"{i:032x}"))
        for i, (service, kind) in enumerate(drawn)
    ]
    classes = analysis.classify_records(
        records, failed=[ids["failed"]], kept=[ids["traced"], ids["failed"]], debug=[ids["debug"]]
    )
    expected: dict[str, dict[str, int]] = {}
    for service, kind in drawn:
        expected.setdefault(service, {}).setdefault(kind, 0)
        expected[service][kind] += 1
    assert {s: dict(c) for s, c in classes.items()} == expected


SERVICES = ("front", "forecaster", "locator")
FAULTS = (
    None,
    "record of a successful untraced request",
    "record missing",
    "stream bytes off by one",
    "baseline record missing",
    "more records outside requests than lines",
    "discarded entries over-counted",
    "no metrics exported",
)


def _otlp_runs(
    lines: dict[str, int], discarded: dict[str, int], fault: str | None
) -> tuple[demo.RunResult, demo.RunResult]:
    """A buffered and a baseline run whose records and metrics agree, but for ``fault``."""
    failure = _failure_entries("f1")
    records = [
        _record("/forecast/203.0.113.1", 502, "f1", fail=True),
        _record("/forecast/198.51.100.1", 200, "ok1", fail=False),
    ]
    buffered = _run("clue-buffered", records, failure)
    baseline = _run("log-everything", records, failure)
    for run, written in ((buffered, lines), (baseline, {})):
        for name in SERVICES:
            n = written.get(name, lines[name] + discarded[name])
            # Two lines outside requests (start and stop); one of them has no record.
            run.written[name] = {"lines": n + 2, "bytes": 150 * (n + 2), "request_lines": n}
            run.records += [analysis.RecordView(name, "m", "f1")] * n
            run.records.append(analysis.RecordView(name, "started", ""))
            run.metrics[name] = analysis.LogMetrics(
                contexts={"written": 1, "discarded": discarded[name]},
                entries={"written": 0, "discarded": discarded[name] if run is buffered else 0},
                output_bytes={"stream": 150 * (n + 2), "otlp": 90 * n},
                peak_buffered_bytes=1000,
                exports=3,
            )
    if fault == "record of a successful untraced request":
        buffered.records.append(analysis.RecordView("front", "m", "ok1"))
        buffered.written["front"]["lines"] += 1
        buffered.written["front"]["request_lines"] += 1
        buffered.written["front"]["bytes"] += 150
        buffered.metrics["front"].output_bytes["stream"] += 150
    elif fault == "record missing":
        buffered.records.pop(0)
    elif fault == "stream bytes off by one":
        buffered.metrics["locator"].output_bytes["stream"] += 1
    elif fault == "baseline record missing":
        baseline.records.pop(0)
    elif fault == "more records outside requests than lines":
        buffered.records += [analysis.RecordView("locator", "stray", "")] * 2
    elif fault == "discarded entries over-counted":
        m = buffered.metrics["forecaster"].entries
        m["discarded"] += max(1, sum(lines.values()) + sum(discarded.values()))
    elif fault == "no metrics exported":
        baseline.metrics.pop("front")
    return buffered, baseline


@settings(deadline=None)  # an example builds up to a few thousand records
@given(
    lines=st.fixed_dictionaries({n: st.integers(1, 300) for n in SERVICES}),
    discarded=st.fixed_dictionaries({n: st.integers(0, 3000) for n in SERVICES}),
    fault=st.sampled_from(FAULTS),
)
def test_report_checks_records_and_metrics_against_what_it_measured(
    lines: dict[str, int], discarded: dict[str, int], fault: str | None
) -> None:
    """The verdict passes exactly when every record is explained and the metrics agree."""
    buffered, baseline = _otlp_runs(lines, discarded, fault)
    report = demo.build_report(buffered, baseline, load.LoadPlan(count=2), 2.0)
    assert demo.passed(report) == (fault is None), (fault, report["otlp_logs"], report["metrics"])
    text = demo.render_report(report)
    assert ("verdict: PASS" in text) == (fault is None)
    metrics = report["metrics"]
    if fault is None:
        total = sum(lines.values()) + sum(discarded.values()) + 2 * len(SERVICES)
        assert metrics["log_everything_by_metrics"] == total == metrics["log_everything_measured"]
        assert metrics["saved_lines_pct_by_metrics"] == metrics["saved_lines_pct_measured"]
        assert report["otlp_logs"]["buffered"]["per_service"]["front"]["failed"] == lines["front"]
        assert "peak buffered memory                          front 1000 B" in text
    if fault == "record of a successful untraced request":
        assert report["otlp_logs"]["buffered"]["unexplained"] == 1
