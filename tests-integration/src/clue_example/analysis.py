"""Reading what the system wrote: log lines per request, and spans per trace.

Every log line of every service carries the ``trace_id`` of its request (``log.span``),
and the front returns that trace id to the caller (``traceresponse``), so a request's
lines are found in every service's log by its trace id, and its spans in the receiver.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FAILURE_PATH",
    "SpanView",
    "by_trace",
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
