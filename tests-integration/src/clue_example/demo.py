"""The project's main job: the example system under load, and what clue saved.

It runs the same generated load (a few thousand requests, a small share of them failing
for real at the upstream) twice against freshly started services: once as shipped
(clue buffering each request's log entries) and once with buffering off (every entry
written, what logging everything costs). Then it prints a report, writes it as JSON and,
when matplotlib is installed, charts the log bytes written over time in both runs.

Run it with ``python3 tools/run.py demo`` (or ``python -m clue_example.demo --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from clue.otel.testing import OTLPReceiver
from clue_example import _runtime, analysis, otlp
from clue_example.harness import new_traceparent, wait_for
from clue_example.launcher import System, SystemOptions, http_get
from clue_example.load import LoadPlan, LoadResult, run_load

__all__ = ["RunResult", "build_report", "main", "passed", "render_report", "run_once"]


@dataclass
class RunResult:
    """What one run of the load produced."""

    label: str
    load: LoadResult
    lines: dict[str, int]  # per service, written during the load
    bytes: dict[str, int]
    entries: dict[str, list[dict[str, Any]]]
    timeline: list[tuple[float, int]]  # (seconds, total log bytes) during the load
    health: dict[str, Any]
    spans: list[analysis.SpanView]
    # OTLP log records received, the whole run
    records: list[analysis.RecordView] = field(default_factory=list)
    # per service, clue-log's metrics as exported
    metrics: dict[str, analysis.LogMetrics] = field(default_factory=dict)
    # per service, stdout lines/bytes of the whole run
    written: dict[str, dict[str, int]] = field(default_factory=dict)
    late: dict[str, list[int]] = field(default_factory=dict)  # see ``_late``
    debug_one: dict[str, Any] | None = None  # "debug one request", checked after the load


def run_once(label: str, workdir: Path, plan: LoadPlan, *, buffering: bool, sampling_rate: float,
             progress: TextIO | None) -> RunResult:  # fmt: skip
    """Start the system, run the load, stop the system, and collect what it wrote."""
    with OTLPReceiver() as receiver:
        options = SystemOptions(
            otlp_endpoint=otlp.grpc_endpoint(receiver),
            buffering=buffering,
            sampling_rate=sampling_rate,
        )
        with System(workdir / label, options) as system:
            start_sizes = system.log_sizes()
            with _sampling_sizes(system, start_sizes) as timeline:
                result = run_load(system.front_url, plan, progress=progress)
            end_sizes = system.log_sizes()
            # In both runs, so both have the same requests (the metrics' check compares
            # them); the report shows the buffered run's.
            debug_one = _debug_one_request(system)
            health = _health(system)
        # The services are stopped: their telemetry is flushed, the receiver has it all.
        spans = otlp.spans(receiver)
        records = otlp.log_records(receiver)
        metrics = otlp.log_metrics(receiver)
    entries = {
        name: _entries_between(system.services[name].log_path, start_sizes[name], end_sizes[name])
        for name in start_sizes
    }
    return RunResult(
        label=label,
        load=result,
        lines={name: len(e) for name, e in entries.items()},
        bytes={name: end_sizes[name] - start_sizes[name] for name in start_sizes},
        entries=entries,
        timeline=timeline,
        health=health,
        spans=spans,
        records=records,
        metrics=metrics,
        written={name: _written(system.services[name].log_path) for name in start_sizes},
        late={name: _late(system.services[name].log_path) for name in start_sizes},
        debug_one=debug_one if buffering else None,
    )


def _written(path: Path) -> dict[str, int]:
    """What a stopped service wrote to stdout in its whole life.

    JSON lines, bytes, and the lines of requests (those with a ``trace_id``).
    """
    data = path.read_bytes()
    lines = [line for line in data.splitlines() if line.startswith(b"{")]
    return {
        "lines": len(lines),
        "bytes": len(data),
        "request_lines": sum(1 for line in lines if b'"trace_id":' in line),
    }


def _late(path: Path) -> list[int]:
    """The sizes of the runs of last lines outside any request in a service's stdout.

    What a service may write after its telemetry's last export (its interpreter's own
    teardown logging through clue), which that export cannot count.
    """
    late = [0]
    for line in reversed(path.read_bytes().splitlines(keepends=True)):
        if b'"trace_id":' in line or len(late) > 16:
            break
        late.append(late[-1] + len(line))
    return late


DEBUG_SERVICES = ("front", "forecaster", "locator")


def _debug_one_request(system: System) -> dict[str, Any]:
    """One hourly request with the debug trigger, beside one without and one forged mark.

    Counts the debug lines each service wrote for the triggered request, and the debug
    lines written for anything else, once a failing request (the barrier) is in every
    log: anything the other requests wrote would be there by then.
    """
    start = system.log_sizes()
    base = f"{system.front_url}/forecast/198.51.100.40/hourly?hours=3"
    triggered_tp, triggered, _ = new_traceparent(sampled=False)
    trigger = {_runtime.DEBUG_TRIGGER_HEADER: _runtime.DEBUG_TRIGGER_VALUE}
    http_get(base, headers={"traceparent": triggered_tp, **trigger}, timeout=10.0)
    http_get(base, headers={"traceparent": new_traceparent(sampled=False)[0]}, timeout=10.0)
    forged = f"clue.debug={int((time.time() + 30) * 1000)}"
    forged_headers = {"traceparent": new_traceparent(sampled=False)[0], "baggage": forged}
    http_get(base, headers=forged_headers, timeout=10.0)
    barrier_tp, barrier, _ = new_traceparent(sampled=False)
    http_get(
        f"{system.front_url}/forecast/203.0.113.40",
        headers={"traceparent": barrier_tp},
        timeout=10.0,
    )

    def written() -> dict[str, list[dict[str, Any]]] | None:
        entries = {
            name: _entries_between(
                system.services[name].log_path, start[name], system.log_sizes()[name]
            )
            for name in DEBUG_SERVICES
        }
        done = all(
            analysis.is_subsequence(
                analysis.FAILURE_PATH[name],
                analysis.messages([e for e in entries[name] if e.get("trace_id") == barrier]),
            )
            for name in DEBUG_SERVICES
        )
        return entries if done else None

    try:
        entries = wait_for(written, timeout=30.0, what="the barrier request in every log")
    except TimeoutError:
        return {
            "per_service": {}, "lines": 0, "services": 0, "elsewhere": -1,
            "trace_id": triggered,
        }  # fmt: skip
    debug = {name: [e for e in entries[name] if e.get("level") == "debug"] for name in entries}
    per_service = {
        name: sum(1 for e in lines if e.get("trace_id") == triggered)
        for name, lines in debug.items()
    }
    elsewhere = sum(1 for lines in debug.values() for e in lines if e.get("trace_id") != triggered)
    return {
        "per_service": per_service,
        "lines": sum(per_service.values()),
        "services": sum(1 for n in per_service.values() if n > 0),
        "elsewhere": elsewhere,
        "trace_id": triggered,
    }


@contextlib.contextmanager
def _sampling_sizes(system: System, base: Mapping[str, int]) -> Iterator[list[tuple[float, int]]]:
    timeline: list[tuple[float, int]] = [(0.0, 0)]
    stop = threading.Event()
    start = time.monotonic()
    offset = sum(base.values())

    def sample() -> None:
        while not stop.wait(0.25):
            timeline.append((time.monotonic() - start, sum(system.log_sizes().values()) - offset))

    thread = threading.Thread(target=sample, name="log-sizes", daemon=True)
    thread.start()
    try:
        yield timeline
    finally:
        stop.set()
        thread.join()
        timeline.append((time.monotonic() - start, sum(system.log_sizes().values()) - offset))


def _entries_between(path: Path, start: int, end: int) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(end - start)
    entries = []
    for line in data.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def _health(system: System) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in ("front", "forecaster", "locator"):
        try:
            ready = http_get(system.admin_url(name, "/readyz"), timeout=5.0)
            report = http_get(system.admin_url(name, "/healthz"), timeout=5.0).json()
            result[name] = {"ready": ready.status == 200, "status": report.get("status", {})}
        except (OSError, ValueError) as exc:
            result[name] = {"ready": False, "error": str(exc)}
    return result


def build_report(buffered: RunResult, baseline: RunResult, plan: LoadPlan,
                 sampling_rate: float) -> dict[str, Any]:  # fmt: skip
    """The report's figures, as a JSON-ready dictionary."""
    records = buffered.load.records
    failed = [r for r in records if not r.ok]
    ok_untraced = [r for r in records if r.ok and not r.sampled]
    logs = {name: analysis.by_trace(e) for name, e in buffered.entries.items()}
    reference = analysis.reference_sequences(
        baseline.entries,
        (r.trace_id for r in baseline.load.records if not r.ok and r.trace_id),
    )

    complete = identical = 0
    incomplete: list[str] = []
    for rec in failed:
        touched = analysis.FAILURE_PATH if rec.expect_failure else {"front": ()}
        ok = identical_all = rec.trace_id is not None
        for service, expected in touched.items():
            mine = logs.get(service, {}).get(rec.trace_id or "", [])
            ok = ok and analysis.full_context_written(mine, expected)
            identical_all = identical_all and analysis.messages(mine) == reference.get(service)
        complete += ok
        identical += ok and identical_all
        if not ok:
            incomplete.append(f"{rec.path} status={rec.status} trace_id={rec.trace_id}")

    leaked = [
        r
        for r in ok_untraced
        if r.trace_id is None or any(r.trace_id in by_tid for by_tid in logs.values())
    ]
    sampled_traces = {r.trace_id for r in records if r.sampled and r.trace_id}
    failed_ids = {r.trace_id for r in failed if r.trace_id}
    failed_unsampled = {r.trace_id for r in failed if not r.sampled and r.trace_id}
    received = {s.trace_id for s in buffered.spans}
    total_lines = sum(buffered.lines.values())
    total_bytes = sum(buffered.bytes.values())
    base_lines = sum(baseline.lines.values())
    base_bytes = sum(baseline.bytes.values())
    duration = buffered.load.duration
    return {
        "load": {
            "planned": plan.count,
            "sent": len(records),
            "duration_s": round(duration, 2),
            "rate_rps": round(buffered.load.rate, 1),
            "concurrency": plan.concurrency,
            "failure_share": plan.failure_share,
            "seed": plan.seed,
        },
        "requests": {
            "served": len(records) - len(failed),
            "failed": len(failed),
            "traced": len(sampled_traces),
        },
        "logs": {
            "buffered": {
                "lines": total_lines,
                "bytes": total_bytes,
                "per_service": _per_service(buffered),
            },
            "log_everything": {
                "lines": base_lines,
                "bytes": base_bytes,
                "per_service": _per_service(baseline),
            },
            "saved_lines_pct": _pct_saved(total_lines, base_lines),
            "saved_bytes_pct": _pct_saved(total_bytes, base_bytes),
        },
        "failed_full_context": {
            "failed": len(failed),
            "complete": complete,
            "pct": round(100.0 * complete / len(failed), 2) if failed else 100.0,
            "identical_to_log_everything": identical,
            "incomplete": incomplete[:20],
        },
        "successful_untraced": {
            "requests": len(ok_untraced),
            "wrote_anything": len(leaked),
        },
        "traces": {
            "sampler_target_per_s": sampling_rate,
            "sampled_per_s": round(len(sampled_traces) / duration, 2) if duration else 0.0,
            "sampled": len(sampled_traces),
            "error_promoted": len(failed_unsampled & received),
            "failed_unsampled": len(failed_unsampled),
            "exported_traces": len(received),
            "exported_per_s": round(len(received) / duration, 2) if duration else 0.0,
            "spans_received": len(buffered.spans),
        },
        "health": buffered.health,
        "debug_one_request": buffered.debug_one,
        "otlp_logs": _otlp_logs(buffered, baseline, failed_ids, sampled_traces | received),
        "metrics": _metrics(buffered, baseline),
    }


