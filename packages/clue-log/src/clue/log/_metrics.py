"""The savings as metrics: what buffering did, through the OpenTelemetry Metrics API.

Every figure is kept here as a plain process-wide total, added to once per context at
its end (never per log call) and once per output write, and read by asynchronous
instruments of the meter ``clue.log`` when a reader collects. The meter comes from the API's global
proxy, so a meter provider installed after ``import clue.log`` is used; until one is
installed, nothing is read. A callback never raises into the SDK's collection.

=============================  =========  ======================  ===========================
name                           unit       kind                    attributes
=============================  =========  ======================  ===========================
``clue.log.contexts``          {context}  counter                 ``clue.log.outcome``
``clue.log.entries``           {entry}    counter                 ``clue.log.outcome``
``clue.log.output.bytes``      By         counter                 ``clue.log.output``
``clue.log.buffered.bytes``    By         up-down counter         -
=============================  =========  ======================  ===========================
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

OUTCOME = "clue.log.outcome"
OUTPUT = "clue.log.output"


class Totals:
    """What this process did since it started (or since it was forked)."""

    __slots__ = (
        "contexts_discarded",
        "contexts_written",
        "entries_discarded",
        "entries_dropped",
        "entries_written",
        "output_bytes",
    )

    def __init__(self) -> None:
        self.contexts_written = 0
        self.contexts_discarded = 0
        self.entries_written = 0
        self.entries_discarded = 0
        self.entries_dropped = 0
        self.output_bytes: dict[str, int] = {}


totals = Totals()

# What ended contexts add, appended by their finalizers and folded into ``totals`` by
# ``fold``: a list append is one step between threads and needs no lock, so a finalizer
# (which may run inside a locked block of its own thread) never waits. A context that
# wrote nothing appends one item, to ``added_contexts_discarded``: the number of entries it
# discarded (the common end of a context costs one append).
added_contexts_written: list[int] = []
added_contexts_discarded: list[int] = []
added_entries_written: list[int] = []
added_entries_discarded: list[int] = []
added_entries_dropped: list[int] = []
FOLD_AT = 1024
# Held to fold and for the few integer additions of an output write.
_lock = threading.Lock()


def fold_soon() -> None:
    """Fold if much was added and the lock is free (from a finalizer: never waits)."""
    much = len(added_contexts_discarded) > FOLD_AT or len(added_contexts_written) > FOLD_AT
    if much and _lock.acquire(blocking=False):
        try:
            _fold()
        finally:
            _lock.release()


def fold() -> None:
    """Bring ``totals`` up to date with every context ended so far."""
    with _lock:
        _fold()


def _fold() -> None:
    t = totals
    t.contexts_written += _take(added_contexts_written)
    # One item per discarded context, the entries it discarded.
    discarded = added_contexts_discarded
    n = len(discarded)
    t.contexts_discarded += n
    t.entries_discarded += sum(discarded[:n])
    del discarded[:n]
    t.entries_discarded += _take(added_entries_discarded)
    t.entries_written += _take(added_entries_written)
    t.entries_dropped += _take(added_entries_dropped)


def _take(added: list[int]) -> int:
    # Sum and remove what is there now; appends made meanwhile stay for the next fold.
    n = len(added)
    got = sum(added[:n])
    del added[:n]
    return got


def output_written(kind: str, nbytes: int) -> None:
    """Count what an output handed over: ``nbytes`` bytes, under ``clue.log.output=kind``.

    Stream outputs call it with the encoded size of each write (kind ``stream``); the OTLP
    output with the size of each emitted record's entry as a JSON line (kind ``otlp``).
    """
    if nbytes <= 0:
        return
    with _lock:
        out = totals.output_bytes
        out[kind] = out.get(kind, 0) + nbytes


def _reset_after_fork() -> None:
    # A forked child counts what it does itself, from zero; the lock may have been held
    # by a thread of the parent that does not exist here.
    global totals, _lock  # noqa: PLW0603 - replaced wholesale in the child
    totals = Totals()
    _lock = threading.Lock()
    for added in (
        added_contexts_written,
        added_contexts_discarded,
        added_entries_written,
        added_entries_discarded,
        added_entries_dropped,
    ):
        added.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


# --- the instruments -----------------------------------------------------------------------

#: Set by ``_budget``: the bytes open contexts hold of the budget.
buffered: Callable[[], int] = lambda: 0  # noqa: E731 - replaced at import


def _book() -> None:
    # Count the contexts that ended so far; a collection never fails because of clue.
    with contextlib.suppress(Exception):  # the totals counted so far are still reported
        fold()


def _contexts(_: CallbackOptions) -> Iterable[Observation]:
    _book()
    t = totals
    return [
        Observation(t.contexts_written, {OUTCOME: "written"}),
        Observation(t.contexts_discarded, {OUTCOME: "discarded"}),
    ]


def _entries(_: CallbackOptions) -> Iterable[Observation]:
    _book()
    t = totals
    return [
        Observation(t.entries_written, {OUTCOME: "written"}),
        Observation(t.entries_discarded, {OUTCOME: "discarded"}),
        Observation(t.entries_dropped, {OUTCOME: "dropped"}),
    ]


def _output_bytes(_: CallbackOptions) -> Iterable[Observation]:
    with _lock:
        out = list(totals.output_bytes.items())
    return [Observation(n, {OUTPUT: kind}) for kind, n in out]


def _buffered_bytes(_: CallbackOptions) -> Iterable[Observation]:
    try:
        return [Observation(buffered())]
    except Exception:  # a collection never fails because of clue
        return []


def _instruments(meter: Any) -> None:
    for create, name, callback, unit, description in (
        (
            "create_observable_counter",
            "clue.log.contexts",
            _contexts,
            "{context}",
            "Log contexts ended, by whether their buffered entries were written.",
        ),
        (
            "create_observable_counter",
            "clue.log.entries",
            _entries,
            "{entry}",
            "Buffered log entries, by what became of them: written, discarded with a "
            "successful context, or dropped to keep a context within its bounds.",
        ),
        (
            "create_observable_counter",
            "clue.log.output.bytes",
            _output_bytes,
            "By",
            "Bytes handed to the log outputs, by output kind.",
        ),
        (
            "create_observable_up_down_counter",
            "clue.log.buffered.bytes",
            _buffered_bytes,
            "By",
            "Estimated bytes of log entries held in memory by open log contexts "
            "(what max_total_buffered_bytes bounds).",
        ),
    ):
        # One instrument that cannot be made costs only itself.
        with contextlib.suppress(Exception):
            instrument = getattr(meter, create)(
                name, callbacks=[callback], unit=unit, description=description
            )
            _never_raises(instrument, "on_meter_set")


def _never_raises(proxy: Any, hook: str) -> None:
    """Have ``proxy.hook`` swallow what a misbehaving provider raises.

    The hook is how the API's global proxy hands a meter or an instrument to the provider
    installed later: installing a provider after ``import clue.log`` never fails because of
    clue's instruments, and the other meters of the process are still handed to it.
    """
    original = getattr(proxy, hook, None)
    if not callable(original):
        return

    def guarded(*args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(Exception):
            original(*args, **kwargs)

    with contextlib.suppress(Exception):  # a proxy without an instance dict keeps its own
        setattr(proxy, hook, guarded)


def _install() -> None:
    # The API's global proxy meter: its instruments move to the real provider when one is
    # installed, before or after this import.
    with contextlib.suppress(Exception):  # telemetry never breaks the import of logging
        meter = metrics.get_meter("clue.log")
        _never_raises(meter, "on_set_meter_provider")
        _instruments(meter)


_install()
