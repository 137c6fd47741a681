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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from clue.otel.testing import OTLPReceiver
from clue_example import _runtime, analysis, otlp
from clue_example.harness import new_traceparent, wait_for
from clue_example.launcher import System, SystemOptions, http_get
from clue_example.load import LoadPlan, LoadResult, run_load

__all__ = ["RunResult", "build_report", "main", "render_report", "run_once"]


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
            debug_one = _debug_one_request(system) if buffering else None
            health = _health(system)
        # The services are stopped: their telemetry is flushed, the receiver has it all.
        spans = otlp.spans(receiver)
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
        debug_one=debug_one,
    )


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
        return {"per_service": {}, "lines": 0, "services": 0, "elsewhere": -1}
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
    verdict = "PASS" if full["pct"] == 100.0 and clean["wrote_anything"] == 0 else "FAIL"
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
        *(f"{'health' if i == 0 else '':{w}}{line}" for i, line in enumerate(health)),
        "=" * 72,
        f"verdict: {verdict}",
    ]
    return "\n".join(lines) + "\n"


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
    full, clean = report["failed_full_context"], report["successful_untraced"]
    return 0 if full["pct"] == 100.0 and clean["wrote_anything"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