def _otlp_logs(buffered: RunResult, baseline: RunResult, failed: set[str],
               kept: set[str]) -> dict[str, Any]:  # fmt: skip
    """The log records the receiver got: what each belongs to, and against the lines.

    Every line of a request (with a trace id) must have its record, and no record may be
    more than the lines: a service's lines outside requests may lack one (what the
    telemetry pipeline itself logs while exporting is written, never emitted again).
    """
    debug = {str((buffered.debug_one or {}).get("trace_id", ""))} - {""}
    classes = analysis.classify_records(buffered.records, failed=failed, kept=kept, debug=debug)
    per_service = {}
    for name, written in buffered.written.items():
        counts = classes.get(name, Counter())
        per_service[name] = {
            **_against_lines(sum(counts.values()), counts["outside"], written),
            **{kind: counts[kind] for kind in analysis.RECORD_CLASSES},
        }
    base_records = Counter(r.service for r in baseline.records)
    base_outside = Counter(r.service for r in baseline.records if not r.trace_id)
    base_per_service = {
        name: _against_lines(base_records[name], base_outside[name], written)
        for name, written in baseline.written.items()
    }
    return {
        "buffered": _run_records(per_service, "unexplained"),
        "log_everything": _run_records(base_per_service),
    }


def _against_lines(records: int, outside: int, written: Mapping[str, int]) -> dict[str, Any]:
    request_records = records - outside
    return {
        "records": records,
        "lines": written["lines"],
        "request_records": request_records,
        "request_lines": written["request_lines"],
        "match": request_records == written["request_lines"] and records <= written["lines"],
    }


