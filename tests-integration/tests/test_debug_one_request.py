"""End to end: one request debugged in every service it reaches, and no other."""

from __future__ import annotations

import time
from typing import Any

from clue_example import _runtime, analysis
from clue_example.harness import new_traceparent
from clue_example.launcher import HttpReply, System, http_get

SERVICES = ("front", "forecaster", "locator")
HOURS = 3
# What each service logs at debug for one hourly request (the forecaster once per message).
DEBUG_LINES = {
    "front": ["opening the hourly stream"],
    "forecaster": ["hour answer"] * HOURS,
    "locator": ["geolocation answer"],
}


def _hourly(system: System, ip: str, headers: dict[str, str]) -> HttpReply:
    reply = http_get(f"{system.front_url}/forecast/{ip}/hourly?hours={HOURS}", headers=headers)
    assert reply.status == 200, reply.body
    return reply


def _debug_lines(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("level") == "debug"]


def test_one_request_is_debugged_in_every_service_and_no_other(healthy: System, logs: Any) -> None:
    """The trigger header at the front debugs that request in the front, the locator and
    each stream message of the forecaster; without it, or with a forged mark, nothing."""
    debugged_tp, debugged, _ = new_traceparent(sampled=False)
    _hourly(
        healthy,
        "198.51.100.21",
        {"traceparent": debugged_tp, _runtime.DEBUG_TRIGGER_HEADER: _runtime.DEBUG_TRIGGER_VALUE},
    )
    plain_tp, plain, _ = new_traceparent(sampled=False)
    _hourly(healthy, "198.51.100.22", {"traceparent": plain_tp})
    # A mark written by the caller, valid in form and time: the edge must not honour it,
    # nor let it reach the services that trust marks.
    forged_mark = str(int((time.time() + 30) * 1000))
    forged_tp, forged, _ = new_traceparent(sampled=False)
    _hourly(
        healthy,
        "198.51.100.23",
        {"traceparent": forged_tp, "baggage": f"clue.debug={forged_mark}"},
    )
    # A wrong trigger value is no trigger either.
    wrong_tp, wrong, _ = new_traceparent(sampled=False)
    _hourly(
        healthy,
        "198.51.100.24",
        {"traceparent": wrong_tp, _runtime.DEBUG_TRIGGER_HEADER: "guess"},
    )

    for name in SERVICES:
        entries = logs.wait_messages(name, debugged, DEBUG_LINES[name])
        lines = [e["msg"] for e in _debug_lines(entries)]
        for expected in set(DEBUG_LINES[name]):
            assert lines.count(expected) == DEBUG_LINES[name].count(expected), (name, lines)
    # Each stream message of the forecaster was debugged in its own log context.
    hours = sorted(
        e["hour"]
        for e in _debug_lines(logs.of_trace("forecaster", debugged))
        if e["msg"] == "hour answer"
    )
    assert hours == list(range(HOURS))

    # A failing request afterwards is the barrier: once its lines are in every log,
    # anything the other requests wrote would be there too.
    barrier_tp, barrier, _ = new_traceparent(sampled=False)
    failed = http_get(
        f"{healthy.front_url}/forecast/203.0.113.7", headers={"traceparent": barrier_tp}
    )
    assert failed.status == 502
    for name in SERVICES:
        logs.wait_messages(name, barrier, analysis.FAILURE_PATH[name])
    for name in SERVICES:
        entries = logs.entries(name)
        for other in (plain, forged, wrong):
            assert [e for e in entries if e.get("trace_id") == other] == [], (name, other)
        stray = [e for e in _debug_lines(entries) if e.get("trace_id") != debugged]
        assert stray == [], f"{name} wrote debug lines for other requests: {stray}"
