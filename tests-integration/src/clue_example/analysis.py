"""Reading what the system wrote: log lines per request, and spans per trace.

Every log line of every service carries the ``trace_id`` of its request (``log.span``),
and the front returns that trace id to the caller (``traceresponse``), so a request's
lines are found in every service's log by its trace id, and its spans in the receiver.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAILURE_PATH",
    "LogMetrics",
    "RECORD_CLASSES",
    "RecordView",
    "SpanView",
    "by_trace",
    "classify_records",
    "full_context_written",
    "is_subsequence",
    "messages",
    "reference_sequences",
]

# What each service logs, in order, for a request whose IP the upstream refuses: the
# minimum "full context", from the middleware's (or interceptor's) start line to its end
# line (clients' call lines come in between).
FAILURE_PATH: Mapping[str, tuple[str, ...]] = {
    "front": ("start", "forecast requested", "forecast failed", "end"),
    "forecaster": ("start", "forecast requested", "forecast failed", "end"),
    "locator": ("start", "locating", "geolocation failed", "end"),
}


@dataclass(frozen=True)
class SpanView:
    """The parts of a received span the harness looks at (ids in lowercase hex)."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    is_error: bool
    kind: str


@dataclass(frozen=True)
class RecordView:
    """The parts of a received OTLP log record the demo looks at (trace id: hex or "")."""

    service: str
    body: str
    trace_id: str


@dataclass
class LogMetrics:
    """What one service's ``clue.log.*`` metrics said, at their last export.

    ``contexts`` and ``entries`` are by ``clue.log.outcome``, ``output_bytes`` by
    ``clue.log.output``; ``peak_buffered_bytes`` is the highest ``clue.log.buffered.bytes``
    of all exports (None when the metric never arrived).
    """

    contexts: dict[str, int] = field(default_factory=dict)
    entries: dict[str, int] = field(default_factory=dict)
    output_bytes: dict[str, int] = field(default_factory=dict)
    peak_buffered_bytes: int | None = None
    exports: int = 0


# How the demo tells what a received log record belongs to, by its trace id.
RECORD_CLASSES = ("failed", "traced", "debug", "outside", "unexplained")


def classify_records(
    records: Iterable[RecordView],
    *,
    failed: Iterable[str],
    kept: Iterable[str],
    debug: Iterable[str] = (),
) -> dict[str, Counter[str]]:
    """Per service, how many records belong to what (``RECORD_CLASSES``).

    A record belongs to a ``failed`` request when its trace id is one of the failed
    requests' (as the load generator saw them), to a ``traced`` one when its trace id is a
    kept trace (sampled, as the front's ``traceresponse`` said, or received as spans), to
    the demo's ``debug`` one-request check by its trace id, and is ``outside`` any
    request when it has no trace id (a service's start and stop lines). Anything else is
    ``unexplained``: a record that buffering should have discarded.
    """
    failed_ids, kept_ids, debug_ids = set(failed), set(kept), set(debug)
    result: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        tid = record.trace_id
        if not tid:
            kind = "outside"
        elif tid in failed_ids:
            kind = "failed"
        elif tid in kept_ids:
            kind = "traced"
        elif tid in debug_ids:
            kind = "debug"
        else:
            kind = "unexplained"
        result[record.service][kind] += 1
    return dict(result)


def by_trace(entries: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Log entries grouped by ``trace_id``, in the order they were written."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for entry in entries:
        trace_id = entry.get("trace_id")
        if isinstance(trace_id, str):
            groups[trace_id].append(entry)
    return dict(groups)


def messages(entries: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The ``msg`` of each entry, in order (entries without one count as ``""``)."""
    return tuple(str(e.get("msg", "")) for e in entries)


def is_subsequence(needle: Sequence[str], haystack: Sequence[str]) -> bool:
    """Whether ``needle`` appears in ``haystack`` in order (not necessarily adjacent)."""
    it = iter(haystack)
    return all(any(h == n for h in it) for n in needle)


def full_context_written(
    service_entries: Sequence[Mapping[str, Any]],
    expected: Sequence[str],
    reference: Sequence[str] | None = None,
) -> bool:
    """Whether one service wrote a failed request's full context.

    That is: the expected messages in order, an error entry, timestamps in order, and,
    when a ``reference`` sequence (the same failure logged with buffering off) is given,
    exactly the reference's messages.
    """
    msgs = messages(service_entries)
    if not is_subsequence(expected, msgs):
        return False
    if not any(e.get("level") == "error" for e in service_entries):
        return False
    times = [str(e.get("time", "")) for e in service_entries]
    if times != sorted(times):
        return False
    return reference is None or tuple(reference) == msgs


def reference_sequences(
    logs: Mapping[str, Sequence[Mapping[str, Any]]], trace_ids: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """Per service, the most common message sequence among the given traces' entries."""
    wanted = set(trace_ids)
    result = {}
    for service, entries in logs.items():
        counts: Counter[tuple[str, ...]] = Counter(
            messages(group) for tid, group in by_trace(entries).items() if tid in wanted
        )
        if counts:
            result[service] = counts.most_common(1)[0][0]
    return result