def _run_records(per_service: dict[str, dict[str, Any]], *extra: str) -> dict[str, Any]:
    totals = {
        key: sum(s[key] for s in per_service.values())
        for key in ("records", "lines", "request_records", "request_lines", *extra)
    }
    match = bool(per_service) and all(s["match"] for s in per_service.values())
    return {**totals, "match": match, "per_service": per_service}


# How far the metrics' "log everything" may be from the log-everything run's lines: the
# two runs send the same seeded load and the same debug check, but their timing differs
# (a stream's messages, retries), and so may a few entries.
AGREEMENT_TOLERANCE_PCT = 2.0


def _metrics(buffered: RunResult, baseline: RunResult) -> dict[str, Any]:
    """What clue-log's metrics said, per run and service, beside what the demo measured.

    Each service's counters start with its process, so they are compared with the whole
    of its stdout: ``clue.log.output.bytes{stream}`` must be exactly the bytes of its
    stdout, but for lines outside any request written after the telemetry's last export
    (the interpreter's teardown), which must be the stdout's last lines.
    ``clue.log.entries`` counts buffered entries only (what a flush wrote, what a
    successful context discarded, what a bound dropped), so the lines written plus the
    entries discarded and dropped are what logging everything would have written: they
    must match the log-everything run's lines within ``AGREEMENT_TOLERANCE_PCT``, and the
    savings they give within as many points of the savings measured. (``entries{written}``
    counts only what flushes wrote, not the entries written at once: it is at most the
    lines.)
    """
    runs = {"buffered": _run_metrics(buffered), "log_everything": _run_metrics(baseline)}
    lines = sum(s["lines"] for s in buffered.written.values())
    base_lines = sum(s["lines"] for s in baseline.written.values())
    entries: Counter[str] = Counter()
    for service in runs["buffered"]["per_service"].values():
        entries.update(service["entries"])
    not_written = entries["discarded"] + entries["dropped"]
    everything = lines + not_written
    gap_pct = round(100.0 * abs(everything - base_lines) / base_lines, 2) if base_lines else 100.0
    saved_by_metrics = _pct_saved(lines, everything)
    saved_measured = _pct_saved(lines, base_lines)
    return {
        **runs,
        "lines_written": lines,
        "entries_not_written": not_written,
        "log_everything_by_metrics": everything,
        "log_everything_measured": base_lines,
        "gap_pct": gap_pct,
        "saved_lines_pct_by_metrics": saved_by_metrics,
        "saved_lines_pct_measured": saved_measured,
        "agree": runs["buffered"]["bytes_agree"]
        and runs["log_everything"]["bytes_agree"]
        and entries["written"] <= lines
        and gap_pct <= AGREEMENT_TOLERANCE_PCT
        and abs(saved_by_metrics - saved_measured) <= AGREEMENT_TOLERANCE_PCT,
    }


def _run_metrics(run: RunResult) -> dict[str, Any]:
    per_service: dict[str, Any] = {}
    for name, measured in run.written.items():
        m = run.metrics.get(name, analysis.LogMetrics())
        per_service[name] = {
            "contexts": m.contexts,
            "entries": m.entries,
            "output_bytes": m.output_bytes,
            "peak_buffered_bytes": m.peak_buffered_bytes,
            "exports": m.exports,
            "measured": measured,
            "late": run.late.get(name, [0]),
            "bytes_agree": bool(m.exports)
            and measured["bytes"] - m.output_bytes.get("stream", -1) in run.late.get(name, [0]),
        }
    return {
        "per_service": per_service,
        "bytes_agree": bool(per_service) and all(s["bytes_agree"] for s in per_service.values()),
    }


def _per_service(run: RunResult) -> dict[str, dict[str, int]]:
    return {name: {"lines": run.lines[name], "bytes": run.bytes[name]} for name in run.lines}


def _pct_saved(written: int, everything: int) -> float:
    return round(100.0 * (1.0 - written / everything), 2) if everything else 0.0


def render_report(report: Mapping[str, Any]) -> str:
    """The report as a person reads it."""
    load, req, logs = report["load"], report["requests"], report["logs"]
    full, clean, traces = (
        report["failed_full_context"],
        report["successful_untraced"],
        report["traces"],
    )
    buf, base = logs["buffered"], logs["log_everything"]
    rows: list[tuple[str, str, str]] = [
        ("log lines written", f"{buf['lines']:,}", f"{base['lines']:,}"),
        ("log bytes written", _size(buf["bytes"]), _size(base["bytes"])),
    ]
    for name in buf["per_service"]:
        b, e = buf["per_service"][name], base["per_service"][name]
        rows.append(
            (
                f"  {name}",
                f"{b['lines']:,} / {_size(b['bytes'])}",
                f"{e['lines']:,} / {_size(e['bytes'])}",
            )
        )
    health = [
        f"{name:12}{'ready' if h.get('ready') else 'NOT READY':10}"
        + ", ".join(f"{dep} {state}" for dep, state in h.get("status", {}).items())
        for name, h in report["health"].items()
    ]
    one = report.get("debug_one_request") or {"lines": 0, "services": 0, "elsewhere": -1}
    verdict = "PASS" if passed(report) else "FAIL"
    w = 46  # width of the labels of the summary lines
    lines = [
        "",
        "clue example system: demo report",
        "=" * 72,
        f"{'load':{w}}{load['sent']:,} requests in {load['duration_s']} s "
        f"({load['rate_rps']} req/s, concurrency {load['concurrency']}, seed {load['seed']})",
        f"{'requests':{w}}served {req['served']:,}   failed {req['failed']:,}   "
        f"traced {req['traced']:,}",
        "",
        f"{'':28}{'clue (buffered)':>20}{'log everything':>24}",
        *(f"{a:28}{b:>20}{c:>24}" for a, b, c in rows),
        f"{'saved':28}{logs['saved_lines_pct']:>12.1f} % lines"
        f"{logs['saved_bytes_pct']:>16.1f} % bytes",
        "",
        f"{'failed requests with full context written':{w}}"
        f"{full['complete']:,}/{full['failed']:,} ({full['pct']:.1f} %, must be 100 %)",
        f"{'  ... identical to the log-everything run':{w}}"
        f"{full['identical_to_log_everything']:,}/{full['failed']:,}",
        f"{'successful untraced requests that wrote logs':{w}}"
        f"{clean['wrote_anything']:,}/{clean['requests']:,} (must be 0)",
        f"{'traces sampled':{w}}{traces['sampled_per_s']:.2f}/s "
        f"(sampler target {traces['sampler_target_per_s']:g}/s per service)",
        f"{'traces exported':{w}}{traces['exported_traces']:,} "
        f"({traces['exported_per_s']:.2f}/s; {traces['error_promoted']:,} of "
        f"{traces['failed_unsampled']:,} unsampled failures promoted)",
        f"{'spans received':{w}}{traces['spans_received']:,}",
        f"debug one request: {one['lines']} debug lines across {one['services']} services, "
        f"{one['elsewhere']} elsewhere",
        *_render_otlp(report, w),
        *(f"{'health' if i == 0 else '':{w}}{line}" for i, line in enumerate(health)),
        "=" * 72,
        f"verdict: {verdict}",
    ]
    return "\n".join(lines) + "\n"


def passed(report: Mapping[str, Any]) -> bool:
    """The verdict: every must-figure of the report holds."""
    full, clean = report["failed_full_context"], report["successful_untraced"]
    otlp_logs = report.get("otlp_logs")
    metrics = report.get("metrics")
    if full["pct"] != 100.0 or clean["wrote_anything"] != 0:
        return False
    if otlp_logs is None or metrics is None:  # a report of an older demo
        return True
    return bool(
        otlp_logs["buffered"]["unexplained"] == 0
        and otlp_logs["buffered"]["match"]
        and otlp_logs["log_everything"]["match"]
        and metrics["agree"]
    )


def _render_otlp(report: Mapping[str, Any], w: int) -> list[str]:
    logs, metrics = report["otlp_logs"], report["metrics"]
    buf, base = logs["buffered"], logs["log_everything"]
    per = buf["per_service"]
    totals = {k: sum(s[k] for s in per.values()) for k in analysis.RECORD_CLASSES}
    by_service = ", ".join(f"{name} {s['records']:,}" for name, s in per.items())
    lines = [
        "",
        f"{'OTLP log records received':{w}}{buf['records']:,} ({by_service})",
        f"{'  ... one per request line written':{w}}"
        + ("yes" if buf["match"] else "NO")
        + f" ({buf['request_records']:,} for {buf['request_lines']:,}; whole run)",
        f"{'  ... of failed / traced requests':{w}}{totals['failed']:,} / {totals['traced']:,}"
        f" (debug one request {totals['debug']:,}, outside requests {totals['outside']:,})",
        f"{'  ... of neither (must be 0)':{w}}{buf['unexplained']:,}",
        f"{'  ... log-everything run':{w}}{base['records']:,} records for {base['lines']:,} lines"
        f" ({'yes' if base['match'] else 'NO'}: {base['request_records']:,} for "
        f"{base['request_lines']:,} request lines)",
        "",
        f"{'clue.log metrics':{w}}{'clue (buffered)':>14}{'log everything':>16}",
    ]
    runs = (metrics["buffered"], metrics["log_everything"])

    def total(run: Mapping[str, Any], table: str, key: str) -> int:
        return sum(s[table].get(key, 0) for s in run["per_service"].values())

    for table, key in (
        ("contexts", "written"),
        ("contexts", "discarded"),
        ("entries", "written"),
        ("entries", "discarded"),
        ("entries", "dropped"),
        ("output_bytes", "stream"),
        ("output_bytes", "otlp"),
    ):
        label = f"  {table.replace('_', '.')}{{{key}}}"
        values = [total(run, table, key) for run in runs]
        if table == "output_bytes":
            lines.append(f"{label:{w}}{_size(values[0]):>14}{_size(values[1]):>16}")
        else:
            lines.append(f"{label:{w}}{values[0]:>14,}{values[1]:>16,}")
    measured = [sum(s["measured"]["bytes"] for s in run["per_service"].values()) for run in runs]
    lines += [
        f"{'  stdout bytes measured':{w}}{_size(measured[0]):>14}{_size(measured[1]):>16}",
        f"{'  ... = output.bytes{stream}, per service':{w}}"
        f"{'yes' if runs[0]['bytes_agree'] else 'NO':>14}"
        f"{'yes' if runs[1]['bytes_agree'] else 'NO':>16}",
        f"{'lines written + entries discarded/dropped':{w}}"
        f"{metrics['lines_written']:,} + {metrics['entries_not_written']:,} = "
        f"{metrics['log_everything_by_metrics']:,}",
        f"{'  ... log-everything run, lines measured':{w}}"
        f"{metrics['log_everything_measured']:,} (gap {metrics['gap_pct']:.2f} %)",
        f"{'  ... saved lines, metrics / measured':{w}}"
        f"{metrics['saved_lines_pct_by_metrics']:.1f} % / "
        f"{metrics['saved_lines_pct_measured']:.1f} %",
        f"{'metrics agree with the measured counts':{w}}"
        + ("yes" if metrics["agree"] else "NO")
        + f" (within {AGREEMENT_TOLERANCE_PCT:g} %; bytes exactly)",
    ]
    peaks = [
        f"{name} {_size(s['peak_buffered_bytes'])}"
        for name, s in runs[0]["per_service"].items()
        if s["peak_buffered_bytes"] is not None
    ]
    lines.append(f"{'peak buffered memory':{w}}{', '.join(peaks) or 'not exported'}")
    return lines


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def write_chart(path: Path, runs: Sequence[RunResult]) -> bool:
    """Chart log bytes over time for each run; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for run in runs:
        xs = [t for t, _ in run.timeline]
        ys = [b / 1024 for _, b in run.timeline]
        ax.plot(xs, ys, label=run.label.replace("-", " "))
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("log KiB written (all services)")
    ax.set_title("Log volume under the same load, with and without clue's buffering")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the demo; the exit status is 0 when both must-figures hold."""
    parser = argparse.ArgumentParser(prog="clue_example.demo", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--max-seconds", type=float, default=90.0, help="per run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--failure-share", type=float, default=0.02)
    parser.add_argument("--hourly-share", type=float, default=0.1)
    parser.add_argument("--sampling-rate", type=float, default=2.0, help="traces/s per service")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("demo-report"))
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args(argv)
    try:
        plan = LoadPlan(
            count=args.requests,
            max_seconds=args.max_seconds,
            concurrency=args.concurrency,
            failure_share=args.failure_share,
            hourly_share=args.hourly_share,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clue-demo-") as tmp:
        runs = []
        for label, buffering in (("clue-buffered", True), ("log-everything", False)):
            print(f"{label}: starting the system", file=sys.stderr)
            runs.append(
                run_once(label, Path(tmp), plan, buffering=buffering,
                         sampling_rate=args.sampling_rate, progress=sys.stderr)
            )  # fmt: skip
        report = build_report(runs[0], runs[1], plan, args.sampling_rate)
        text = render_report(report)
        (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (args.out / "report.txt").write_text(text)
        chart = None if args.no_chart else args.out / "log-bytes.png"
        if chart is not None and not write_chart(chart, runs):
            chart = None
    sys.stdout.write(text)
    sys.stdout.write(f"report: {args.out / 'report.json'}")
    sys.stdout.write(f", chart: {chart}\n" if chart else " (no chart: matplotlib not installed)\n")
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
